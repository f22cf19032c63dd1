import { open } from 'node:fs/promises';
import path from 'node:path';

/**
 * Where each entry's bytes sit inside an uncompressed tar file, so that a docker-archive's layers
 * can be opened lazily as byte ranges of the archive, in any order, without extracting it or
 * re-reading it per layer. Hand-written because tar-stream (which kiln uses to write tars) only
 * streams entries and does not expose their offsets. Only headers are read; data is skipped.
 * Understands ustar/GNU/pax headers: pax `path`/`linkpath`/`size`, GNU long names, base-256 sizes.
 */

export type TarEntryType = 'file' | 'link' | 'symlink' | 'directory' | 'other';

export interface TarEntryLocation {
  name: string;
  type: TarEntryType;
  /** Byte offset of the entry's data in the file. */
  offset: number;
  size: number;
  linkname?: string;
}

export class TarIndexError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'TarIndexError';
  }
}

const blockSize = 512;

export async function indexTar(file: string): Promise<Map<string, TarEntryLocation>> {
  const entries = new Map<string, TarEntryLocation>();
  const handle = await open(file, 'r');
  try {
    const { size: fileSize } = await handle.stat();
    const header = Buffer.alloc(blockSize);
    let position = 0;
    let pending: { path?: string; linkpath?: string; size?: number } = {};
    let global: { path?: string; linkpath?: string; size?: number } = {};
    while (position + blockSize <= fileSize) {
      const { bytesRead } = await handle.read(header, 0, blockSize, position);
      if (bytesRead < blockSize) throw new TarIndexError(file, `truncated tar header at byte ${position}`);
      if (header.every((byte) => byte === 0)) break;
      checkChecksum(file, header, position);
      const typeflag = String.fromCharCode(header[156] ?? 0);
      const headerSize = parseNumber(header.subarray(124, 136));
      const dataOffset = position + blockSize;
      const next = dataOffset + Math.ceil(headerSize / blockSize) * blockSize;
      if (dataOffset + headerSize > fileSize) throw new TarIndexError(file, `entry at byte ${position} runs past the end of the file`);
      if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
        const data = Buffer.alloc(headerSize);
        await handle.read(data, 0, headerSize, dataOffset);
        if (typeflag === 'x') pending = { ...pending, ...parsePax(data) };
        else if (typeflag === 'g') global = { ...global, ...parsePax(data) };
        else if (typeflag === 'L') pending.path = cString(data);
        else pending.linkpath = cString(data);
        position = next;
        continue;
      }
      const size = pending.size ?? global.size ?? headerSize;
      const magic = header.subarray(257, 262).toString('latin1');
      const prefix = magic === 'ustar' ? cString(header.subarray(345, 500)) : '';
      const rawName = pending.path ?? global.path ?? (prefix !== '' ? `${prefix}/${cString(header.subarray(0, 100))}` : cString(header.subarray(0, 100)));
      const linkname = pending.linkpath ?? global.linkpath ?? cString(header.subarray(157, 257));
      const name = normalizeEntryName(rawName);
      const type = entryType(typeflag);
      entries.set(name, { name, type, offset: dataOffset, size: type === 'file' ? size : 0, ...(linkname !== '' ? { linkname } : {}) });
      pending = {};
      position = dataOffset + Math.ceil(size / blockSize) * blockSize;
    }
  } finally {
    await handle.close();
  }
  return entries;
}

/**
 * Follows symlinks and hard links (docker save links a repeated layer to its first copy) to the
 * regular file behind `name`.
 */
export function resolveTarFile(file: string, entries: ReadonlyMap<string, TarEntryLocation>, name: string): TarEntryLocation {
  let current = normalizeEntryName(name);
  for (let hops = 0; hops < 16; hops += 1) {
    const entry = entries.get(current);
    if (entry === undefined) throw new TarIndexError(file, `no entry "${current}" in the archive`);
    if (entry.type === 'file') return entry;
    if (entry.linkname === undefined || (entry.type !== 'symlink' && entry.type !== 'link')) {
      throw new TarIndexError(file, `"${current}" is not a regular file`);
    }
    current =
      entry.type === 'symlink'
        ? normalizeEntryName(path.posix.join(path.posix.dirname(current), entry.linkname))
        : normalizeEntryName(entry.linkname);
  }
  throw new TarIndexError(file, `too many links resolving "${name}"`);
}

export function normalizeEntryName(name: string): string {
  const normalized = path.posix.normalize(`/${name}`).slice(1);
  return normalized.endsWith('/') ? normalized.slice(0, -1) : normalized;
}

function entryType(typeflag: string): TarEntryType {
  switch (typeflag) {
    case '0':
    case '\0':
    case '7':
      return 'file';
    case '1':
      return 'link';
    case '2':
      return 'symlink';
    case '5':
      return 'directory';
    default:
      return 'other';
  }
}

function checkChecksum(file: string, header: Buffer, position: number): void {
  const stored = parseNumber(header.subarray(148, 156));
  let sum = 0;
  for (let i = 0; i < blockSize; i += 1) sum += i >= 148 && i < 156 ? 0x20 : (header[i] as number);
  if (sum !== stored) {
    throw new TarIndexError(file, `bad tar header checksum at byte ${position} (not an uncompressed tar archive?)`);
  }
}

/** Octal, or GNU base-256 when the high bit of the first byte is set. */
function parseNumber(field: Buffer): number {
  if (((field[0] ?? 0) & 0x80) !== 0) {
    let value = (field[0] as number) & 0x7f;
    for (let i = 1; i < field.length; i += 1) value = value * 256 + (field[i] as number);
    return value;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return text === '' ? 0 : Number.parseInt(text, 8);
}

function cString(data: Buffer): string {
  const end = data.indexOf(0);
  return data.subarray(0, end < 0 ? data.length : end).toString('utf8');
}

function parsePax(data: Buffer): { path?: string; linkpath?: string; size?: number } {
  const result: { path?: string; linkpath?: string; size?: number } = {};
  let offset = 0;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    if (space < 0) break;
    const length = Number.parseInt(data.subarray(offset, space).toString('latin1'), 10);
    if (!Number.isFinite(length) || length <= 0) break;
    const record = data.subarray(space + 1, offset + length - 1).toString('utf8');
    const equals = record.indexOf('=');
    const key = record.slice(0, equals);
    const value = record.slice(equals + 1);
    if (key === 'path') result.path = value;
    else if (key === 'linkpath') result.linkpath = value;
    else if (key === 'size') result.size = Number.parseInt(value, 10);
    offset += length;
  }
  return result;
}
