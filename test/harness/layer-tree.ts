/**
 * The fast reader behind readImageTree({ reader: 'layers' }): applies an OCI layout's layers in
 * memory, streaming each tar once (tar-stream, zlib, or the zstd tool), with the OCI whiteout rules,
 * and records the same TreeEntry umoci's unpack + a walk would give, without writing the root
 * filesystem to disk (a Debian layer: ~2 s instead of ~10 s). Its agreement with umoci on real
 * images is a self-test (harness-image-tree.test.ts), since it is hand-written: no npm library
 * applies OCI layers with whiteouts. It shares no code with kiln.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import type { ImageIndex, ImageManifest } from '../../src/image/types.js';
import type { EntryType, TreeEntry } from './image-tree.js';

/** Shared by the paths of one hard-link group, as an inode is. */
interface Inode {
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkTarget?: string;
  sha256?: string;
  device?: string;
}

export class LayerTreeError extends Error {
  constructor(message: string, readonly layer: string) {
    super(`${message} (layer ${layer})`);
    this.name = 'LayerTreeError';
  }
}

/** The root filesystem of the one image in the OCI layout `layoutDir`, applied layer by layer. */
export async function applyLayoutLayers(layoutDir: string): Promise<Map<string, TreeEntry>> {
  const manifest = await layoutManifest(layoutDir);
  const paths = new Map<string, Inode>([['/', { type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0 }]]);
  for (const layer of manifest.layers) await applyLayer(blobPath(layoutDir, layer.digest), layer.digest, paths);
  const links = new Map<Inode, number>();
  for (const inode of paths.values()) links.set(inode, (links.get(inode) ?? 0) + 1);
  const entries = new Map<string, TreeEntry>();
  for (const [entryPath, inode] of paths) {
    const entry: TreeEntry = { path: entryPath, ...inode };
    if (inode.type === 'file') entry.nlink = links.get(inode) ?? 1;
    entries.set(entryPath, entry);
  }
  return entries;
}

/** The manifest of the one image in the OCI layout. */
async function layoutManifest(layoutDir: string): Promise<ImageManifest> {
  const index = JSON.parse(await readFile(path.join(layoutDir, 'index.json'), 'utf8')) as ImageIndex;
  const manifestDescriptor = index.manifests[0];
  if (manifestDescriptor === undefined) throw new Error(`${layoutDir}: index.json lists no manifest`);
  return JSON.parse(await readFile(blobPath(layoutDir, manifestDescriptor.digest), 'utf8')) as ImageManifest;
}

function blobPath(layoutDir: string, digest: string): string {
  const [algorithm, hex] = digest.split(':');
  if (algorithm === undefined || hex === undefined) throw new Error(`not a digest: ${digest}`);
  return path.join(layoutDir, 'blobs', algorithm, hex);
}

async function applyLayer(file: string, digest: string, paths: Map<string, Inode>): Promise<void> {
  const addedHere = new Set<string>();
  const extract = tar.extract();
  const feeding = pipeline(await decompressed(file), extract);
  for await (const entry of extract) {
    const header = entry.header;
    const name = normalise(header.name);
    const base = path.posix.basename(name);
    const parent = path.posix.dirname(name);
    if (base === '.wh..wh..opq') {
      // Opaque directory: what lower layers had in it is hidden; this layer's own entries stay.
      for (const existing of [...paths.keys()]) {
        if (isBelow(existing, parent) && !addedHere.has(existing)) paths.delete(existing);
      }
      entry.resume();
      continue;
    }
    if (base.startsWith('.wh.')) {
      removeTree(paths, path.posix.join(parent, base.slice(4)));
      entry.resume();
      continue;
    }
    ensureParents(paths, name, addedHere);
    const previous = paths.get(name);
    let inode: Inode;
    if (header.type === 'link') {
      const target = paths.get(normalise(header.linkname ?? ''));
      if (target === undefined) throw new LayerTreeError(`hard link ${name} to missing ${header.linkname ?? ''}`, digest);
      inode = target;
      entry.resume();
    } else {
      inode = {
        type: entryType(header.type, digest, name),
        mode: (header.mode ?? 0) & 0o7777,
        uid: header.uid ?? 0,
        gid: header.gid ?? 0,
        size: 0,
        mtime: Math.floor((header.mtime?.getTime() ?? 0) / 1000),
      };
      if (inode.type === 'file') {
        const hash = createHash('sha256');
        let size = 0;
        for await (const chunk of entry as AsyncIterable<Buffer>) {
          hash.update(chunk);
          size += chunk.length;
        }
        inode.size = size;
        inode.sha256 = hash.digest('hex');
      } else {
        entry.resume();
      }
      if (inode.type === 'symlink') inode.linkTarget = header.linkname ?? '';
      if (inode.type === 'char-device' || inode.type === 'block-device') inode.device = `${header.devmajor ?? 0}:${header.devminor ?? 0}`;
    }
    // A non-directory replacing a directory takes its contents with it.
    if (previous?.type === 'directory' && inode.type !== 'directory') removeTree(paths, name);
    paths.set(name, inode);
    addedHere.add(name);
  }
  await feeding;
}

/** Where a searched string was found in a layer. */
export interface LayerHit {
  layer: string;
  path: string;
  part: 'name' | 'link-target' | 'content';
}

