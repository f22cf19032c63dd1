import { closeSync, fchmodSync, fchownSync, constants as fsConstants, futimesSync, openSync, type Stats, writeSync } from 'node:fs';
import { chmod, link, lchown, lutimes, mkdir, open, readdir, rm, symlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import type { Image } from '../image/image.js';
import { type CommandRunner, runCommand, setXattr } from './command-runner.js';
import { type Compression, type CompressionEnv, decompressedStream } from './decompress.js';
import { RootResolver } from './resolve-in-root.js';
import type { RootPaths } from './root-paths.js';
import { createTarExtract, rawXattrMarker, schilyXattrPrefix } from './tar-extract.js';
import { errorCode, lstatOrUndefined } from './lstat.js';

/** An entry of a layer could not be applied; names the layer and the entry, as users need. */
export class LayerEntryError extends Error {
  constructor(
    readonly layer: string,
    readonly entry: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`layer ${layer}: entry ${JSON.stringify(entry)}: ${reason}`, options);
    this.name = 'LayerEntryError';
  }
}

export interface ApplyLayerOptions {
  /** How errors and warnings name this layer (its digest, usually). */
  layerName: string;
  /** The descriptor's media type; the magic bytes decide, this only enriches messages. */
  mediaType?: string;
  /** Set owners from the tar's numeric uid/gid (default: when running as root, the only case it can work). */
  preserveOwners?: boolean;
  /** Runs `mknod` and `setfattr` (default: child_process). */
  runner?: CommandRunner;
  /** Receives what could not be reproduced exactly (device nodes without privilege, xattrs). */
  warn?: (message: string) => void;
  compression?: CompressionEnv;
  /**
   * Which regular files get their content (default: all). The others are created empty with their
   * metadata: a skeleton of the image whose paths, types, links and modes are exact, for steps that
   * only need to know where things are (a COPY-only stage never reads a base file's bytes).
   */
  keepContent?: (relativePath: string) => boolean;
  /**
   * Paths the layer may not touch (an in-place build's mount points and kiln's own directories):
   * entries at or below them are skipped, and whiteouts or replacements of their ancestors empty
   * those ancestors around them instead of removing them.
   */
  protect?: RootPaths;
}

export interface ApplyLayerResult {
  compression: Compression;
  entries: number;
  warnings: number;
}

/** tar-stream's header; PAX records (xattrs, precise times) arrive as strings. */
type TarHeader = Partial<Omit<tarStream.Header, 'pax' | 'type'>> & {
  name: string;
  type?: tarStream.Header['type'] | null;
  pax?: Record<string, string> | null;
};

/** An entry's data as tar-stream hands it out (a streamx readable). */
type EntryBody = AsyncIterable<Uint8Array>;

const noContent: EntryBody = { [Symbol.asyncIterator]: async function* () {} };

/** Larger files are written in batches of this size. */
const writeBatchBytes = 1024 * 1024;
/** Files up to this size are collected whole and written synchronously (see smallFile). */
const smallFileBytes = 256 * 1024;
// O_EXCL|O_NOFOLLOW: never write through whatever was there (a symlink or a hard link an earlier
// entry planted); it is removed and the file created afresh.
const createFlags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;

function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}



async function drain(body: EntryBody): Promise<void> {
  for await (const _chunk of body) {
    // whiteouts, links and special files carry no data worth keeping; the tar must still advance
  }
}

/** Seconds since the epoch, with PAX's sub-second mtime when present. */
function entryTime(header: TarHeader, key: 'mtime' | 'atime'): number {
  const pax = header.pax?.[key];
  if (pax !== undefined && /^-?\d+(\.\d+)?$/.test(pax)) return Number(pax);
  if (key === 'atime') return entryTime(header, 'mtime');
  return Math.floor((header.mtime?.getTime() ?? 0) / 1000);
}

/** `SCHILY.xattr.NAME` (GNU tar, Go, BuildKit) and `LIBARCHIVE.xattr.NAME` (bsdtar, base64). */
function entryXattrs(header: TarHeader): { name: string; value: Buffer | undefined }[] {
  const result: { name: string; value: Buffer | undefined }[] = [];
  const pax = header.pax ?? {};
  const exact = pax[rawXattrMarker] !== undefined;
  for (const [key, raw] of Object.entries(pax)) {
    if (key.startsWith(schilyXattrPrefix)) {
      const name = key.slice(schilyXattrPrefix.length);
      if (exact) {
        result.push({ name, value: Buffer.from(raw, 'latin1') });
        continue;
      }
      // Without the byte-exact decoding (tar-extract.ts), bytes that are not valid UTF-8 came
      // back as U+FFFD and cannot be recovered: reported as unrepresentable rather than written wrong.
      result.push({ name, value: raw.includes('\ufffd') ? undefined : Buffer.from(raw, 'utf8') });
    } else if (key.startsWith('LIBARCHIVE.xattr.')) {
      result.push({ name: decodeURIComponent(key.slice('LIBARCHIVE.xattr.'.length)), value: Buffer.from(raw, 'base64') });
    }
  }
  return result;
}

