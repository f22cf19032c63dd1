/**
 * PAX extended headers (POSIX.1-2001 `x` entries) for what tar-stream cannot write: extended
 * attribute values are bytes (a `security.capability` granting cap_setuid holds 0x80), and
 * tar-stream encodes every PAX value as a UTF-8 string. Hand-written for that reason only; every
 * other header is tar-stream's.
 */
import { schilyXattrPrefix } from '../rootfs/tar-extract.js';
import type { Xattr } from '../snapshot/xattrs.js';

const blockSize = 512;

/** One `LEN KEY=VALUE\n` record, LEN counting the whole record, its own digits included. */
export function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let digits = 1;
  while (String(body.length + digits).length !== digits) digits += 1;
  return Buffer.concat([Buffer.from(String(body.length + digits), 'ascii'), body]);
}

/** Names and link targets a ustar header holds as they are (tar-stream splits nothing shorter). */
function fitsUstar(value: string): boolean {
  return value.length <= 100 && /^[\x01-\x7f]*$/.test(value);
}

/** What stands in the ustar fields of an entry whose real name or link target is in its PAX header (as tar-stream does). */
const placeholder = 'PaxHeader';

export interface PaxEntry {
  /** The `x` entry to write right before the entry: header block, records, padding. */
  extendedHeader: Buffer;
  /** The entry's own ustar name and link target: the real ones, or a placeholder where the PAX header has them. */
  name: string;
  linkname: string | undefined;
}

/**
 * The PAX header that gives an entry its extended attributes (`SCHILY.xattr.NAME`, the raw bytes,
 * by name for a stable layer digest). It must hold the entry's path and link target too when the
 * ustar fields cannot: readers (Go's archive/tar among them) apply only the last PAX header before
 * an entry, so tar-stream must not write one of its own for it.
 */
export function paxEntryWithXattrs(name: string, linkname: string | undefined, xattrs: readonly Xattr[]): PaxEntry {
  const records: Buffer[] = [];
  let ustarName = name;
  let ustarLink = linkname;
  if (!fitsUstar(name)) {
    records.push(paxRecord('path', Buffer.from(name, 'utf8')));
    ustarName = name.endsWith('/') ? `${placeholder}/` : placeholder;
  }
  if (linkname !== undefined && !fitsUstar(linkname)) {
    records.push(paxRecord('linkpath', Buffer.from(linkname, 'utf8')));
    ustarLink = placeholder;
  }
  const sorted = [...xattrs].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  for (const xattr of sorted) records.push(paxRecord(`${schilyXattrPrefix}${xattr.name}`, xattr.value));
  const data = Buffer.concat(records);
  const padding = (blockSize - (data.length % blockSize)) % blockSize;
  return { extendedHeader: Buffer.concat([extendedHeaderBlock(data.length), data, Buffer.alloc(padding)]), name: ustarName, linkname: ustarLink };
}

/** `value` in octal, zero-padded to fill `width` bytes with a trailing NUL. */
function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

/**
 * The ustar header of an `x` entry holding `size` bytes of records. Mode, owner and time are zero,
 * as Go's archive/tar writes them: they describe nothing, and zeros keep the layer reproducible.
 */
function extendedHeaderBlock(size: number): Buffer {
  const block = Buffer.alloc(blockSize);
  block.write(placeholder, 0, 'ascii');
  block.write(octal(0, 8), 100, 'ascii'); // mode
  block.write(octal(0, 8), 108, 'ascii'); // uid
  block.write(octal(0, 8), 116, 'ascii'); // gid
  block.write(octal(size, 12), 124, 'ascii');
  block.write(octal(0, 12), 136, 'ascii'); // mtime
  block.write('x', 156, 'ascii');
  block.write('ustar\u000000', 257, 'ascii');
  block.write(octal(0, 8), 329, 'ascii'); // devmajor
  block.write(octal(0, 8), 337, 'ascii'); // devminor
  // The checksum is the sum of all bytes with its own field counted as spaces.
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return block;
}