/**
 * Every place in the layout's layers (all of them, not just what survives whiteouts) where `needle`
 * occurs: entry names, link targets, file contents. Contents are scanned chunk by chunk, keeping
 * needle.length - 1 bytes across chunk boundaries, never a whole file in memory.
 */
export async function searchLayoutLayers(layoutDir: string, needle: Buffer): Promise<LayerHit[]> {
  if (needle.length === 0) throw new Error('searchLayoutLayers: empty needle');
  const manifest = await layoutManifest(layoutDir);
  const hits: LayerHit[] = [];
  for (const layer of manifest.layers) {
    const extract = tar.extract();
    const feeding = pipeline(await decompressed(blobPath(layoutDir, layer.digest)), extract);
    for await (const entry of extract) {
      const name = entry.header.name;
      if (Buffer.from(name).includes(needle)) hits.push({ layer: layer.digest, path: name, part: 'name' });
      if (entry.header.linkname && Buffer.from(entry.header.linkname).includes(needle)) {
        hits.push({ layer: layer.digest, path: name, part: 'link-target' });
      }
      let tail = Buffer.alloc(0);
      let found = false;
      for await (const chunk of entry as AsyncIterable<Buffer>) {
        if (found) continue;
        const window = Buffer.concat([tail, chunk]);
        if (window.includes(needle)) found = true;
        tail = window.subarray(Math.max(0, window.length - (needle.length - 1)));
      }
      if (found) hits.push({ layer: layer.digest, path: name, part: 'content' });
    }
    await feeding;
  }
  return hits;
}

/** One layer's entries as its tar lists them (whiteouts included), normalised to absolute paths. */
export interface LayerListing {
  digest: string;
  paths: string[];
}

/** Every layer of the layout's image, in order, with the paths it holds (contents are not read). */
export async function listLayoutLayers(layoutDir: string): Promise<LayerListing[]> {
  const manifest = await layoutManifest(layoutDir);
  const listings: LayerListing[] = [];
  for (const layer of manifest.layers) {
    const extract = tar.extract();
    const feeding = pipeline(await decompressed(blobPath(layoutDir, layer.digest)), extract);
    const paths: string[] = [];
    for await (const entry of extract) {
      paths.push(normalise(entry.header.name));
      entry.resume();
    }
    await feeding;
    listings.push({ digest: layer.digest, paths });
  }
  return listings;
}

function ensureParents(paths: Map<string, Inode>, name: string, addedHere: Set<string>): void {
  const missing: string[] = [];
  for (let dir = path.posix.dirname(name); dir !== '/' && !paths.has(dir); dir = path.posix.dirname(dir)) missing.push(dir);
  // Directories a layer implies without listing them (umoci makes them 0755 root:root).
  for (const dir of missing.reverse()) {
    paths.set(dir, { type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0 });
    addedHere.add(dir);
  }
}

function removeTree(paths: Map<string, Inode>, root: string): void {
  for (const existing of [...paths.keys()]) {
    if (existing === root || isBelow(existing, root)) paths.delete(existing);
  }
}

function isBelow(candidate: string, dir: string): boolean {
  return dir === '/' ? candidate !== '/' : candidate.startsWith(`${dir}/`);
}

/** `./usr/bin/`, `usr/bin` and `/usr/bin` are all `/usr/bin`. */
function normalise(name: string): string {
  const joined = path.posix.normalize(`/${name}`);
  return joined.length > 1 && joined.endsWith('/') ? joined.slice(0, -1) : joined;
}

function entryType(type: tar.Header['type'], digest: string, name: string): EntryType {
  switch (type) {
    case 'file':
    case 'contiguous-file':
    case undefined:
      return 'file';
    case 'directory':
      return 'directory';
    case 'symlink':
      return 'symlink';
    case 'character-device':
      return 'char-device';
    case 'block-device':
      return 'block-device';
    case 'fifo':
      return 'fifo';
    default:
      throw new LayerTreeError(`unexpected tar entry type ${type} for ${name}`, digest);
  }
}

/** The layer's tar stream, decompressed by what its first bytes say (gzip, zstd or none). */
async function decompressed(file: string): Promise<Readable> {
  const handle = await open(file, 'r');
  const magic = Buffer.alloc(4);
  try {
    await handle.read(magic, 0, 4, 0);
  } finally {
    await handle.close();
  }
  if (magic[0] === 0x1f && magic[1] === 0x8b) {
    const gunzip = createGunzip();
    pipeline(createReadStream(file), gunzip).catch((error: unknown) => gunzip.destroy(error as Error));
    return gunzip;
  }
  if (magic.equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) {
    // Node 20's zlib has no zstd: the zstd tool decompresses (a Debian package the tests install).
    const child = spawn('zstd', ['-dc', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = new PassThrough();
    const stderr: Buffer[] = [];
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.stdout.pipe(out, { end: false });
    child.once('error', (error) => out.destroy(error));
    child.once('close', (code) => {
      if (code === 0) out.end();
      else out.destroy(new Error(`zstd -dc ${file} exited with ${code}: ${Buffer.concat(stderr).toString('utf8')}`));
    });
    return out;
  }
  return createReadStream(file);
}