interface DeferredDirectory {
  host: string;
  mode: number;
  atime: number;
  mtime: number;
}

/** Applies one layer's entries, in order, to a root. One instance per layer. */
class LayerApplier {
  private readonly resolver: RootResolver;
  /** Root-relative paths this layer has written: whiteouts and opaque markers spare them. */
  private readonly added = new Set<string>();
  /** Directory modes and times are set once their contents are in (writing a child moves mtime). */
  private readonly directories: DeferredDirectory[] = [];
  private readonly preserveOwners: boolean;
  private readonly runner: CommandRunner;
  warnings = 0;
  entries = 0;

  constructor(
    root: string,
    private readonly options: ApplyLayerOptions,
  ) {
    this.resolver = new RootResolver(root);
    this.preserveOwners = options.preserveOwners ?? process.getuid?.() === 0;
    this.runner = options.runner ?? runCommand;
  }

  private warn(entry: string, message: string): void {
    this.warnings += 1;
    this.options.warn?.(`layer ${this.options.layerName}: ${JSON.stringify(entry)}: ${message}`);
  }

  private fail(entry: string, reason: string, cause?: unknown): never {
    throw new LayerEntryError(this.options.layerName, entry, reason, cause === undefined ? undefined : { cause });
  }

  async apply(header: TarHeader, body: EntryBody): Promise<void> {
    this.entries += 1;
    const name = header.name;
    try {
      const base = path.posix.basename(name.replace(/\/+$/, ''));
      if (base.startsWith('.wh.')) {
        await drain(body);
        await this.whiteout(name, base);
        return;
      }
      if (header.pax !== undefined && header.pax !== null && Object.keys(header.pax).some((key) => key.startsWith('GNU.sparse.'))) {
        // PAX-format sparse files look like regular files whose data is a block map: skipping is
        // honest, writing that data as the file's content would not be.
        await drain(body);
        this.warn(name, 'GNU sparse files are not supported: skipped');
        return;
      }
      const target = await this.resolver.resolveEntry(name);
      if (this.options.protect?.covers(target.relative)) {
        await drain(body);
        return;
      }
      if (header.type !== 'directory' && this.options.protect?.holdsBelow(target.relative)) {
        await drain(body);
        this.warn(name, 'would replace a directory holding mount points or kiln\'s own files: skipped');
        return;
      }
      if (target.relative === '') {
        // `./` or `/` (umoci writes one): the root directory's own metadata is the caller's, not the layer's.
        await drain(body);
        return;
      }
      switch (header.type) {
        case 'directory':
          await drain(body);
          await this.directory(header, target.host);
          break;
        case 'file':
        case 'contiguous-file':
          if (this.options.keepContent === undefined || this.options.keepContent(target.relative)) {
            await this.regularFile(header, target.host, body);
          } else {
            await drain(body);
            await this.smallFile(header, target.host, noContent);
          }
          break;
        case 'symlink':
          await drain(body);
          await this.symlink(header, target.host);
          break;
        case 'link':
          await drain(body);
          await this.hardLink(header, target.host);
          break;
        case 'character-device':
        case 'block-device':
        case 'fifo':
          await drain(body);
          await this.specialFile(header, target.host);
          break;
        default:
          await drain(body);
          // tar-stream reports typeflags it does not know (GNU sparse 'S', dump dirs 'D', volume
          // labels 'V') as null. Writing a sparse entry's raw map as file content would be wrong.
          this.warn(name, `unsupported tar entry type (${header.type === null ? 'a GNU sparse file or other extension' : String(header.type)}): skipped`);
          return;
      }
      this.added.add(target.relative);
    } catch (error) {
      if (error instanceof LayerEntryError) throw error;
      this.fail(name, (error as Error).message, error);
    }
  }

