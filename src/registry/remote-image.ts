/**
 * Images in a registry as `Image` / `ImageIndexSource` values (lazy: a layer is fetched when it is
 * opened), and pushing such values to a registry: blobs in parallel, then the config, then the
 * manifest by digest, and the tags last, so a push that fails part-way leaves existing tags alone.
 */
import { Readable } from 'node:stream';
import type { Image, ImageIndexSource, Layer } from '../image/image.js';
import { parseImageConfig } from '../image/config.js';
import { manifestMediaTypeOf, parseManifest } from '../image/manifest.js';
import { MediaType, isIndexMediaType } from '../image/media-types.js';
import { hostPlatform, selectManifest } from '../image/platform.js';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform } from '../image/types.js';
import type { RegistryClient } from './client.js';
import { RegistryError } from './errors.js';
import { forEachLimited } from './parallel.js';

/** Configs are small JSON documents; a larger "config" is refused rather than buffered. */
const maxConfigBytes = 32 * 1024 * 1024;
export const defaultBlobConcurrency = 4;

/** A layer that lives in a registry repository: fetched (and verified) only when opened. */
export class RemoteLayer implements Layer {
  constructor(
    readonly client: RegistryClient,
    readonly repository: string,
    readonly descriptor: Descriptor,
    readonly diffId: string,
  ) {}

  open(): Promise<Readable> {
    return this.client.openBlob(this.repository, this.descriptor);
  }
}

export class RemoteImage implements Image {
  constructor(
    readonly client: RegistryClient,
    readonly repository: string,
    readonly rawManifest: Buffer,
    readonly manifest: ImageManifest,
    readonly rawConfig: Buffer,
    readonly config: ImageConfig,
    readonly layers: readonly RemoteLayer[],
    readonly digest: string,
  ) {}
}

export class RemoteIndex implements ImageIndexSource {
  constructor(
    readonly client: RegistryClient,
    readonly repository: string,
    readonly rawManifest: Buffer,
    readonly index: ImageIndex,
    readonly digest: string,
  ) {}

  /** The child image named by `child` (one of `index.manifests`), fetched by digest. */
  async image(child: Descriptor): Promise<RemoteImage> {
    const pulled = await pull(this.client, this.repository, child.digest);
    if (pulled.kind !== 'image') {
      throw new RegistryError(
        { registry: this.client.registry, repository: this.repository, operation: `get manifest ${child.digest}` },
        { reason: 'expected an image manifest, got a nested index' },
      );
    }
    if (pulled.image.rawManifest.length !== child.size) {
      throw new RegistryError(
        { registry: this.client.registry, repository: this.repository, operation: `get manifest ${child.digest}` },
        { reason: `the manifest is ${pulled.image.rawManifest.length} bytes, the index says ${child.size}` },
      );
    }
    return pulled.image;
  }
}

export type Pulled = { kind: 'image'; image: RemoteImage } | { kind: 'index'; index: RemoteIndex };

/** Fetches what `reference` (a tag or digest) names: an image (config read, layers lazy) or an index. */
export async function pull(client: RegistryClient, repository: string, reference: string): Promise<Pulled> {
  const fetched = await client.getManifest(repository, reference);
  const source = `manifest ${reference} of ${client.registry}/${repository}`;
  const parsed = parseManifest(fetched.raw, { contentType: fetched.contentType, source });
  if (parsed.kind === 'index') {
    return { kind: 'index', index: new RemoteIndex(client, repository, fetched.raw, parsed.index, fetched.digest) };
  }
  const manifest = parsed.manifest;
  const rawConfig = await client.readBlob(repository, manifest.config, maxConfigBytes);
  const config = parseImageConfig(rawConfig, {
    layerCount: manifest.layers.length,
    source: `config ${manifest.config.digest} of ${client.registry}/${repository}`,
  });
  const layers = manifest.layers.map(
    (descriptor, i) => new RemoteLayer(client, repository, descriptor, config.rootfs.diff_ids[i] ?? ''),
  );
  const image = new RemoteImage(client, repository, fetched.raw, manifest, rawConfig, config, layers, fetched.digest);
  return { kind: 'image', image };
}

