import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import tarStream from 'tar-stream';

export async function scratchDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-rootfs-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export type TarEntry = Parameters<tarStream.Pack['entry']>[0] & { body?: string | Buffer; pax?: Record<string, string> };

/** A small tar built in memory with tar-stream (test fixtures only: real layers are streamed). */
export async function makeTar(entries: readonly TarEntry[], compression: 'none' | 'gzip' = 'none'): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const collect = (async () => {
    const source = compression === 'gzip' ? pack.pipe(zlib.createGzip()) : pack;
    for await (const chunk of source as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(chunk));
  })();
  for (const { body, ...header } of entries) {
    const full = { mtime: new Date(1_600_000_000_000), uid: 0, gid: 0, mode: header.type === 'directory' ? 0o755 : 0o644, ...header };
    await new Promise<void>((resolve, reject) => {
      pack.entry(full, body ?? '', (error) => (error ? reject(error) : resolve()));
    });
  }
  pack.finalize();
  await collect;
  return Buffer.concat(chunks);
}

export function streamOf(buffer: Buffer): Readable {
  return Readable.from([buffer]);
}

export interface TreeEntry {
  type: string;
  mode: string;
  uid: number;
  gid: number;
  mtime?: number;
  content?: string;
  target?: string;
  /** Paths sharing this entry's inode (hard links), sorted. */
  links?: string[];
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/** Everything a layer round trip must preserve, per relative path. */
export async function describeTree(root: string, options: { mtimes?: boolean } = {}): Promise<Record<string, TreeEntry>> {
  const result: Record<string, TreeEntry> = {};
  const inodes = new Map<string, string[]>();
  async function visit(relative: string): Promise<void> {
    const host = path.join(root, relative);
    const stat = await lstat(host);
    const type = stat.isDirectory() ? 'dir' : stat.isSymbolicLink() ? 'symlink' : stat.isFile() ? 'file' : stat.isFIFO() ? 'fifo' : stat.isCharacterDevice() ? 'char' : stat.isBlockDevice() ? 'block' : 'other';
    const entry: TreeEntry = { type, mode: (stat.mode & 0o7777).toString(8), uid: stat.uid, gid: stat.gid };
    if (options.mtimes !== false && type !== 'symlink') entry.mtime = Math.floor(stat.mtimeMs / 1000);
    if (type === 'file') {
      entry.content = await sha256File(host);
      if (stat.nlink > 1) {
        const key = `${stat.dev}:${stat.ino}`;
        inodes.set(key, [...(inodes.get(key) ?? []), relative]);
        entry.links = [key];
      }
    }
    if (type === 'symlink') entry.target = await readlink(host);
    if (relative !== '') result[relative] = entry;
    if (type === 'dir') {
      for (const child of (await readdir(host)).sort()) await visit(relative === '' ? child : `${relative}/${child}`);
    }
  }
  await visit('');
  for (const entry of Object.values(result)) {
    if (entry.links !== undefined) entry.links = [...(inodes.get(entry.links[0] as string) ?? [])].sort();
  }
  return result;
}
