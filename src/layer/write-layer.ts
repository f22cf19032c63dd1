import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, lstatSync, readFileSync, readlinkSync, type BigIntStats } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { DigestingStream } from '../image/digest.js';
import { FileLayer } from '../image/file-layer.js';
import { MediaType } from '../image/media-types.js';
import { RootResolver } from '../rootfs/resolve-in-root.js';
import type { ChangeSet } from '../snapshot/change.js';
import type { Xattr } from '../snapshot/xattrs.js';
import { type CompressionEnv, createCompressor } from './compression.js';
import type { LayerXattrReader } from './layer-xattrs.js';
import { paxEntryWithXattrs } from './pax-header.js';

export class LayerWriteError extends Error {
  constructor(
    readonly root: string,
    readonly entry: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`writing layer from ${root}: ${JSON.stringify(entry)}: ${reason}`, options);
    this.name = 'LayerWriteError';
  }
}

export interface WriteLayerOptions {
  compression: 'gzip' | 'zstd';
  /** gzip 1-9 (default 6), zstd 1-19 (default 3). */
  level?: number;
  /** Clamp every mtime to `sourceDateEpoch` (default 0 when reproducible and unset). */
  reproducible?: boolean;
  /** Seconds since the epoch (SOURCE_DATE_EPOCH); setting it implies clamping. */
  sourceDateEpoch?: number;
  /** Where the blob lands, named by its digest's hex (an OCI layout's blobs/sha256 fits). */
  outputDir: string;
  /** `docker` gives the Docker gzip media type; zstd layers are OCI-only. Default `oci`. */
  format?: 'oci' | 'docker';
  compressionEnv?: CompressionEnv;
  /** Told about paths the tar format cannot carry (sockets). */
  warn?: (message: string) => void;
  /** Reads the extended attributes entries carry (file capabilities); without it, layers have none. */
  xattrs?: LayerXattrReader;
}

export interface WrittenLayer {
  layer: FileLayer;
  /** sha256 of the uncompressed tar. */
  diffId: string;
  /** sha256 of the compressed blob. */
  digest: string;
  /** Compressed size in bytes. */
  size: number;
  uncompressedSize: number;
  /** The blob's file. */
  path: string;
}

const emptyBody = Buffer.alloc(0);
/** Files up to this size are read whole, synchronously (see TarWriter.upsert). */
const smallFileBytes = 256 * 1024;

type PackHeader = Parameters<tarStream.Pack['entry']>[0];

/** Linux's dev_t split (glibc's gnu_dev_major/minor), exact on 64-bit device numbers. */
function deviceNumbers(rdev: bigint): { devmajor: number; devminor: number } {
  const devmajor = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const devminor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return { devmajor: Number(devmajor), devminor: Number(devminor) };
}

function mediaTypeFor(options: WriteLayerOptions): string {
  if (options.compression === 'zstd') return MediaType.ociLayerZstd;
  return options.format === 'docker' ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip;
}

/** Turns the ChangeSet into tar entries on `pack`, one at a time (memory stays one chunk deep). */
class TarWriter {
  private readonly resolver: RootResolver;
  /** dev:ino of files with several links → the first path written, so later ones become links. */
  private readonly inodes = new Map<string, string>();
  private readonly written = new Set<string>();
  private readonly clamp: number | undefined;
  /** Host path → the extended attributes its entry carries, read for the whole change set at once. */
  private xattrs = new Map<string, Xattr[]>();

  constructor(
    private readonly changeSet: ChangeSet,
    private readonly pack: tarStream.Pack,
    private readonly options: WriteLayerOptions,
  ) {
    this.resolver = new RootResolver(changeSet.root);
    this.clamp = options.sourceDateEpoch ?? (options.reproducible === true ? 0 : undefined);
  }

  private mtime(seconds: number): Date {
    const clamped = this.clamp !== undefined && seconds > this.clamp ? this.clamp : seconds;
    return new Date(clamped * 1000);
  }