  /** `.wh.NAME` removes NAME from lower layers; `.wh..wh..opq` empties its directory of them. */
  private async whiteout(name: string, base: string): Promise<void> {
    const parent = await this.resolver.resolveDirectory(path.posix.dirname(name));
    if (base === '.wh..wh..opq') {
      await this.clearOpaque(parent.relative, parent.host);
      return;
    }
    if (base.startsWith('.wh..wh.')) return; // aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not content
    const hidden = base.slice('.wh.'.length);
    if (hidden === '' || hidden === '.' || hidden === '..') this.fail(name, 'malformed whiteout');
    const relative = parent.relative === '' ? hidden : `${parent.relative}/${hidden}`;
    if (this.added.has(relative)) return; // whiteouts apply to lower layers only
    const protect = this.options.protect;
    if (protect?.covers(relative)) return;
    const host = path.join(parent.host, hidden);
    // Only a real directory is emptied around what it holds: a symlink is removed, never walked.
    if (protect?.holdsBelow(relative) && (await lstatOrUndefined(host))?.isDirectory()) {
      await this.clearExcept(`${relative}/`, host, new Set());
    } else {
      await rm(host, { recursive: true, force: true });
    }
    this.resolver.invalidate();
  }

  private async clearOpaque(relative: string, host: string): Promise<void> {
    const prefix = relative === '' ? '' : `${relative}/`;
    const keepAncestors = new Set<string>();
    for (const added of this.added) {
      if (!added.startsWith(prefix)) continue;
      const parts = added.slice(prefix.length).split('/');
      for (let i = 1; i < parts.length; i += 1) keepAncestors.add(prefix + parts.slice(0, i).join('/'));
    }
    await this.clearExcept(prefix, host, keepAncestors);
    this.resolver.invalidate();
  }

  private async clearExcept(prefix: string, host: string, keepAncestors: ReadonlySet<string>): Promise<void> {
    let children: string[];
    try {
      children = await readdir(host);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return;
      throw error;
    }
    for (const child of children) {
      const relative = prefix + child;
      if (this.added.has(relative) || this.options.protect?.covers(relative)) continue;
      const childHost = path.join(host, child);
      const holds = keepAncestors.has(relative) || this.options.protect?.holdsBelow(relative) === true;
      if (holds && (await lstatOrUndefined(childHost))?.isDirectory()) {
        // This layer wrote something below it without an entry for the directory itself, or it
        // holds a protected path: the directory stays for that, but what lower layers had in it
        // is hidden all the same.
        await this.clearExcept(`${relative}/`, childHost, keepAncestors);
        continue;
      }
      await rm(childHost, { recursive: true, force: true });
    }
  }

  /** Removes whatever is at `host` so something of another kind can take its place. */
  private async removeExisting(host: string, existing: Stats): Promise<void> {
    if (existing.isDirectory()) {
      await rm(host, { recursive: true, force: true });
      this.resolver.invalidate();
    } else {
      await rm(host, { force: true });
      if (existing.isSymbolicLink()) this.resolver.invalidate();
    }
  }

  private async ensureParent(host: string): Promise<void> {
    // The tar had no entry for a parent: create it like tar does (0755, owned by us). The parent
    // path is already resolved inside the root, so no component of it is a symlink.
    await mkdir(path.dirname(host), { recursive: true, mode: 0o755 });
  }

