import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { canonicalJson } from '../image/canonical-json.js';
import { parseImageConfig } from '../image/config.js';
import { sha256Digest } from '../image/digest.js';
import { FileLayer } from '../image/file-layer.js';
import type { Image, Layer } from '../image/image.js';
import { MediaType } from '../image/media-types.js';
import { parseReference } from '../image/reference.js';
import type { Descriptor, ImageManifest } from '../image/types.js';
import { indexTar, resolveTarFile, type TarEntryLocation } from './tar-index.js';

/**
 * `docker load`-compatible tarballs ("docker-archive"): `manifest.json` lists, per image, its
 * config file, tags and layer files; `repositories` is the pre-1.10 tag map docker still reads.
 * kiln writes each layer blob as it is (compressed; `docker load` and skopeo detect that), which
 * keeps writing a single streaming pass: a tar header needs the entry size up front, and only the
 * compressed size is known. Reading accepts `docker save` (legacy `<id>/layer.tar`, and 25+ with
 * `blobs/sha256/`), skopeo and go-containerregistry archives, layers compressed or not.
 */

export class DockerArchiveError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`docker archive ${file}: ${reason}`);
    this.name = 'DockerArchiveError';
  }
}

/** One manifest.json entry, as docker writes it. */
export interface DockerArchiveManifestEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

export interface DockerArchiveImage {
  image: Image;
  /** References to tag the image with on `docker load` (`busybox:latest`, `ghcr.io/o/app:1`); may be empty. */
  tags: readonly string[];
}