/**
 * The image for `platform` (default: this machine's) that `reference` names: the image itself, or
 * the matching entry of an index.
 */
export async function pullImage(
  client: RegistryClient,
  repository: string,
  reference: string,
  options: { platform?: Platform } = {},
): Promise<RemoteImage> {
  const pulled = await pull(client, repository, reference);
  if (pulled.kind === 'image') return pulled.image;
  const child = selectManifest(pulled.index.index, options.platform ?? hostPlatform());
  return pulled.index.image(child);
}

export interface PushOptions {
  /** Tags to point at the pushed manifest, set after everything else (none: push by digest only). */
  tags?: readonly string[];
  /** Blobs moving at once (default 4). */
  concurrency?: number;
  /** More repositories of the destination registry to mount blobs from. */
  mountFrom?: readonly string[];
}

/** Pushes an image; returns its manifest digest. */
export async function pushImage(client: RegistryClient, repository: string, image: Image, options: PushOptions = {}): Promise<string> {
  const distributable = image.layers.filter((layer) => !isForeignLayer(layer.descriptor));
  // Several layers may share a blob; push each digest once.
  const unique = [...new Map(distributable.map((layer) => [layer.descriptor.digest, layer])).values()];
  await forEachLimited(unique, options.concurrency ?? defaultBlobConcurrency, async (layer) => {
    await client.pushBlob(
      repository,
      { digest: layer.descriptor.digest, size: layer.descriptor.size, open: () => layer.open() },
      { mountFrom: mountSources(client, layer, options.mountFrom) },
    );
  });
  const configDescriptor = image.manifest.config;
  await client.pushBlob(repository, {
    digest: configDescriptor.digest,
    size: image.rawConfig.length,
    open: async () => Readable.from([image.rawConfig]),
  });
  const mediaType = image.manifest.mediaType ?? manifestMediaTypeOf(image.manifest);
  const digest = await client.putManifest(repository, image.digest, image.rawManifest, mediaType);
  await putTags(client, repository, image.rawManifest, mediaType, options.tags ?? []);
  return digest;
}

/** Pushes an index: each child image first (by digest), then the index, then the tags. */
export async function pushIndex(
  client: RegistryClient,
  repository: string,
  index: ImageIndexSource,
  options: PushOptions = {},
): Promise<string> {
  for (const child of index.index.manifests) {
    if (isIndexMediaType(child.mediaType)) {
      throw new RegistryError(
        { registry: client.registry, repository, operation: `push index ${index.digest}` },
        { reason: `nested index ${child.digest} is not supported when pushing an index value` },
      );
    }
    const image = await index.image(child);
    await pushImage(client, repository, image, { ...options, tags: [] });
  }
  const mediaType = index.index.mediaType ?? manifestMediaTypeOf(index.index);
  const digest = await client.putManifest(repository, index.digest, index.rawManifest, mediaType);
  await putTags(client, repository, index.rawManifest, mediaType, options.tags ?? []);
  return digest;
}

async function putTags(client: RegistryClient, repository: string, raw: Buffer, mediaType: string, tags: readonly string[]): Promise<void> {
  for (const tag of tags) await client.putManifest(repository, tag, raw, mediaType);
}

/** Layers a registry must not be sent (Docker's foreign layers, OCI non-distributable ones). */
export function isForeignLayer(descriptor: Descriptor): boolean {
  return (
    descriptor.mediaType === MediaType.dockerForeignLayerGzip ||
    descriptor.mediaType.startsWith('application/vnd.oci.image.layer.nondistributable.')
  );
}

/** A layer read from another repository of the same registry can be mounted from there. */
function mountSources(client: RegistryClient, layer: Layer, extra: readonly string[] | undefined): string[] {
  const sources = [...(extra ?? [])];
  if (layer instanceof RemoteLayer && layer.client.registry === client.registry && !sources.includes(layer.repository)) {
    sources.unshift(layer.repository);
  }
  return sources;
}
