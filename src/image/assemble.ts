import type { Readable } from 'node:stream';
import { canonicalJson } from './canonical-json.js';
import { sha256Digest } from './digest.js';
import type { Image, Layer } from './image.js';
import { MediaType, type ImageFormat } from './media-types.js';
import type { Descriptor, ImageConfig, ImageManifest } from './types.js';

/**
 * Builds an Image from a config and layers: the config's rootfs.diff_ids are taken from the layers
 * (so they cannot disagree), media types are rewritten for the chosen format, and the config and
 * manifest are written as canonical JSON. This is how the builder and the archive readers make images.
 */

/** Docker has no registered media type for an uncompressed layer; this is the one Docker and containerd accept. */
export const dockerUncompressedLayer = 'application/vnd.docker.image.rootfs.diff.tar';
export const ociNondistributableLayerGzip = 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip';

export class UnsupportedLayerFormatError extends Error {
  constructor(
    readonly mediaType: string,
    readonly format: ImageFormat,
  ) {
    super(
      format === 'docker'
        ? `a layer of type ${mediaType} cannot be written in a Docker v2 schema 2 manifest (it has no media type for it); use the OCI format`
        : `a layer of type ${mediaType} has no OCI equivalent`,
    );
    this.name = 'UnsupportedLayerFormatError';
  }
}

const ociToDocker: Record<string, string> = {
  [MediaType.ociLayerGzip]: MediaType.dockerLayerGzip,
  [MediaType.ociLayer]: dockerUncompressedLayer,
  [ociNondistributableLayerGzip]: MediaType.dockerForeignLayerGzip,
};
const dockerToOci: Record<string, string> = Object.fromEntries(Object.entries(ociToDocker).map(([oci, docker]) => [docker, oci]));

/** The layer media type to write in a manifest of `format`. */
export function layerMediaTypeFor(mediaType: string, format: ImageFormat): string {
  if (format === 'oci') return dockerToOci[mediaType] ?? mediaType;
  if (mediaType === MediaType.ociLayerZstd) throw new UnsupportedLayerFormatError(mediaType, format);
  return ociToDocker[mediaType] ?? mediaType;
}

export interface AssembleImageOptions {
  config: ImageConfig;
  layers: readonly Layer[];
  format: ImageFormat;
  /** Manifest annotations (OCI only; Docker manifests have none, so they are refused there). */
  annotations?: Record<string, string>;
}

export function assembleImage(options: AssembleImageOptions): Image {
  const { format } = options;
  if (format === 'docker' && options.annotations !== undefined && Object.keys(options.annotations).length > 0) {
    throw new Error('manifest annotations need the OCI format: Docker v2 schema 2 manifests have no annotations');
  }
  const layers = options.layers.map((layer) => retypedLayer(layer, layerMediaTypeFor(layer.descriptor.mediaType, format)));
  const config: ImageConfig = {
    ...options.config,
    rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.diffId) },
  };
  const rawConfig = canonicalJson(config);
  const configDescriptor: Descriptor = {
    mediaType: format === 'oci' ? MediaType.ociConfig : MediaType.dockerConfig,
    digest: sha256Digest(rawConfig),
    size: rawConfig.length,
  };
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: format === 'oci' ? MediaType.ociManifest : MediaType.dockerManifest,
    config: configDescriptor,
    layers: layers.map((layer) => layer.descriptor),
    ...(options.annotations !== undefined && Object.keys(options.annotations).length > 0 ? { annotations: options.annotations } : {}),
  };
  const rawManifest = canonicalJson(manifest);
  return { rawManifest, manifest, rawConfig, config, layers, digest: sha256Digest(rawManifest) };
}

function retypedLayer(layer: Layer, mediaType: string): Layer {
  if (layer.descriptor.mediaType === mediaType) return layer;
  const descriptor: Descriptor = { ...layer.descriptor, mediaType };
  return {
    descriptor,
    diffId: layer.diffId,
    open: (): Promise<Readable> => layer.open(),
  };
}
