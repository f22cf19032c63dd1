/**
 * Tar (and tar.gz) build contexts, from a file, standard input or a download, extracted safely:
 * no entry may land outside the destination, write through a symlink, or hard-link to a path
 * outside it. Symlinks are recreated as symlinks with their targets untouched and never followed.
 */
import { lstat, link, lutimes, mkdir, open, rmdir, symlink, unlink, utimes, chmod } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { ContextSourceError, UnsafeTarEntryError } from './types.js';

export type StreamFormat = 'gzip' | 'tar' | 'zstd' | 'bzip2' | 'xz' | 'unknown';

/** Recognizes a stream by its first bytes (at least 262 for tar's `ustar` magic). */
export function detectFormat(head: Buffer): StreamFormat {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32BE(0) === 0x28b52ffd) return 'zstd';
  if (head.length >= 3 && head.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 262 && head.toString('latin1', 257, 262) === 'ustar') return 'tar';
  return 'unknown';
}

/**
 * Reads the first `n` bytes of a stream (fewer if it ends first) and returns them with a stream
 * that replays them followed by the rest, so a format can be sniffed without buffering the whole.
 */
export async function peekStream(input: Readable, n: number): Promise<{ head: Buffer; stream: Readable }> {
  const iterator = input[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  const chunks: Buffer[] = [];
  let length = 0;
  let ended = false;
  while (length < n) {
    const next = await iterator.next();
    if (next.done === true) {
      ended = true;
      break;
    }
    const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    chunks.push(chunk);
    length += chunk.length;
  }
  const buffered = Buffer.concat(chunks);
  async function* replay(): AsyncGenerator<Buffer> {
    if (buffered.length > 0) yield buffered;
    if (ended) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done === true) return;
      yield typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    }
  }
  return { head: buffered.subarray(0, Math.min(n, buffered.length)), stream: Readable.from(replay(), { objectMode: false }) };
}

export interface ExtractOptions {
  /** How the archive is named in errors (`tar://ctx.tar.gz`, `stdin`, a URL). */
  label: string;
  onWarning?: (message: string) => void;
}

/**
 * Extracts a tar or gzip-compressed tar stream into `dest` (an existing, empty directory).
 * Throws {@link UnsafeTarEntryError} naming the first entry that would escape, and
 * {@link ContextSourceError} when the stream is not a (supported) tar archive.
 */