/** Fixed entry metadata, so that the same images always give the same archive bytes. */
const entryDefaults = { mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', mtime: new Date(0) } as const;
const maxDocumentSize = 32 * 1024 * 1024;

/** Streams a docker-archive of `images` into `output`. */
export async function writeDockerArchive(output: Writable, images: readonly DockerArchiveImage[]): Promise<void> {
  if (images.length === 0) throw new Error('a docker archive needs at least one image');
  const plan = planArchive(images);
  const pack = tar.pack();
  const finished = pipeline(pack, output);
  const produced = (async (): Promise<void> => {
    try {
      for (const file of plan.files) {
        if (file.data !== undefined) {
          await addBuffer(pack, file.name, file.data);
        } else if (file.layer !== undefined) {
          // Opened before the entry exists: an entry destroyed unattached would raise an unhandled 'error'.
          const source = await file.layer.open();
          const entry = pack.entry({ ...entryDefaults, name: file.name, size: file.layer.descriptor.size, type: 'file' });
          await pipeline(source, entry);
        }
      }
      await addBuffer(pack, 'manifest.json', Buffer.from(JSON.stringify(plan.manifest)));
      await addBuffer(pack, 'repositories', Buffer.from(JSON.stringify(plan.repositories)));
      pack.finalize();
    } catch (error) {
      // Fails the output pipeline too, so `finished` settles instead of waiting for more entries.
      pack.destroy(error as Error);
      throw error;
    }
  })();
  await Promise.all([produced, finished]);
}

/** Writes the archive to `file` through a temp file beside it, so `file` is never half-written. */
export async function writeDockerArchiveFile(file: string, images: readonly DockerArchiveImage[]): Promise<void> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.kiln-tmp-${randomBytes(6).toString('hex')}`);
  await mkdir(path.dirname(file), { recursive: true });
  // Opened before streaming: a stream that fails to open only says so in an event nobody awaits.
  const handle = await open(temp, 'wx', 0o644);
  try {
    await writeDockerArchive(handle.createWriteStream(), images);
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

interface PlannedFile {
  name: string;
  data?: Buffer;
  layer?: Layer;
}

function planArchive(images: readonly DockerArchiveImage[]): {
  files: PlannedFile[];
  manifest: DockerArchiveManifestEntry[];
  repositories: Record<string, Record<string, string>>;
} {
  const files: PlannedFile[] = [];
  const written = new Set<string>();
  const manifest: DockerArchiveManifestEntry[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  for (const { image, tags } of images) {
    const configName = `${hexOf(image.manifest.config.digest)}.json`;
    if (!written.has(configName)) {
      written.add(configName);
      files.push({ name: configName, data: image.rawConfig });
    }
    const layerNames = image.layers.map((layer) => {
      const name = `${hexOf(layer.descriptor.digest)}${layerExtension(layer.descriptor.mediaType)}`;
      if (!written.has(name)) {
        written.add(name);
        files.push({ name, layer });
      }
      return name;
    });
    const repoTags = tags.map((tag) => {
      const reference = parseReference(tag, { defaultTag: true });
      if (reference.tag === undefined) throw new Error(`docker archive tags need a tag, not a digest: "${tag}"`);
      const top = image.layers[image.layers.length - 1];
      if (top !== undefined) {
        const repository = (repositories[reference.familiarName()] ??= {});
        repository[reference.tag] = hexOf(top.diffId);
      }
      return reference.withTag(reference.tag).familiar();
    });
    manifest.push({ Config: configName, RepoTags: repoTags, Layers: layerNames });
  }
  return { files, manifest, repositories };
}

function layerExtension(mediaType: string): string {
  if (mediaType.endsWith('gzip')) return '.tar.gz';
  if (mediaType.endsWith('zstd')) return '.tar.zst';
  return '.tar';
}

function hexOf(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1);
}

function addBuffer(pack: tar.Pack, name: string, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry({ ...entryDefaults, name, size: data.length, type: 'file' }, data, (error) => (error ? reject(error) : resolve()));
  });
}

export interface DockerArchiveSelector {
  /** A RepoTags entry (`busybox:latest`, `docker.io/library/busybox:latest` are the same). */
  reference?: string;
  /** The position in manifest.json (skopeo's `docker-archive:FILE:@N`). */
  index?: number;
}

/** The manifest.json entries of an archive. */
export async function listDockerArchive(file: string): Promise<DockerArchiveManifestEntry[]> {
  const entries = await indexArchive(file);
  return readManifestJson(file, entries);
}

/**
 * Reads one image from a docker-archive. Layers stay in the archive and are opened as byte ranges;
 * compressed layers are hashed once here because the archive does not record their digests.
 */
export async function readDockerArchive(file: string, selector: DockerArchiveSelector = {}): Promise<Image> {
  const entries = await indexArchive(file);
  const manifestEntries = await readManifestJson(file, entries);
  const chosen = chooseEntry(file, manifestEntries, selector);
  const configLocation = resolveTarFile(file, entries, chosen.Config);
  const rawConfig = await readRange(file, configLocation);
  const config = parseImageConfig(rawConfig, { layerCount: chosen.Layers.length, source: `docker archive ${file} ${chosen.Config}` });
  const layers: Layer[] = [];
  // docker save lists a repeated layer twice (the second a link to the first): hash it once.
  const described = new Map<TarEntryLocation, Descriptor>();
  for (const [i, layerName] of chosen.Layers.entries()) {
    const location = resolveTarFile(file, entries, layerName);
    const diffId = config.rootfs.diff_ids[i] as string;
    const descriptor = described.get(location) ?? (await describeLayer(file, location, diffId));
    described.set(location, descriptor);
    layers.push(new FileLayer({ path: file, descriptor, diffId, offset: location.offset }));
  }
  const configDescriptor: Descriptor = { mediaType: MediaType.ociConfig, digest: sha256Digest(rawConfig), size: rawConfig.length };
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: configDescriptor,
    layers: layers.map((layer) => layer.descriptor),
  };
  const rawManifest = canonicalJson(manifest);
  return { rawManifest, manifest, rawConfig, config, layers, digest: sha256Digest(rawManifest) };
}

async function indexArchive(file: string): Promise<Map<string, TarEntryLocation>> {
  const magic = await readHead(file, 0, 4);
  if (magic[0] === 0x1f && magic[1] === 0x8b) {
    throw new DockerArchiveError(file, 'the archive is gzip-compressed; decompress it first (gunzip)');
  }
  return indexTar(file);
}

async function readManifestJson(file: string, entries: ReadonlyMap<string, TarEntryLocation>): Promise<DockerArchiveManifestEntry[]> {
  if (!entries.has('manifest.json')) {
    throw new DockerArchiveError(file, 'no manifest.json (archives from docker older than 1.10 are not supported)');
  }
  const raw = await readRange(file, resolveTarFile(file, entries, 'manifest.json'));
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch (error) {
    throw new DockerArchiveError(file, `manifest.json is not valid JSON (${(error as Error).message})`);
  }
  if (!Array.isArray(parsed)) throw new DockerArchiveError(file, 'manifest.json must be an array');
  return parsed.map((entry: unknown, i) => {
    const candidate = entry as Partial<DockerArchiveManifestEntry> | null;
    if (
      candidate === null ||
      typeof candidate !== 'object' ||
      typeof candidate.Config !== 'string' ||
      !Array.isArray(candidate.Layers) ||
      !candidate.Layers.every((layer) => typeof layer === 'string') ||
      !(candidate.RepoTags === undefined || candidate.RepoTags === null || (Array.isArray(candidate.RepoTags) && candidate.RepoTags.every((t) => typeof t === 'string')))
    ) {
      throw new DockerArchiveError(file, `manifest.json entry ${i} needs Config (string), Layers (strings) and optional RepoTags (strings)`);
    }
    return { Config: candidate.Config, Layers: candidate.Layers, RepoTags: candidate.RepoTags ?? null };
  });
}

function chooseEntry(file: string, manifest: readonly DockerArchiveManifestEntry[], selector: DockerArchiveSelector): DockerArchiveManifestEntry {
  if (selector.index !== undefined) {
    const entry = manifest[selector.index];
    if (entry === undefined) throw new DockerArchiveError(file, `no image @${selector.index}; the archive holds ${manifest.length}`);
    return entry;
  }
  const listed = manifest.flatMap((entry) => entry.RepoTags ?? []);
  if (selector.reference !== undefined) {
    const wanted = parseReference(selector.reference).toString();
    const found = manifest.find((entry) => (entry.RepoTags ?? []).some((tag) => parseReference(tag).toString() === wanted));
    if (found === undefined) {
      throw new DockerArchiveError(file, `no image tagged ${selector.reference} (tags: ${listed.length > 0 ? listed.join(', ') : 'none'})`);
    }
    return found;
  }
  if (manifest.length === 1) return manifest[0] as DockerArchiveManifestEntry;
  throw new DockerArchiveError(
    file,
    manifest.length === 0 ? 'manifest.json lists no images' : `the archive holds ${manifest.length} images; name one (tags: ${listed.join(', ')})`,
  );
}

/** Compression is recognised by magic bytes: file names and media types in archives are unreliable. */
async function describeLayer(file: string, location: TarEntryLocation, diffId: string): Promise<Descriptor> {
  const head = await readHead(file, location.offset, Math.min(4, location.size));
  const gzip = head[0] === 0x1f && head[1] === 0x8b;
  const zstd = head.length === 4 && head.readUInt32LE(0) === 0xfd2fb528;
  if (!gzip && !zstd) return { mediaType: MediaType.ociLayer, digest: diffId, size: location.size };
  return { mediaType: gzip ? MediaType.ociLayerGzip : MediaType.ociLayerZstd, digest: await hashRange(file, location), size: location.size };
}

async function hashRange(file: string, location: TarEntryLocation): Promise<string> {
  const hash = createHash('sha256');
  if (location.size > 0) {
    for await (const chunk of createReadStream(file, { start: location.offset, end: location.offset + location.size - 1 })) {
      hash.update(chunk as Buffer);
    }
  }
  return `sha256:${hash.digest('hex')}`;
}

async function readRange(file: string, location: TarEntryLocation): Promise<Buffer> {
  if (location.size > maxDocumentSize) throw new DockerArchiveError(file, `${location.name} is too large for a JSON document`);
  return readHead(file, location.offset, location.size);
}

async function readHead(file: string, offset: number, length: number): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, offset);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}
