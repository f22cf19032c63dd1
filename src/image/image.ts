import type { Readable } from 'node:stream';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest } from './types.js';

/**
 * A layer is lazy: nothing is read until `open()` is called, and each call streams the blob
 * afresh (compressed, exactly the bytes behind `descriptor.digest`). Implementations verify the
 * digest as the stream is consumed and fail the stream on a mismatch.
 */
export interface Layer {
  readonly descriptor: Descriptor;
  /** sha256 of the uncompressed tar, from the config's rootfs.diff_ids. */
  readonly diffId: string;
  open(): Promise<Readable>;
}

/**
 * An image is "give me your manifest, your config, your layers" (go-containerregistry's v1.Image).
 * Registries, layout directories, tarballs and the builder all produce and consume this.
 */
export interface Image {
  /** The manifest exactly as stored/served; its sha256 is the image digest. */
  readonly rawManifest: Buffer;
  readonly manifest: ImageManifest;
  readonly rawConfig: Buffer;
  readonly config: ImageConfig;
  readonly layers: readonly Layer[];
  /** sha256 digest of rawManifest, `sha256:<hex>`. */
  readonly digest: string;
}

/** An index whose children are resolved lazily, by descriptor. */
export interface ImageIndexSource {
  readonly rawManifest: Buffer;
  readonly index: ImageIndex;
  readonly digest: string;
  image(child: Descriptor): Promise<Image>;
}
