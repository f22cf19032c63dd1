/**
 * ADD of a local tar archive: recognised by content (not name) like BuildKit, which sniffs
 * gzip, bzip2, xz and zstd, decompresses, and accepts the file when a valid tar header follows;
 * then extracted into the destination directory as moby's chrooted `Untar` does:
 * - paths (and hard-link targets) are resolved with the destination directory as the root;
 * - an existing path is replaced unless both it and the entry are directories (then the
 *   directory's metadata is taken from the archive);
 * - owners come from the archive unless `--chown`; missing parents are made 0755 root:root;
 * - `.wh.` names are ordinary files here (Untar is not a layer applier).
 * `--chmod` does not apply to extracted entries (BuildKit ignores it there too).
 */
import { createReadStream } from 'node:fs';
import { chmod, lchown, link, lutimes, mkdir, open, rm, symlink } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { cleanPath } from '../../context/go-path.js';
import type { CommandRunner } from '../../rootfs/command-runner.js';
import { type CompressionEnv, createDecompressor, processStream } from '../../rootfs/decompress.js';
import { RootResolver } from '../../rootfs/resolve-in-root.js';
import type { ChangeRecorder } from './change-recorder.js';
import { joinRelative } from './change-recorder.js';
import type { Owner } from './copy-tree.js';
import { CopyError, type InstructionSite } from './errors.js';
import { lstatOrUndefined } from '../../rootfs/lstat.js';

export type ArchiveCompression = 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'none';

/** Magic bytes of the compressions Docker's archive package recognises. */
export function sniffCompression(head: Buffer): ArchiveCompression {
  const starts = (...bytes: number[]): boolean => head.length >= bytes.length && bytes.every((b, i) => head[i] === b);
  if (starts(0x1f, 0x8b)) return 'gzip';
  if (starts(0x42, 0x5a, 0x68)) return 'bzip2';
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return 'xz';
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return 'zstd';
  return 'none';
}

/** Is this 512-byte block a tar header with a valid checksum (what Go's tar reader demands)? */
export function isTarHeader(block: Buffer): boolean {
  if (block.length < 512) return false;
  const field = block.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/g, '').trim();
  if (!/^[0-7]+$/.test(field)) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : (block[i] as number);
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  const stored = parseInt(field, 8);
  return stored === unsigned || stored === signed;
}

export interface ArchiveOptions {
  compressionEnv?: CompressionEnv;
}

/** The decompressed bytes of a local file, whatever it is compressed with. */
async function openDecompressed(file: string, options: ArchiveOptions): Promise<{ compression: ArchiveCompression; stream: Readable }> {
  const handle = await open(file, 'r');
  const head = Buffer.alloc(8);
  try {
    await handle.read(head, 0, 8, 0);
  } finally {
    await handle.close();
  }
  const compression = sniffCompression(head);
  const raw = createReadStream(file);
  if (compression === 'none') return { compression, stream: raw };
  const decompressor =
    compression === 'bzip2'
      ? processStream('bzip2', ['-d', '-c'], 'bzip2 -d')
      : compression === 'xz'
        ? processStream('xz', ['-d', '-c'], 'xz -d')
        : createDecompressor(compression, options.compressionEnv);
  raw.on('error', (error) => decompressor.destroy(error));
  return { compression, stream: raw.pipe(decompressor) };
}

/** BuildKit's test: decompresses the start of the file and looks for a tar header. */
export async function isArchiveFile(file: string, options: ArchiveOptions = {}): Promise<boolean> {
  const { stream } = await openDecompressed(file, options);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size >= 512) break;
    }
  } catch (error) {
    // Bytes that look compressed but do not decompress are not an archive: copied as-is.
    if (error instanceof Error) return false;
    throw error;
  } finally {
    stream.destroy();
  }
  return isTarHeader(Buffer.concat(chunks).subarray(0, 512));
}

type Header = tarStream.Header;

interface PendingDirectory {
  host: string;
  atime: number;
  mtime: number;
}

/**
 * Extracts `file` into the root-relative directory `destination` (which exists). Every path it
 * writes goes to the recorder.
 */
