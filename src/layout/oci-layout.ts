import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { canonicalJson } from '../image/canonical-json.js';
import { parseImageConfig } from '../image/config.js';
import { verifyDigest } from '../image/digest.js';
import { FileLayer, verifiedStream } from '../image/file-layer.js';
import type { Image, ImageIndexSource, Layer } from '../image/image.js';
import { parseManifest, parseImageIndex, type ParsedManifest } from '../image/manifest.js';
import { MediaType, isImageManifestMediaType } from '../image/media-types.js';
import { hostPlatform, selectManifest } from '../image/platform.js';
import type { Descriptor, ImageIndex, ImageManifest, Platform } from '../image/types.js';

/**
 * OCI image-layout directories (image-spec image-layout.md): `oci-layout`, `index.json`, and
 * content-addressed `blobs/<alg>/<hex>`. Writes never leave a half-written file under its final
 * name (temp file, then rename), and a tag written again replaces the old index entry.
 * One writer per layout at a time: index.json is read, changed and replaced without a lock.
 */

export const refNameAnnotation = 'org.opencontainers.image.ref.name';
const layoutFileContent = Buffer.from('{"imageLayoutVersion":"1.0.0"}');
/** Manifests and configs are read whole; anything larger than this is not one. */
const maxDocumentSize = 32 * 1024 * 1024;
const maxNestedIndexDepth = 4;
const blobWriteConcurrency = 4;

export class OciLayoutError extends Error {
  constructor(
    readonly directory: string,
    readonly reason: string,
  ) {
    super(`OCI layout ${directory}: ${reason}`);
    this.name = 'OciLayoutError';
  }
}

export interface LayoutSelector {
  /** The `org.opencontainers.image.ref.name` of an index.json entry. */
  tag?: string;
  /** A manifest or index digest (an index.json entry, or any manifest blob in the layout). */
  digest?: string;
  /** Which image to take from an index; default: the host's platform. */
  platform?: Platform;
}

export interface WriteLayoutOptions {
  /** Stored as org.opencontainers.image.ref.name; an existing entry with the same name is replaced. */
  tag?: string;
}

/** The path of a blob in a layout; the digest is checked first so it cannot name a path outside. */
export function blobPath(directory: string, digest: string): string {
  const match = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/.exec(digest);
  if (match === null) throw new OciLayoutError(directory, `"${digest}" is not a valid digest`);
  return path.join(directory, 'blobs', match[1] as string, match[2] as string);
}

/** Writes one image (its layers, config and manifest) and points index.json at it. */
export async function writeImageToLayout(directory: string, image: Image, options: WriteLayoutOptions = {}): Promise<Descriptor> {
  await initLayout(directory);
  await writeImageBlobs(directory, image);
  const descriptor: Descriptor = {
    mediaType: image.manifest.mediaType ?? MediaType.ociManifest,
    digest: image.digest,
    size: image.rawManifest.length,
    ...platformOfImage(image),
  };
  return addToIndex(directory, descriptor, options.tag);
}

/** Writes an index and every image it lists, then points index.json at the index. */
export async function writeIndexToLayout(directory: string, source: ImageIndexSource, options: WriteLayoutOptions = {}): Promise<Descriptor> {
  verifyDigest(source.rawManifest, source.digest, 'image index');
  await initLayout(directory);
  for (const child of source.index.manifests) {
    if (!isImageManifestMediaType(child.mediaType)) {
      throw new OciLayoutError(directory, `index entry ${child.digest} has media type ${child.mediaType}; only image manifests can be written`);
    }
    const image = await source.image(child);
    if (image.digest !== child.digest) {
      throw new OciLayoutError(directory, `index entry ${child.digest} resolved to an image with digest ${image.digest}`);
    }
    await writeImageBlobs(directory, image);
  }
  await writeBlobBytes(directory, source.digest, source.rawManifest);
  const descriptor: Descriptor = {
    mediaType: source.index.mediaType ?? MediaType.ociIndex,
    digest: source.digest,
    size: source.rawManifest.length,
  };
  return addToIndex(directory, descriptor, options.tag);
}

/** Reads one image; an entry that is an index is resolved with `selector.platform` (default: the host's). */
export async function readImageFromLayout(directory: string, selector: LayoutSelector = {}): Promise<Image> {
  const descriptor = await findEntry(directory, selector);
  return resolveImage(directory, descriptor, selector.platform ?? hostPlatform(), 0);
}

/** Reads an index entry as an index whose images are read lazily. */
export async function readIndexFromLayout(directory: string, selector: LayoutSelector = {}): Promise<ImageIndexSource> {
  const descriptor = await findEntry(directory, selector);
  const raw = await readDocumentBlob(directory, descriptor);
  const index = parseImageIndex(raw, { contentType: descriptor.mediaType, source: `OCI layout ${directory} index ${descriptor.digest}` });
  return {
    rawManifest: raw,
    index,
    digest: descriptor.digest,
    image: (child: Descriptor): Promise<Image> => resolveImage(directory, child, selector.platform ?? hostPlatform(), 1),
  };
}