  private async entry(header: PackHeader, body: Buffer | NodeJS.ReadableStream = emptyBody, xattrs?: readonly Xattr[]): Promise<void> {
    if (xattrs !== undefined && xattrs.length > 0) {
      // Pushed between entries (the previous one is complete: every entry is awaited), so the PAX
      // header lands right before this entry's header.
      const pax = paxEntryWithXattrs(header.name, header.linkname, xattrs);
      this.pack.push(pax.extendedHeader);
      header = { ...header, name: pax.name, ...(pax.linkname === undefined ? {} : { linkname: pax.linkname }) };
    }
    if (Buffer.isBuffer(body)) {
      // Also for entries without data: tar-stream waits for data on a size-0 'file' given none.
      // The buffer's length becomes the entry's size: a file that changed since lstat stays consistent.
      await new Promise<void>((resolve, reject) => {
        this.pack.entry(header, body, (error) => (error ? reject(error) : resolve()));
      });
      return;
    }
    const sink = this.pack.entry(header);
    await pipeline(body, sink);
  }

  /** Whiteouts carry no metadata worth keeping; fixed fields keep them deterministic. */
  private async marker(name: string): Promise<void> {
    await this.entry({ name, type: 'file', size: 0, mode: 0, uid: 0, gid: 0, uname: '', gname: '', mtime: new Date(0) });
  }

  async write(): Promise<void> {
    const entries = this.changeSet.changes.map((change) => {
      const name = change.path.replace(/^\/+/, '').replace(/\/+$/, '');
      if (name === '' || name.split('/').some((c) => c === '..' || c === '.')) {
        throw new LayerWriteError(this.changeSet.root, change.path, 'not a clean path relative to the root');
      }
      return { change, name, host: '' };
    });
    for (const entry of entries) {
      if (entry.change.kind !== 'delete') entry.host = (await this.resolver.resolveEntry(entry.name)).host;
    }
    if (this.options.xattrs !== undefined) {
      // One getfattr pass over the whole change set, before the first entry: a few processes, not one per file.
      this.xattrs = await this.options.xattrs.read(entries.filter((entry) => entry.change.kind !== 'delete').map((entry) => entry.host));
    }
    for (const { change, name, host } of entries) {
      const parent = path.posix.dirname(name);
      const prefix = parent === '.' ? '' : `${parent}/`;
      switch (change.kind) {
        case 'delete':
          await this.marker(`${prefix}.wh.${path.posix.basename(name)}`);
          break;
        case 'opaque':
          if (!this.written.has(name)) await this.upsert(name, host);
          await this.marker(`${name}/.wh..wh..opq`);
          break;
        case 'upsert':
          if (!this.written.has(name)) await this.upsert(name, host);
          break;
      }
    }
  }