export async function extractTarStream(input: Readable, dest: string, options: ExtractOptions): Promise<void> {
  let peeked: { head: Buffer; stream: Readable };
  try {
    peeked = await peekStream(input, 512);
  } catch (err) {
    throw new ContextSourceError(options.label, `cannot read the archive: ${describe(err)}`, { cause: err });
  }
  const { head, stream } = peeked;
  const format = detectFormat(head);
  if (format === 'zstd' || format === 'bzip2' || format === 'xz') {
    stream.destroy();
    throw new ContextSourceError(options.label, `${format}-compressed archives are not supported; use a plain tar or tar.gz`);
  }
  const extract = tar.extract();
  const stages: NodeJS.ReadWriteStream[] = format === 'gzip' ? [createGunzip()] : [];
  const pumping = pipeline([stream, ...stages, extract as unknown as NodeJS.WritableStream]);
  // Whichever side fails first decides the error; the other side's rejection must not go unhandled.
  let pumpError: unknown;
  const pumped = pumping.then(
    () => undefined,
    (err: unknown) => {
      pumpError = err;
    },
  );
  const writer = new SafeTarWriter(dest, options);
  try {
    for await (const entry of extract) {
      await writer.write(entry.header, entry as unknown as AsyncIterable<Buffer> & { resume(): unknown });
    }
    await writer.finish();
  } catch (err) {
    stream.destroy();
    extract.destroy();
    await pumped;
    if (err instanceof UnsafeTarEntryError || err instanceof ContextSourceError) throw err;
    throw new ContextSourceError(options.label, `not a readable tar archive: ${describe(err)}`, { cause: err });
  }
  await pumped;
  if (pumpError !== undefined) {
    throw new ContextSourceError(options.label, `not a readable tar archive: ${describe(pumpError)}`, { cause: pumpError });
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A tar entry's name as path segments, or the reason it may not be extracted. */
function entrySegments(name: string): string[] {
  if (name.startsWith('/')) throw new UnsafeTarEntryError(name, 'absolute paths are not allowed in a build context');
  const segments = name.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) throw new UnsafeTarEntryError(name, 'a ".." component would leave the build context');
  return segments;
}

async function lstatOrNull(path: string): Promise<Stats | null> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Writes entries one by one, checking each path against what is already on disk. */
class SafeTarWriter {
  /** Directories (relative) known to be real directories created or checked by this extraction. */
  private readonly realDirs = new Set<string>();
  private readonly dirTimes: Array<{ path: string; mtime: Date }> = [];

  constructor(
    private readonly dest: string,
    private readonly options: ExtractOptions,
  ) {}

  async write(header: tar.Header, body: AsyncIterable<Buffer> & { resume(): unknown }): Promise<void> {
    const type = header.type ?? 'file';
    const segments = entrySegments(header.name);
    if (segments.length === 0) {
      // The archive's own root ("./"): nothing to create.
      body.resume();
      return;
    }
    const rel = segments.join('/');
    await this.ensureParents(header.name, segments);
    const abs = join(this.dest, rel);
    const mode = (header.mode ?? (type === 'directory' ? 0o755 : 0o644)) & 0o7777;
    const mtime = header.mtime ?? new Date(0);

    switch (type) {
      case 'directory': {
        const existing = await lstatOrNull(abs);
        if (existing !== null && !existing.isDirectory()) {
          await unlink(abs);
        }
        if (existing === null || !existing.isDirectory()) await mkdir(abs);
        await chmod(abs, mode);
        this.realDirs.add(rel);
        this.dirTimes.push({ path: abs, mtime });
        body.resume();
        return;
      }
      case 'file':
      case 'contiguous-file': {
        await this.clear(header.name, rel, abs);
        // O_EXCL: if anything (a symlink planted meanwhile) is there, fail instead of following it.
        const handle = await open(abs, 'wx', mode);
        try {
          for await (const chunk of body) await handle.write(chunk);
        } finally {
          await handle.close();
        }
        await chmod(abs, mode);
        await utimes(abs, mtime, mtime);
        return;
      }
      case 'symlink': {
        body.resume();
        await this.clear(header.name, rel, abs);
        await symlink(header.linkname ?? '', abs);
        await lutimes(abs, mtime, mtime);
        return;
      }
      case 'link': {
        body.resume();
        const target = header.linkname ?? '';
        if (target.startsWith('/')) throw new UnsafeTarEntryError(header.name, `hard link to absolute path ${JSON.stringify(target)}`);
        const targetSegments = target.split('/').filter((s: string) => s !== '' && s !== '.');
        if (targetSegments.includes('..') || targetSegments.length === 0) {
          throw new UnsafeTarEntryError(header.name, `hard link target ${JSON.stringify(target)} is outside the build context`);
        }
        await this.checkParents(header.name, targetSegments);
        const targetAbs = join(this.dest, targetSegments.join('/'));
        const targetStat = await lstatOrNull(targetAbs);
        if (targetStat === null || targetStat.isDirectory()) {
          throw new UnsafeTarEntryError(header.name, `hard link target ${JSON.stringify(target)} is not a file extracted earlier`);
        }
        await this.clear(header.name, rel, abs);
        await link(targetAbs, abs);
        return;
      }
      default: {
        body.resume();
        this.options.onWarning?.(`${this.options.label}: skipping ${type} entry ${JSON.stringify(header.name)} (not supported in a build context)`);
        return;
      }
    }
  }

  /** Directory modification times last: creating children changed them. */
  async finish(): Promise<void> {
    for (let i = this.dirTimes.length - 1; i >= 0; i--) {
      const { path, mtime } = this.dirTimes[i] as { path: string; mtime: Date };
      await utimes(path, mtime, mtime);
    }
  }

  /** Creates missing parent directories; refuses a parent that is a symlink or not a directory. */
  private async ensureParents(name: string, segments: readonly string[]): Promise<void> {
    let rel = '';
    for (let i = 0; i < segments.length - 1; i++) {
      rel = i === 0 ? (segments[0] as string) : rel + '/' + (segments[i] as string);
      if (this.realDirs.has(rel)) continue;
      const abs = join(this.dest, rel);
      const st = await lstatOrNull(abs);
      if (st === null) {
        await mkdir(abs, { mode: 0o755 });
      } else if (st.isSymbolicLink()) {
        throw new UnsafeTarEntryError(name, `its parent ${JSON.stringify(rel)} is a symbolic link; writing through it could leave the build context`);
      } else if (!st.isDirectory()) {
        throw new UnsafeTarEntryError(name, `its parent ${JSON.stringify(rel)} is not a directory`);
      }
      this.realDirs.add(rel);
    }
  }

  /** Like {@link ensureParents} but for a hard link's target: nothing is created. */
  private async checkParents(name: string, segments: readonly string[]): Promise<void> {
    let rel = '';
    for (let i = 0; i < segments.length - 1; i++) {
      rel = i === 0 ? (segments[0] as string) : rel + '/' + (segments[i] as string);
      if (this.realDirs.has(rel)) continue;
      const st = await lstatOrNull(join(this.dest, rel));
      if (st === null || !st.isDirectory()) {
        throw new UnsafeTarEntryError(name, `hard link target passes through ${JSON.stringify(rel)}, which is not a directory`);
      }
    }
  }

  /** Removes what an entry replaces (as tar does); a non-empty directory is not replaced. */
  private async clear(name: string, rel: string, abs: string): Promise<void> {
    const st = await lstatOrNull(abs);
    if (st === null) return;
    if (st.isDirectory()) {
      try {
        await rmdir(abs);
      } catch (err) {
        const why = (err as NodeJS.ErrnoException).code === 'ENOTEMPTY' ? 'non-empty ' : '';
        throw new UnsafeTarEntryError(name, `it would replace the ${why}directory ${JSON.stringify(rel)} (${describe(err)})`);
      }
      this.realDirs.delete(rel);
      return;
    }
    await unlink(abs);
  }
}