/** The entries of index.json, as stored. */
export async function readLayoutIndex(directory: string): Promise<ImageIndex> {
  const indexPath = path.join(directory, 'index.json');
  let raw: Buffer;
  try {
    raw = await readFile(indexPath);
  } catch (error) {
    if (isNotFound(error)) throw new OciLayoutError(directory, 'no index.json: not an OCI image layout');
    throw error;
  }
  return parseImageIndex(raw, { source: `OCI layout ${directory} index.json` });
}

async function findEntry(directory: string, selector: LayoutSelector): Promise<Descriptor> {
  const index = await readLayoutIndex(directory);
  if (selector.digest !== undefined) {
    const listed = index.manifests.find((entry) => entry.digest === selector.digest);
    if (listed !== undefined) return listed;
    // Any manifest blob in the layout may be asked for by digest (skopeo's oci:DIR@digest does this).
    const file = blobPath(directory, selector.digest);
    const info = await stat(file).catch((error: unknown) => {
      if (isNotFound(error)) return undefined;
      throw error;
    });
    if (info === undefined) throw new OciLayoutError(directory, `no manifest with digest ${selector.digest}`);
    const raw = await readDocumentBlob(directory, { mediaType: MediaType.ociManifest, digest: selector.digest, size: info.size });
    const parsed = parseManifest(raw, { source: `OCI layout ${directory} blob ${selector.digest}` });
    return { mediaType: parsed.mediaType, digest: selector.digest, size: info.size };
  }
  if (selector.tag !== undefined) {
    const tagged = index.manifests.filter((entry) => entry.annotations?.[refNameAnnotation] === selector.tag);
    if (tagged.length === 1) return tagged[0] as Descriptor;
    if (tagged.length > 1) {
      // Several entries under one name (one per platform, as some tools write): pick by platform.
      return selectManifest({ schemaVersion: 2, manifests: tagged }, selector.platform ?? hostPlatform());
    }
    throw new OciLayoutError(directory, `no image tagged "${selector.tag}" (tags: ${describeTags(index)})`);
  }
  if (index.manifests.length === 1) return index.manifests[0] as Descriptor;
  throw new OciLayoutError(
    directory,
    index.manifests.length === 0 ? 'index.json lists no images' : `index.json lists ${index.manifests.length} images; name one (tags: ${describeTags(index)})`,
  );
}

function describeTags(index: ImageIndex): string {
  const tags = index.manifests.map((entry) => entry.annotations?.[refNameAnnotation]).filter((tag) => tag !== undefined);
  return tags.length > 0 ? tags.join(', ') : 'none';
}

async function resolveImage(directory: string, descriptor: Descriptor, platform: Platform, depth: number): Promise<Image> {
  const raw = await readDocumentBlob(directory, descriptor);
  const source = `OCI layout ${directory} manifest ${descriptor.digest}`;
  const parsed: ParsedManifest = parseManifest(raw, { contentType: descriptor.mediaType, source });
  if (parsed.kind === 'index') {
    if (depth >= maxNestedIndexDepth) throw new OciLayoutError(directory, `indexes nested deeper than ${maxNestedIndexDepth}`);
    return resolveImage(directory, selectManifest(parsed.index, platform), platform, depth + 1);
  }
  return imageFromManifest(directory, raw, descriptor.digest, parsed.manifest);
}

async function imageFromManifest(directory: string, rawManifest: Buffer, digest: string, manifest: ImageManifest): Promise<Image> {
  const rawConfig = await readDocumentBlob(directory, manifest.config);
  const config = parseImageConfig(rawConfig, {
    layerCount: manifest.layers.length,
    source: `OCI layout ${directory} config ${manifest.config.digest}`,
  });
  const layers: Layer[] = manifest.layers.map(
    (descriptor, i) => new FileLayer({ path: blobPath(directory, descriptor.digest), descriptor, diffId: config.rootfs.diff_ids[i] as string }),
  );
  return { rawManifest, manifest, rawConfig, config, layers, digest };
}

/** Reads a small blob whole (manifest, index, config), checking its size and digest. */
async function readDocumentBlob(directory: string, descriptor: Descriptor): Promise<Buffer> {
  if (descriptor.size > maxDocumentSize) {
    throw new OciLayoutError(directory, `${descriptor.digest} claims ${descriptor.size} bytes; too large for a manifest or config`);
  }
  let data: Buffer;
  try {
    data = await readFile(blobPath(directory, descriptor.digest));
  } catch (error) {
    if (isNotFound(error)) throw new OciLayoutError(directory, `blob ${descriptor.digest} is missing`);
    throw error;
  }
  verifyDigest(data, descriptor.digest, `OCI layout ${directory} blob`);
  if (data.length !== descriptor.size) {
    throw new OciLayoutError(directory, `blob ${descriptor.digest} has ${data.length} bytes; its descriptor says ${descriptor.size}`);
  }
  return data;
}

