import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { assembleImage } from '../../../src/image/assemble.js';
import { canonicalJson } from '../../../src/image/canonical-json.js';
import { DigestMismatchError, sha256Digest } from '../../../src/image/digest.js';
import type { Image, ImageIndexSource } from '../../../src/image/image.js';
import { MediaType } from '../../../src/image/media-types.js';
import { NoMatchingPlatformError, parsePlatform } from '../../../src/image/platform.js';
import type { Descriptor, ImageIndex } from '../../../src/image/types.js';
import {
  OciLayoutError,
  blobPath,
  readImageFromLayout,
  readIndexFromLayout,
  readLayoutIndex,
  refNameAnnotation,
  writeImageToLayout,
  writeIndexToLayout,
} from '../../../src/layout/oci-layout.js';
import { assertValidOci } from '../../harness/oci-schema.js';
import { readAll, testConfig, writeTestLayer } from '../../harness/test-layers.js';

let dir: string;
let layout: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-layout-'));
  layout = path.join(dir, 'layout');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function makeImage(name: string, architecture = 'amd64', variant?: string): Promise<Image> {
  const one = await writeTestLayer(dir, [{ name: `${name}/`, type: 'directory' }, { name: `${name}/file`, content: `${name} ${architecture}\n` }]);
  const two = await writeTestLayer(dir, [{ name: 'shared', content: 'same in every image\n' }]);
  return assembleImage({ config: testConfig({ architecture, ...(variant ? { variant } : {}) }), layers: [one.layer, two.layer], format: 'oci' });
}

async function validateLayoutFiles(): Promise<void> {
  assertValidOci(MediaType.ociLayoutHeader, await readFile(path.join(layout, 'oci-layout')));
  assertValidOci(MediaType.ociIndex, await readFile(path.join(layout, 'index.json')));
}

describe('writeImageToLayout / readImageFromLayout', () => {
  it('round-trips an image: same digest, config and layer bytes', async () => {
    const image = await makeImage('a');
    const descriptor = await writeImageToLayout(layout, image, { tag: 'v1' });
    expect(descriptor).toMatchObject({ mediaType: MediaType.ociManifest, digest: image.digest, size: image.rawManifest.length });
    expect(descriptor.annotations).toEqual({ [refNameAnnotation]: 'v1' });
    expect(descriptor.platform).toEqual({ architecture: 'amd64', os: 'linux' });
    await validateLayoutFiles();
    expect(JSON.parse(await readFile(path.join(layout, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });

    const back = await readImageFromLayout(layout, { tag: 'v1' });
    expect(back.digest).toBe(image.digest);
    expect(back.rawManifest.equals(image.rawManifest)).toBe(true);
    expect(back.rawConfig.equals(image.rawConfig)).toBe(true);
    expect(back.layers.map((l) => l.diffId)).toEqual(image.layers.map((l) => l.diffId));
    for (const [i, layer] of back.layers.entries()) {
      const bytes = await readAll(await layer.open());
      expect(sha256Digest(bytes)).toBe(image.layers[i]!.descriptor.digest);
    }
    // Every blob is under its digest, and nothing else (no temp files) is left behind.
    const blobs = (await readdir(path.join(layout, 'blobs', 'sha256'))).sort();
    expect(blobs).toEqual([image.digest, image.manifest.config.digest, ...image.layers.map((l) => l.descriptor.digest)].map((d) => d.slice(7)).sort());
    expect((await readdir(layout)).sort()).toEqual(['blobs', 'index.json', 'oci-layout']);
  });

  it('adds to an existing layout and replaces a tag written again', async () => {
    const first = await makeImage('first');
    const second = await makeImage('second');
    await writeImageToLayout(layout, first, { tag: 'latest' });
    await writeImageToLayout(layout, first, { tag: 'stable' });
    await writeImageToLayout(layout, second, { tag: 'latest' });
    const index = await readLayoutIndex(layout);
    expect(index.manifests.map((m) => [m.annotations?.[refNameAnnotation], m.digest])).toEqual([
      ['stable', first.digest],
      ['latest', second.digest],
    ]);
    expect((await readImageFromLayout(layout, { tag: 'latest' })).digest).toBe(second.digest);
    expect((await readImageFromLayout(layout, { tag: 'stable' })).digest).toBe(first.digest);
    expect((await readImageFromLayout(layout, { digest: first.digest })).digest).toBe(first.digest);
    await validateLayoutFiles();
  });

  it('an untagged write is listed once', async () => {
    const image = await makeImage('u');
    await writeImageToLayout(layout, image);
    await writeImageToLayout(layout, image);
    expect((await readLayoutIndex(layout)).manifests).toHaveLength(1);
    expect((await readImageFromLayout(layout)).digest).toBe(image.digest);
  });

  it('says which tags exist when the one asked for does not', async () => {
    await writeImageToLayout(layout, await makeImage('a'), { tag: 'one' });
    await writeImageToLayout(layout, await makeImage('b'), { tag: 'two' });
    await expect(readImageFromLayout(layout, { tag: 'three' })).rejects.toThrow('no image tagged "three" (tags: one, two)');
    await expect(readImageFromLayout(layout)).rejects.toThrow(/lists 2 images; name one/);
    await expect(readImageFromLayout(layout, { digest: sha256Digest('nothing') })).rejects.toThrow(OciLayoutError);
    await expect(readImageFromLayout(path.join(dir, 'nowhere'))).rejects.toThrow(/no index.json/);
  });

  it('verifies blobs as they are read', async () => {
    const image = await makeImage('c');
    await writeImageToLayout(layout, image, { tag: 't' });
    const layerFile = blobPath(layout, image.layers[0]!.descriptor.digest);
    const bytes = await readFile(layerFile);
    bytes[20] = bytes[20]! ^ 0xff;
    await writeFile(layerFile, bytes);
    const back = await readImageFromLayout(layout, { tag: 't' });
    await expect(readAll(await back.layers[0]!.open())).rejects.toBeInstanceOf(DigestMismatchError);

    await writeFile(blobPath(layout, image.manifest.config.digest), '{"tampered":true}');
    await expect(readImageFromLayout(layout, { tag: 't' })).rejects.toBeInstanceOf(DigestMismatchError);
  });

  it('rejects digests that could escape the layout', () => {
    expect(() => blobPath(layout, 'sha256:../../etc/passwd')).toThrow(OciLayoutError);
    expect(blobPath(layout, `sha256:${'a'.repeat(64)}`)).toBe(path.join(layout, 'blobs', 'sha256', 'a'.repeat(64)));
  });

  it('a failed layer leaves no blob and no temp file behind', async () => {
    const image = await makeImage('d');
    const broken: Image = {
      ...image,
      layers: image.layers.map((layer, i) =>
        i === 0 ? { ...layer, descriptor: { ...layer.descriptor, digest: sha256Digest('other') }, open: () => layer.open() } : layer,
      ),
    };
    await expect(writeImageToLayout(layout, broken, { tag: 'x' })).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await readdir(path.join(layout, 'blobs', 'sha256'))).not.toContain(sha256Digest('other').slice(7));
    expect((await readdir(layout)).filter((name) => name.startsWith('.kiln-tmp'))).toEqual([]);
    await expect(readFile(path.join(layout, 'index.json'))).rejects.toThrow(/ENOENT/);
  });

  it('reads a manifest without mediaType whose index entry has one (umoci)', async () => {
    const image = await makeImage('e');
    const manifestWithout = { ...image.manifest };
    delete manifestWithout.mediaType;
    const raw = canonicalJson(manifestWithout);
    await writeImageToLayout(layout, { ...image, manifest: manifestWithout, rawManifest: raw, digest: sha256Digest(raw) }, { tag: 'umoci' });
    const back = await readImageFromLayout(layout, { tag: 'umoci' });
    expect(back.manifest.mediaType).toBeUndefined();
    expect(back.layers).toHaveLength(2);
    expect(back.digest).toBe(sha256Digest(raw));
  });
});

function indexSource(images: Image[]): ImageIndexSource {
  const manifests: Descriptor[] = images.map((image) => ({
    mediaType: MediaType.ociManifest,
    digest: image.digest,
    size: image.rawManifest.length,
    platform: { os: image.config.os, architecture: image.config.architecture, ...(image.config.variant ? { variant: image.config.variant } : {}) },
  }));
  const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests };
  const rawManifest = canonicalJson(index);
  return {
    rawManifest,
    index,
    digest: sha256Digest(rawManifest),
    image: async (child) => {
      const found = images.find((image) => image.digest === child.digest);
      if (found === undefined) throw new Error(`no image ${child.digest}`);
      return found;
    },
  };
}