  private async upsert(name: string, host: string): Promise<void> {
    let stat: BigIntStats;
    try {
      // Synchronous, like the small-file reads below: one short syscall, no thread-pool round trip.
      stat = lstatSync(host, { bigint: true });
    } catch (error) {
      throw new LayerWriteError(this.changeSet.root, name, `cannot read it (${(error as Error).message}); did it change after the snapshot?`, { cause: error });
    }
    this.written.add(name);
    const common = {
      mode: Number(stat.mode & 0o7777n),
      uid: Number(stat.uid),
      gid: Number(stat.gid),
      // Owners travel as numbers only: names would come from the build host's passwd, not the image's.
      uname: '',
      gname: '',
      mtime: this.mtime(Number(stat.mtimeMs / 1000n)),
    };
    const xattrs = this.xattrs.get(host);
    if (stat.isDirectory()) {
      await this.entry({ ...common, name: `${name}/`, type: 'directory', size: 0 }, emptyBody, xattrs);
    } else if (stat.isSymbolicLink()) {
      await this.entry({ ...common, name, type: 'symlink', size: 0, linkname: readlinkSync(host) }, emptyBody, xattrs);
    } else if (stat.isFile()) {
      if (stat.nlink > 1n) {
        const key = `${stat.dev}:${stat.ino}`;
        const first = this.inodes.get(key);
        if (first !== undefined) {
          await this.entry({ ...common, name, type: 'link', size: 0, linkname: first });
          return;
        }
        this.inodes.set(key, name);
      }
      if (stat.size <= BigInt(smallFileBytes)) {
        // Small files (most of an image) are read with one synchronous call: a few microseconds of
        // syscalls, where an async open/read/close costs three thread-pool round trips.
        await this.entry({ ...common, name, type: 'file', size: Number(stat.size) }, readFileSync(host), xattrs);
      } else {
        await this.entry({ ...common, name, type: 'file', size: Number(stat.size) }, createReadStream(host, { highWaterMark: 1024 * 1024 }), xattrs);
      }
    } else if (stat.isCharacterDevice() || stat.isBlockDevice()) {
      const type = stat.isCharacterDevice() ? 'character-device' : 'block-device';
      await this.entry({ ...common, name, type, size: 0, ...deviceNumbers(stat.rdev) });
    } else if (stat.isFIFO()) {
      await this.entry({ ...common, name, type: 'fifo', size: 0 });
    } else {
      this.options.warn?.(`${name}: a socket cannot be stored in a layer: skipped`);
    }
  }
}

/**
 * Writes the ChangeSet as a PAX tar, compressed, into `outputDir` in one pass:
 * tar → sha256 (diffID) → compressor → sha256 + size (digest) → temp file, renamed to the digest.
 * Nothing is buffered beyond stream chunks, so several layers can be written concurrently (each
 * call is independent) and a 1 GB layer costs no more memory than a small one.
 * Returns null for an empty ChangeSet: no layer, only an empty-layer history entry.
 */
export async function writeLayer(changeSet: ChangeSet, options: WriteLayerOptions): Promise<WrittenLayer | null> {
  if (changeSet.changes.length === 0) return null;
  const pack = tarStream.pack();
  const tarDigest = new DigestingStream();
  const blobDigest = new DigestingStream();
  const compressor = createCompressor(options.compression, options.level, options.compressionEnv);
  // Before any file exists: it checks every path and may refuse the change set.
  const writer = new TarWriter(changeSet, pack, options);
  const temporary = path.join(options.outputDir, `.tmp-layer-${randomBytes(8).toString('hex')}`);
  const output = createWriteStream(temporary, { flags: 'wx' });
  // Settled into a value at once, so a failing compressor is never an unobserved rejection.
  const piping: Promise<Error | undefined> = pipeline(pack, tarDigest, compressor, blobDigest, output).then(
    () => undefined,
    (error: Error) => error,
  );
  try {
    await writer.write();
    pack.finalize();
    const streamError = await piping;
    if (streamError !== undefined) throw streamError;
  } catch (error) {
    pack.destroy(error as Error);
    // If writing entries failed first, the pipeline ends with a consequence of that error: ours is the one to report.
    await piping;
    // The file is opened asynchronously: removing it before the stream has closed could race its creation.
    // (Only 'close' is awaited: the stream also emits the error that destroyed it.)
    if (!output.closed) await new Promise<void>((resolve) => output.once('close', () => resolve()));
    await rm(temporary, { force: true });
    throw error;
  }
  const digest = blobDigest.digest;
  const file = path.join(options.outputDir, digest.slice('sha256:'.length));
  await rename(temporary, file);
  const descriptor = { mediaType: mediaTypeFor(options), digest, size: blobDigest.size };
  return {
    layer: new FileLayer({ path: file, descriptor, diffId: tarDigest.digest }),
    diffId: tarDigest.digest,
    digest,
    size: blobDigest.size,
    uncompressedSize: tarDigest.size,
    path: file,
  };
}