  /** Runs `create`; on EEXIST clears the way, on ENOENT creates the parents, then runs it again. */
  private async create<T>(host: string, create: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await create();
      } catch (error) {
        const code = errorCode(error);
        if (attempt >= 2 || (code !== 'EEXIST' && code !== 'ENOENT')) throw error;
        if (code === 'ENOENT') {
          await this.ensureParent(host);
        } else {
          const existing = await lstatOrUndefined(host);
          if (existing !== undefined) await this.removeExisting(host, existing);
        }
      }
    }
  }

  private async directory(header: TarHeader, host: string): Promise<void> {
    const existing = await lstatOrUndefined(host);
    if (existing === undefined || !existing.isDirectory()) {
      if (existing !== undefined) await this.removeExisting(host, existing);
      await this.create(host, () => mkdir(host, { mode: 0o700 }));
    }
    // A directory entry over an existing directory keeps its contents and takes the entry's metadata.
    if (this.preserveOwners) await lchown(host, header.uid ?? 0, header.gid ?? 0);
    await this.setXattrs(header, host);
    this.directories.push({ host, mode: (header.mode ?? 0o755) & 0o7777, atime: entryTime(header, 'atime'), mtime: entryTime(header, 'mtime') });
  }

  private async regularFile(header: TarHeader, host: string, body: EntryBody): Promise<void> {
    if ((header.size ?? 0) <= smallFileBytes) {
      await this.smallFile(header, host, body);
      return;
    }
    const handle = await this.create(host, () => open(host, createFlags, 0o600));
    try {
      await writeBody(handle, body);
      // chown before chmod: chown clears setuid/setgid.
      if (this.preserveOwners) await handle.chown(header.uid ?? 0, header.gid ?? 0);
      await handle.chmod((header.mode ?? 0o644) & 0o7777);
      await handle.utimes(entryTime(header, 'atime'), entryTime(header, 'mtime'));
    } finally {
      await handle.close();
    }
    await this.setXattrs(header, host);
  }

  /**
   * Small files (most of a distro image) are collected, then written with synchronous calls: each
   * call is a few microseconds of syscall, while an async fs call costs a thread-pool round trip
   * several times that. Measured on 25k files of <8 KiB (bench/unpack.ts small-files): the async
   * path was 4.7x slower than GNU tar. Only bounded, short work blocks the event loop this way.
   */
  private async smallFile(header: TarHeader, host: string, body: EntryBody): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(asBuffer(chunk));
    let fd: number;
    try {
      fd = openSync(host, createFlags, 0o600);
    } catch (error) {
      const code = errorCode(error);
      if (code !== 'EEXIST' && code !== 'ENOENT') throw error;
      // The uncommon cases (something is there, or a parent is missing) take the async path.
      fd = await this.create(host, async () => openSync(host, createFlags, 0o600));
    }
    try {
      const data = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      // write(2) may write less than asked; loop until the whole body is on disk.
      for (let offset = 0; offset < data.length; ) offset += writeSync(fd, data, offset);
      // chown before chmod: chown clears setuid/setgid.
      if (this.preserveOwners) fchownSync(fd, header.uid ?? 0, header.gid ?? 0);
      fchmodSync(fd, (header.mode ?? 0o644) & 0o7777);
      futimesSync(fd, entryTime(header, 'atime'), entryTime(header, 'mtime'));
    } finally {
      closeSync(fd);
    }
    await this.setXattrs(header, host);
  }

  private async symlink(header: TarHeader, host: string): Promise<void> {
    // The target is content, not a path we follow now: later lookups resolve it inside the root.
    await this.create(host, () => symlink(header.linkname ?? '', host));
    this.resolver.invalidate();
    if (this.preserveOwners) await lchown(host, header.uid ?? 0, header.gid ?? 0);
    await this.setXattrs(header, host);
    await lutimes(host, entryTime(header, 'atime'), entryTime(header, 'mtime'));
  }

  private async hardLink(header: TarHeader, host: string): Promise<void> {
    const linkname = header.linkname ?? '';
    // Resolved like any path inside the root (`../../etc/passwd` lands on the root's own
    // etc/passwd); the last component is not followed: linking a symlink links the symlink.
    const target = await this.resolver.resolve(linkname, { followFinal: false });
    if (target.relative === '') this.fail(header.name, `hard link to the root directory (${JSON.stringify(linkname)})`);
    const targetStat = await lstatOrUndefined(target.host);
    if (targetStat === undefined) {
      this.fail(header.name, `hard link target ${JSON.stringify(linkname)} does not exist: it must be an earlier entry of this or a lower layer`);
    }
    if (targetStat.isDirectory()) this.fail(header.name, `hard link target ${JSON.stringify(linkname)} is a directory`);
    if (target.host === host) return;
    await this.create(host, () => link(target.host, host));
  }

  private async specialFile(header: TarHeader, host: string): Promise<void> {
    const kind = header.type === 'fifo' ? 'p' : header.type === 'block-device' ? 'b' : 'c';
    const mode = ((header.mode ?? 0o644) & 0o7777).toString(8);
    const numbers = kind === 'p' ? [] : [String(header.devmajor ?? 0), String(header.devminor ?? 0)];
    const existing = await lstatOrUndefined(host);
    if (existing !== undefined) await this.removeExisting(host, existing);
    else await this.ensureParent(host);
    // Node has no mknod(2); the coreutils command is the portable way to reach it.
    let result;
    try {
      result = await this.runner('mknod', ['-m', mode, host, kind, ...numbers]);
    } catch (error) {
      this.warn(header.name, `cannot run mknod (${(error as Error).message}): ${header.type} skipped`);
      return;
    }
    if (result.exitCode !== 0) {
      this.warn(header.name, `cannot create ${header.type} (${result.stderr.trim()}): skipped; this needs CAP_MKNOD`);
      return;
    }
    if (this.preserveOwners) await lchown(host, header.uid ?? 0, header.gid ?? 0);
    await this.setXattrs(header, host);
    await lutimes(host, entryTime(header, 'atime'), entryTime(header, 'mtime'));
  }

  /**
   * Node has no xattr API, so extended attributes go through `setfattr` (Debian's `attr`
   * package), run only for the rare entries that carry any (file capabilities, mostly). Runs after
   * chown, which clears security.capability.
   */
  private async setXattrs(header: TarHeader, host: string): Promise<void> {
    if (header.pax === undefined || header.pax === null) return;
    for (const { name, value } of entryXattrs(header)) {
      if (value === undefined) {
        this.warn(header.name, `xattr ${name} holds bytes that are not valid UTF-8, which the tar reader cannot represent: skipped`);
        continue;
      }
      let result;
      try {
        result = await setXattr(this.runner, host, name, value);
      } catch (error) {
        this.warn(header.name, `cannot run setfattr (install the attr package): xattr ${name} skipped (${(error as Error).message})`);
        continue;
      }
      if (result.exitCode !== 0) this.warn(header.name, `cannot set xattr ${name}: ${result.stderr.trim()}`);
    }
  }

  /** Directory modes and times, deepest first, once everything is in. */
  async finish(): Promise<void> {
    for (let i = this.directories.length - 1; i >= 0; i -= 1) {
      const dir = this.directories[i] as DeferredDirectory;
      const current = await lstatOrUndefined(dir.host);
      // A later entry of this layer may have removed or replaced it.
      if (current === undefined || !current.isDirectory()) continue;
      await chmod(dir.host, dir.mode);
      await lutimes(dir.host, dir.atime, dir.mtime);
    }
  }
}