describe('indexes in a layout', () => {
  it('writes an index with its images and resolves it by platform', async () => {
    const amd64 = await makeImage('multi', 'amd64');
    const arm64 = await makeImage('multi', 'arm64', 'v8');
    const source = indexSource([amd64, arm64]);
    const descriptor = await writeIndexToLayout(layout, source, { tag: 'multi' });
    expect(descriptor).toMatchObject({ mediaType: MediaType.ociIndex, digest: source.digest });
    await validateLayoutFiles();
    assertValidOci(MediaType.ociIndex, source.rawManifest);

    expect((await readImageFromLayout(layout, { tag: 'multi', platform: parsePlatform('linux/amd64') })).digest).toBe(amd64.digest);
    expect((await readImageFromLayout(layout, { tag: 'multi', platform: parsePlatform('linux/aarch64') })).digest).toBe(arm64.digest);
    await expect(readImageFromLayout(layout, { tag: 'multi', platform: parsePlatform('linux/s390x') })).rejects.toBeInstanceOf(
      NoMatchingPlatformError,
    );
    // A child is also reachable by its digest, though index.json does not list it.
    expect((await readImageFromLayout(layout, { digest: arm64.digest })).config.architecture).toBe('arm64');

    const back = await readIndexFromLayout(layout, { tag: 'multi' });
    expect(back.digest).toBe(source.digest);
    expect(back.index.manifests).toHaveLength(2);
    expect((await back.image(back.index.manifests[1]!)).digest).toBe(arm64.digest);
  });

  it('several entries under one name are told apart by platform', async () => {
    const amd64 = await makeImage('p', 'amd64');
    const arm64 = await makeImage('p', 'arm64', 'v8');
    await writeImageToLayout(layout, amd64);
    await writeImageToLayout(layout, arm64);
    // Hand-tag both entries with the same name, as containerd-style exports do.
    const index = await readLayoutIndex(layout);
    for (const entry of index.manifests) entry.annotations = { [refNameAnnotation]: 'same' };
    await writeFile(path.join(layout, 'index.json'), canonicalJson(index));
    expect((await readImageFromLayout(layout, { tag: 'same', platform: parsePlatform('linux/arm64') })).digest).toBe(arm64.digest);
  });
});