async function initLayout(directory: string): Promise<void> {
  await mkdir(path.join(directory, 'blobs', 'sha256'), { recursive: true });
  const layoutFile = path.join(directory, 'oci-layout');
  const existing = await readFile(layoutFile).catch((error: unknown) => {
    if (isNotFound(error)) return undefined;
    throw error;
  });
  if (existing === undefined) {
    await writeAtomically(directory, layoutFile, layoutFileContent);
    return;
  }
  const version = (JSON.parse(existing.toString('utf8')) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
  if (version !== '1.0.0') throw new OciLayoutError(directory, `unsupported imageLayoutVersion ${JSON.stringify(version)}`);
}

async function writeImageBlobs(directory: string, image: Image): Promise<void> {
  verifyDigest(image.rawManifest, image.digest, 'image manifest');
  await forEachBounded(image.layers, blobWriteConcurrency, (layer) =>
    writeBlobStream(directory, layer.descriptor, () => layer.open()),
  );
  await writeBlobBytes(directory, image.manifest.config.digest, image.rawConfig);
  await writeBlobBytes(directory, image.digest, image.rawManifest);
}

async function writeBlobBytes(directory: string, digest: string, data: Buffer): Promise<void> {
  verifyDigest(data, digest, 'blob');
  const target = blobPath(directory, digest);
  if (await hasBlob(target, data.length)) return;
  await mkdir(path.dirname(target), { recursive: true });
  await writeAtomically(directory, target, data);
}

/** Streams a blob into the layout, verifying its digest, unless it is already there. */
async function writeBlobStream(directory: string, descriptor: Descriptor, open: () => Promise<Readable>): Promise<void> {
  const target = blobPath(directory, descriptor.digest);
  if (await hasBlob(target, descriptor.size)) return;
  await mkdir(path.dirname(target), { recursive: true });
  const temp = tempPath(directory);
  try {
    // Verified again here: whatever `open` does, no wrong bytes get a content address.
    await pipeline(verifiedStream(await open(), descriptor, `blob ${descriptor.digest}`), createWriteStream(temp));
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** Blobs are content-addressed and only ever renamed into place whole, so a right-sized file is the blob. */
async function hasBlob(target: string, size: number): Promise<boolean> {
  const info = await stat(target).catch((error: unknown) => {
    if (isNotFound(error)) return undefined;
    throw error;
  });
  return info !== undefined && info.isFile() && info.size === size;
}

/** Returns the entry as listed in index.json. */
async function addToIndex(directory: string, descriptor: Descriptor, tag: string | undefined): Promise<Descriptor> {
  const indexPath = path.join(directory, 'index.json');
  const existing = await readFile(indexPath).catch((error: unknown) => {
    if (isNotFound(error)) return undefined;
    throw error;
  });
  const index: ImageIndex =
    existing === undefined
      ? { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] }
      : parseImageIndex(existing, { source: `OCI layout ${directory} index.json` });
  const entry: Descriptor = tag === undefined ? descriptor : { ...descriptor, annotations: { ...descriptor.annotations, [refNameAnnotation]: tag } };
  const kept = index.manifests.filter((other) =>
    tag === undefined ? !(other.digest === descriptor.digest && other.annotations?.[refNameAnnotation] === undefined) : other.annotations?.[refNameAnnotation] !== tag,
  );
  const updated: ImageIndex = { ...index, mediaType: index.mediaType ?? MediaType.ociIndex, manifests: [...kept, entry] };
  await writeAtomically(directory, indexPath, canonicalJson(updated));
  return entry;
}

function platformOfImage(image: Image): { platform?: Platform } {
  const { architecture, os, variant } = image.config;
  if (typeof architecture !== 'string' || architecture === '' || typeof os !== 'string' || os === '') return {};
  return { platform: { architecture, os, ...(variant !== undefined && variant !== '' ? { variant } : {}) } };
}

async function writeAtomically(directory: string, target: string, data: Buffer): Promise<void> {
  const temp = tempPath(directory);
  try {
    await writeFile(temp, data);
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** Temp files live in the layout root (same file system, so rename is atomic) and outside blobs/. */
function tempPath(directory: string): string {
  return path.join(directory, `.kiln-tmp-${randomBytes(8).toString('hex')}`);
}

async function forEachBounded<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next] as T;
      next += 1;
      await work(item);
    }
  });
  await Promise.all(workers);
}

function isNotFound(error: unknown): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === 'ENOENT';
}