export async function extractArchive(
  file: string,
  destination: string,
  recorder: ChangeRecorder,
  site: InstructionSite,
  chownTo: Owner | undefined,
  runner: CommandRunner,
  options: ArchiveOptions = {},
): Promise<void> {
  const { stream } = await openDecompressed(file, options);
  const extract = tarStream.extract();
  const resolver = new RootResolver(recorder.host(destination));
  const directories: PendingDirectory[] = [];
  const piping: Promise<Error | undefined> = pipeline(stream, extract).then(
    () => undefined,
    (error: Error) => error,
  );
  const fail = (entry: string, reason: string, cause?: unknown): CopyError =>
    new CopyError(site, `extracting ${file}: entry ${JSON.stringify(entry)}: ${reason}`, { cause });
  try {
    for await (const entry of extract) {
      const header = entry.header;
      const name = cleanPath('/' + header.name).slice(1);
      if (name === '' || !isSupported(header)) {
        entry.resume();
        continue;
      }
      await makeParents(resolver, name, destination, recorder);
      const { relative, host } = await resolver.resolveEntry(name);
      const rootRelative = joinRelative(destination, relative);
      const existing = await lstatOrUndefined(host);
      if (existing !== undefined && !(existing.isDirectory() && header.type === 'directory')) {
        await rm(host, { recursive: true, force: true });
        resolver.invalidate();
      }
      const owner = chownTo ?? { uid: header.uid ?? 0, gid: header.gid ?? 0 };
      const mode = (header.mode ?? 0o644) & 0o7777;
      const mtime = (header.mtime ?? new Date(0)).getTime() / 1000;
      switch (header.type) {
        case 'directory':
          if (existing === undefined || !existing.isDirectory()) await mkdir(host, { mode: 0o700 });
          directories.push({ host, atime: mtime, mtime });
          entry.resume();
          break;
        case 'file':
        case 'contiguous-file': {
          const handle = await open(host, 'wx', 0o600);
          try {
            for await (const chunk of entry) await handle.write(chunk as Buffer);
          } finally {
            await handle.close();
          }
          break;
        }
        case 'symlink':
          await symlink(header.linkname ?? '', host);
          resolver.invalidate();
          entry.resume();
          break;
        case 'link': {
          const target = await resolver.resolveEntry(cleanPath('/' + (header.linkname ?? '')).slice(1));
          try {
            await link(target.host, host);
          } catch (error) {
            throw fail(header.name, `cannot hard-link to ${JSON.stringify(header.linkname)}`, error);
          }
          entry.resume();
          break;
        }
        default: {
          const kind = header.type === 'fifo' ? ['p'] : [header.type === 'character-device' ? 'c' : 'b', String(header.devmajor ?? 0), String(header.devminor ?? 0)];
          const result = await runner('mknod', [host, ...kind]);
          if (result.exitCode !== 0) throw fail(header.name, `mknod failed: ${result.stderr.trim()}`);
          entry.resume();
        }
      }
      await lchown(host, owner.uid, owner.gid);
      if (header.type !== 'symlink') await chmod(host, mode);
      if (header.type !== 'directory') await lutimes(host, mtime, mtime);
      recorder.record(rootRelative);
    }
    const streamError = await piping;
    if (streamError !== undefined) throw streamError;
  } catch (error) {
    stream.destroy();
    extract.destroy();
    await piping;
    if (error instanceof CopyError) throw error;
    throw new CopyError(site, `extracting ${file}: ${(error as Error).message}`, { cause: error });
  }
  // Directory times last: writing their contents moved them.
  for (const dir of directories.reverse()) {
    const current = await lstatOrUndefined(dir.host);
    if (current?.isDirectory() === true) await lutimes(dir.host, dir.atime, dir.mtime);
  }
}

function isSupported(header: Header): boolean {
  return ['directory', 'file', 'contiguous-file', 'symlink', 'link', 'fifo', 'character-device', 'block-device'].includes(header.type ?? 'file');
}


/** moby's Untar: a parent the archive did not list is created 0755 root:root. */
async function makeParents(resolver: RootResolver, name: string, destination: string, recorder: ChangeRecorder): Promise<void> {
  const parts = name.split('/');
  for (let i = 1; i < parts.length; i++) {
    const { relative, host } = await resolver.resolveDirectory(parts.slice(0, i).join('/'));
    const existing = await lstatOrUndefined(host);
    if (existing === undefined) {
      await mkdir(host);
      await lchown(host, 0, 0);
      await chmod(host, 0o755);
      resolver.invalidate();
    }
    recorder.record(joinRelative(destination, relative));
  }
}
