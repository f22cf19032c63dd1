import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UnsupportedLayerFormatError, assembleImage, dockerUncompressedLayer, layerMediaTypeFor } from '../../../src/image/assemble.js';
import { DigestMismatchError, sha256Digest } from '../../../src/image/digest.js';
import { FileLayer } from '../../../src/image/file-layer.js';
import { parseImageManifest } from '../../../src/image/manifest.js';
import { MediaType } from '../../../src/image/media-types.js';
import { assertValidOci } from '../../harness/oci-schema.js';
import { readAll, testConfig, writeTestLayer } from '../../harness/test-layers.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-assemble-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('FileLayer', () => {
  it('streams the blob and verifies it', async () => {
    const { layer, blob, tar } = await writeTestLayer(dir, [{ name: 'etc/hello', content: 'hi\n' }]);
    const bytes = await readAll(await layer.open());
    expect(bytes.equals(blob)).toBe(true);
    expect(sha256Digest(gunzipSync(bytes))).toBe(layer.diffId);
    expect(sha256Digest(tar)).toBe(layer.diffId);
    // Each open() streams afresh.
    expect((await readAll(await layer.open())).equals(blob)).toBe(true);
  });

  it('fails the stream when the file was changed', async () => {
    const { layer, blob } = await writeTestLayer(dir, [{ name: 'a', content: 'a' }]);
    const corrupted = Buffer.from(blob);
    corrupted[corrupted.length - 5] = corrupted[corrupted.length - 5]! ^ 0xff;
    await writeFile(layer.path, corrupted);
    await expect(readAll(await layer.open())).rejects.toBeInstanceOf(DigestMismatchError);
  });

  it('fails the stream when the file is short', async () => {
    const { layer, blob } = await writeTestLayer(dir, [{ name: 'a', content: 'a' }]);
    await truncate(layer.path, blob.length - 10);
    await expect(readAll(await layer.open())).rejects.toThrow();
  });

  it('fails the stream when the file is missing', async () => {
    const layer = new FileLayer({
      path: path.join(dir, 'missing'),
      descriptor: { mediaType: MediaType.ociLayerGzip, digest: sha256Digest('x'), size: 1 },
      diffId: sha256Digest('y'),
    });
    await expect(readAll(await layer.open())).rejects.toThrow(/ENOENT/);
  });

  it('reads a blob at an offset inside a bigger file', async () => {
    const blob = Buffer.from('the blob');
    const file = path.join(dir, 'container');
    await writeFile(file, Buffer.concat([Buffer.from('prefix--'), blob, Buffer.from('--suffix')]));
    const layer = new FileLayer({
      path: file,
      offset: 8,
      descriptor: { mediaType: MediaType.ociLayer, digest: sha256Digest(blob), size: blob.length },
      diffId: sha256Digest(blob),
    });
    expect((await readAll(await layer.open())).toString()).toBe('the blob');
  });

  it('an empty blob', async () => {
    const layer = new FileLayer({
      path: path.join(dir, 'whatever'),
      descriptor: { mediaType: MediaType.ociLayer, digest: sha256Digest(''), size: 0 },
      diffId: sha256Digest(''),
    });
    expect((await readAll(await layer.open())).length).toBe(0);
  });
});