async function writeBody(handle: FileHandle, body: EntryBody): Promise<void> {
  let batch: Buffer[] = [];
  let batchBytes = 0;
  for await (const chunk of body) {
    const buffer = asBuffer(chunk);
    batch.push(buffer);
    batchBytes += buffer.length;
    if (batchBytes >= writeBatchBytes) {
      await handle.writev(batch);
      batch = [];
      batchBytes = 0;
    }
  }
  if (batchBytes > 0) await handle.writev(batch);
}

/**
 * Streams one layer blob (gzip, zstd or plain tar, sniffed from its first bytes) into `root`,
 * applying OCI whiteouts. Every path, including link targets and paths that cross symlinks laid by
 * earlier entries or layers, is resolved inside the root as a chroot would (rootfs/resolve-in-root).
 */
export async function applyLayer(root: string, blob: Readable, options: ApplyLayerOptions): Promise<ApplyLayerResult> {
  const { compression, tar } = await decompressedStream(blob, options.compression);
  const extract = createTarExtract();
  const applier = new LayerApplier(root, options);
  // Settled at once into a value: if the stream fails while an entry is being applied, the
  // rejection must not go unobserved until the loop notices.
  const piping: Promise<Error | undefined> = pipeline(tar, extract).then(
    () => undefined,
    (error: Error) => error,
  );
  try {
    for await (const entry of extract) {
      await applier.apply(entry.header as TarHeader, entry as EntryBody);
    }
    const streamError = await piping;
    if (streamError !== undefined) throw streamError;
  } catch (error) {
    tar.destroy();
    extract.destroy();
    blob.destroy();
    // When the loop failed first, the pipeline ends with a consequence (premature close) of it.
    const streamError = await piping;
    if (error instanceof LayerEntryError) throw error;
    const cause = streamError ?? (error as Error);
    throw new LayerEntryError(options.layerName, '(tar stream)', `cannot read layer: ${cause.message}`, { cause });
  }
  await applier.finish();
  return { compression, entries: applier.entries, warnings: applier.warnings };
}

export type UnpackOptions = Omit<ApplyLayerOptions, 'layerName' | 'mediaType'>;

/** Unpacks every layer of `image`, lowest first, into `root` (which should be empty). */
export async function unpackImage(root: string, image: Pick<Image, 'layers'>, options: UnpackOptions = {}): Promise<ApplyLayerResult[]> {
  const results: ApplyLayerResult[] = [];
  for (const layer of image.layers) {
    const blob = await layer.open();
    const { mediaType } = layer.descriptor;
    results.push(await applyLayer(root, blob, { ...options, layerName: layer.descriptor.digest, mediaType }));
  }
  return results;
}
