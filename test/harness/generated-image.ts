/**
 * Multi-layer test images generated in the test: each layer a tar made with tar-stream (every
 * header field set, so the bytes repeat), gzip-compressed with zlib and streamed to a file while
 * its diffID and digest are computed in the same pass.
 */
import { createWriteStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { DigestingStream, sha256Digest } from '../../src/image/digest.js';
import { FileLayer } from '../../src/image/file-layer.js';
import type { Image } from '../../src/image/image.js';
import { serializeManifest } from '../../src/image/manifest.js';
import { serializeImageConfig } from '../../src/image/config.js';
import { MediaType } from '../../src/image/media-types.js';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest } from '../../src/image/types.js';

export interface GeneratedFile {
  name: string;
  /** Content, or a size of random bytes written in 1 MiB pieces (never held whole). */
  content: string | { randomBytes: number };
}

export async function writeGeneratedLayer(dir: string, files: readonly GeneratedFile[]): Promise<FileLayer> {
  const pack = tar.pack();
  const tarDigest = new DigestingStream();
  const blobDigest = new DigestingStream();
  const file = path.join(dir, `layer-${randomBytes(6).toString('hex')}.tar.gz`);
  const written = pipeline(pack, tarDigest, createGzip(), blobDigest, createWriteStream(file));
  for (const entry of files) {
    const header = { name: entry.name, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0, uname: 'root', gname: 'root' };
    if (typeof entry.content === 'string') {
      await new Promise<void>((resolve, reject) => pack.entry(header, entry.content as string, (error) => (error ? reject(error) : resolve())));
      continue;
    }
    const total = entry.content.randomBytes;
    const sink = pack.entry({ ...header, size: total });
    const source = new PassThrough();
    const done = pipeline(source, sink);
    for (let left = total; left > 0; left -= 1 << 20) {
      if (!source.write(randomBytes(Math.min(left, 1 << 20)))) await new Promise((resolve) => source.once('drain', resolve));
    }
    source.end();
    await done;
  }
  pack.finalize();
  await written;
  return new FileLayer({
    path: file,
    descriptor: { mediaType: MediaType.ociLayerGzip, digest: blobDigest.digest, size: blobDigest.size },
    diffId: tarDigest.digest,
  });
}

export interface GeneratedImageOptions {
  architecture?: string;
  /** Files per layer; default three small layers. */
  layers?: readonly (readonly GeneratedFile[])[];
  format?: 'oci' | 'docker';
}

/** An Image over generated layers with a canonical config and manifest. */
export async function generateImage(dir: string, options: GeneratedImageOptions = {}): Promise<Image & { layers: readonly FileLayer[] }> {
  const stamp = randomBytes(8).toString('hex');
  const specs = options.layers ?? [
    [{ name: 'etc/kiln-one', content: `one ${stamp}\n` }],
    [{ name: 'usr/share/kiln/two', content: `two ${stamp}\n` }, { name: 'usr/share/kiln/data', content: { randomBytes: 200_000 } }],
    [{ name: 'opt/three', content: `three ${stamp}\n` }],
  ];
  const layers: FileLayer[] = [];
  for (const spec of specs) layers.push(await writeGeneratedLayer(dir, spec));
  const docker = options.format === 'docker';
  const config: ImageConfig = {
    architecture: options.architecture ?? 'amd64',
    os: 'linux',
    created: '1970-01-01T00:00:00Z',
    config: { Env: ['PATH=/usr/bin:/bin'], Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.diffId) },
    history: layers.map((_, i) => ({ created: '1970-01-01T00:00:00Z', created_by: `generated layer ${i}` })),
  };
  const rawConfig = serializeImageConfig(config);
  const layerDescriptors: Descriptor[] = layers.map((layer) => ({
    ...layer.descriptor,
    mediaType: docker ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip,
  }));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: docker ? MediaType.dockerManifest : MediaType.ociManifest,
    config: { mediaType: docker ? MediaType.dockerConfig : MediaType.ociConfig, digest: sha256Digest(rawConfig), size: rawConfig.length },
    layers: layerDescriptors,
  };
  const rawManifest = serializeManifest(manifest);
  return {
    rawManifest,
    manifest,
    rawConfig,
    config,
    layers: layers.map((layer, i) => new FileLayer({ path: layer.path, descriptor: layerDescriptors[i] as Descriptor, diffId: layer.diffId })),
    digest: sha256Digest(rawManifest),
  };
}

/** An OCI index over images already pushed (by digest). */
export function indexOf(images: readonly Image[]): { raw: Buffer; index: ImageIndex; digest: string } {
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: images.map((image) => ({
      mediaType: image.manifest.mediaType ?? MediaType.ociManifest,
      digest: image.digest,
      size: image.rawManifest.length,
      platform: { architecture: image.config.architecture, os: image.config.os },
    })),
  };
  const raw = serializeManifest(index);
  return { raw, index, digest: sha256Digest(raw) };
}