describe('assembleImage', () => {
  it('writes an OCI image: media types, diff_ids from the layers, canonical JSON, digest', async () => {
    const one = await writeTestLayer(dir, [{ name: 'bin/', type: 'directory' }, { name: 'bin/tool', content: '#!/bin/sh\n', mode: 0o755 }]);
    const two = await writeTestLayer(dir, [{ name: 'etc/conf', content: 'x=1\n' }]);
    const image = assembleImage({
      config: testConfig({ rootfs: { type: 'layers', diff_ids: ['sha256:' + 'f'.repeat(64)] } }),
      layers: [one.layer, two.layer],
      format: 'oci',
      annotations: { 'org.opencontainers.image.title': 'test' },
    });
    expect(image.manifest.mediaType).toBe(MediaType.ociManifest);
    expect(image.manifest.config.mediaType).toBe(MediaType.ociConfig);
    expect(image.manifest.layers.map((l) => l.mediaType)).toEqual([MediaType.ociLayerGzip, MediaType.ociLayerGzip]);
    expect(image.config.rootfs.diff_ids).toEqual([one.layer.diffId, two.layer.diffId]);
    expect(image.digest).toBe(sha256Digest(image.rawManifest));
    expect(image.manifest.config.digest).toBe(sha256Digest(image.rawConfig));
    expect(image.manifest.config.size).toBe(image.rawConfig.length);
    expect(JSON.parse(image.rawConfig.toString())).toEqual(image.config);
    expect(parseImageManifest(image.rawManifest)).toEqual(image.manifest);
    expect(image.manifest.annotations).toEqual({ 'org.opencontainers.image.title': 'test' });
    assertValidOci(MediaType.ociManifest, image.rawManifest);
    assertValidOci(MediaType.ociConfig, image.rawConfig);
    // Same inputs, same bytes.
    const again = assembleImage({ config: testConfig(), layers: [one.layer, two.layer], format: 'oci', annotations: { 'org.opencontainers.image.title': 'test' } });
    expect(again.digest).toBe(image.digest);
  });

  it('writes a Docker v2 schema 2 image with Docker media types', async () => {
    const gz = await writeTestLayer(dir, [{ name: 'a', content: 'a' }]);
    const plain = await writeTestLayer(dir, [{ name: 'b', content: 'b' }], 'none');
    const image = assembleImage({ config: testConfig(), layers: [gz.layer, plain.layer], format: 'docker' });
    expect(image.manifest.mediaType).toBe(MediaType.dockerManifest);
    expect(image.manifest.config.mediaType).toBe(MediaType.dockerConfig);
    expect(image.layers.map((l) => l.descriptor.mediaType)).toEqual([MediaType.dockerLayerGzip, dockerUncompressedLayer]);
    expect(image.manifest.layers.map((l) => l.mediaType)).toEqual([MediaType.dockerLayerGzip, dockerUncompressedLayer]);
    // The retyped layers still stream the same verified bytes.
    expect((await readAll(await image.layers[0]!.open())).equals(gz.blob)).toBe(true);
    assertValidOci(MediaType.dockerManifest, image.rawManifest);
    assertValidOci(MediaType.dockerConfig, image.rawConfig);
    expect(parseImageManifest(image.rawManifest).mediaType).toBe(MediaType.dockerManifest);
  });

  it('converts Docker layer types back to OCI', () => {
    expect(layerMediaTypeFor(MediaType.dockerLayerGzip, 'oci')).toBe(MediaType.ociLayerGzip);
    expect(layerMediaTypeFor(dockerUncompressedLayer, 'oci')).toBe(MediaType.ociLayer);
    expect(layerMediaTypeFor(MediaType.dockerForeignLayerGzip, 'oci')).toBe('application/vnd.oci.image.layer.nondistributable.v1.tar+gzip');
    expect(layerMediaTypeFor(MediaType.ociLayerZstd, 'oci')).toBe(MediaType.ociLayerZstd);
  });

  it('refuses what Docker manifests cannot say', async () => {
    expect(() => layerMediaTypeFor(MediaType.ociLayerZstd, 'docker')).toThrow(UnsupportedLayerFormatError);
    const gz = await writeTestLayer(dir, [{ name: 'a', content: 'a' }]);
    expect(() => assembleImage({ config: testConfig(), layers: [gz.layer], format: 'docker', annotations: { a: 'b' } })).toThrow(/annotations need the OCI format/);
  });

  it('an image with no layers', () => {
    const image = assembleImage({ config: testConfig(), layers: [], format: 'oci' });
    expect(image.config.rootfs.diff_ids).toEqual([]);
    expect(image.manifest.layers).toEqual([]);
  });
});
