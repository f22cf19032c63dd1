/**
 * Transfers against real registries: images made by umoci and pushed by skopeo, chunked uploads,
 * cross-repository mounts (seen in the registry's own access log), and index copies within one
 * registry and between two.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createGunzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { RegistryClient, type RegistryClientOptions } from '../../src/registry/client.js';
import { copyImage } from '../../src/registry/copy.js';
import { pull, pullImage, pushImage, pushIndex } from '../../src/registry/remote-image.js';
import { sha256Digest } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { pushBusyboxImage } from '../harness/base-images.js';
import { runTool } from '../harness/process.js';
import { generateImage, indexOf } from '../harness/generated-image.js';

let registry: TestRegistry;
let other: TestRegistry;
let dir: string;

const clientFor = (target: TestRegistry, options: Partial<RegistryClientOptions> = {}): RegistryClient =>
  new RegistryClient({ endpoint: target.endpoint, credentials: { get: async () => undefined }, ...options });

/** Access-log lines of the registry: `"METHOD /path HTTP/1.1" STATUS`. */
async function accessLines(target: TestRegistry, pattern: RegExp): Promise<string[]> {
  return (await target.readLog()).split('\n').filter((line) => pattern.test(line));
}

async function tarEntryNames(stream: NodeJS.ReadableStream): Promise<string[]> {
  const names: string[] = [];
  const extract = tar.extract();
  extract.on('entry', (header, body, next) => {
    names.push(header.name);
    body.on('end', next);
    body.resume();
  });
  await pipeline(stream, createGunzip(), extract);
  return names;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-e2e-transfer-'));
  [registry, other] = await Promise.all([startRegistry('plain'), startRegistry('tls')]);
});

afterAll(async () => {
  await registry?.stop();
  await other?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('images made by other tools', () => {
  it('pulls an umoci image pushed by skopeo: no mediaType in the manifest, a "/" entry in the layer', async () => {
    const base = await pushBusyboxImage({ registry: registry.host, image: 'base/busybox:oci', skopeoDestArgs: registry.skopeoDestArgs() });
    const document = JSON.parse(base.rawManifest) as { mediaType?: string };
    expect(document.mediaType).toBeUndefined(); // the quirk this test is about

    const image = await pullImage(clientFor(registry), 'base/busybox', 'oci');
    expect(image.digest).toBe(sha256Digest(Buffer.from(base.rawManifest, 'utf8')));
    expect(image.layers).toHaveLength(1);
    const names = await tarEntryNames(await image.layers[0]!.open());
    expect(names.some((name) => name === '/' || name === './')).toBe(true);
    expect(names.some((name) => name.replace(/^\.?\//, '') === 'bin/busybox')).toBe(true);
  });

  it('pulls the same image converted to Docker schema 2 by skopeo', async () => {
    const base = await pushBusyboxImage({
      registry: registry.host,
      image: 'base/busybox:v2s2',
      skopeoDestArgs: registry.skopeoDestArgs(),
      format: 'v2s2',
    });
    const pulled = await pull(clientFor(registry), 'base/busybox', 'v2s2');
    expect(pulled.kind).toBe('image');
    if (pulled.kind !== 'image') return;
    expect(pulled.image.manifest.mediaType).toBe(MediaType.dockerManifest);
    expect(pulled.image.digest).toBe(sha256Digest(Buffer.from(base.rawManifest, 'utf8')));
    expect(pulled.image.config.config?.Cmd).toEqual(['sh']);
  });
});

describe('uploads', () => {
  it('uploads a blob above the monolithic limit as one streamed PATCH that skopeo reads back', async () => {
    const image = await generateImage(dir, { layers: [[{ name: 'big', content: { randomBytes: 5 * 1024 * 1024 } }]] });
    const streaming = clientFor(registry, { monolithicUploadLimit: 1024 * 1024 });
    const digest = await pushImage(streaming, 'kiln/streamed', image, { tags: ['big'] });
    expect(digest).toBe(image.digest);
    const patches = await accessLines(registry, /"PATCH \/v2\/kiln\/streamed\/blobs\/uploads\/[^"]*" 202/);
    expect(patches).toHaveLength(1); // the layer; the small config goes in one PUT
    const closes = await accessLines(registry, /"PUT \/v2\/kiln\/streamed\/blobs\/uploads\/[^"]*digest=[^"]*" 201/);
    expect(closes).toHaveLength(2);

    const layout = path.join(dir, 'streamed-layout');
    await runTool('skopeo', ['copy', ...registry.skopeoSrcArgs(), `docker://${registry.host}/kiln/streamed:big`, `oci:${layout}:big`]);
    const layerDigest = image.layers[0]!.descriptor.digest;
    const blob = await readFile(path.join(layout, 'blobs/sha256', layerDigest.slice(7)));
    expect(sha256Digest(blob)).toBe(layerDigest);
  });

  it('skips blobs the repository already has (HEAD first)', async () => {
    const image = await generateImage(dir);
    const client = clientFor(registry);
    await pushImage(client, 'kiln/again', image, { tags: ['one'] });
    const before = (await accessLines(registry, /"PUT \/v2\/kiln\/again\/blobs\/uploads\//)).length;
    await pushImage(client, 'kiln/again', image, { tags: ['two'] });
    expect((await accessLines(registry, /"PUT \/v2\/kiln\/again\/blobs\/uploads\//)).length).toBe(before);
    expect((await client.listTags('kiln/again')).sort()).toEqual(['one', 'two']);
  });
});

describe('cross-repository mounts', () => {
  it('copies within one registry by mounting every blob instead of uploading it', async () => {
    const image = await generateImage(dir);
    const client = clientFor(registry);
    await pushImage(client, 'kiln/source', image, { tags: ['v1'] });
    const result = await copyImage(
      { client, repository: 'kiln/source', reference: 'v1' },
      { client, repository: 'kiln/mounted', tags: ['v1'] },
    );
    expect(result.digest).toBe(image.digest);
    expect(result.blobs).toEqual({ exists: 0, mounted: 4, uploaded: 0 });
    const mounts = await accessLines(registry, /"POST \/v2\/kiln\/mounted\/blobs\/uploads\/\?[^"]*mount=sha256[^"]*" 201/);
    expect(mounts).toHaveLength(4);
    expect(await accessLines(registry, /"(PUT|PATCH) \/v2\/kiln\/mounted\/blobs\/uploads\//)).toEqual([]);
  });

  it('mounts the layers of a pulled image when pushing it to another repository of its registry', async () => {
    const client = clientFor(registry);
    const image = await pullImage(client, 'kiln/source', 'v1');
    await pushImage(client, 'kiln/rebased', image, { tags: ['v1'] });
    const mounts = await accessLines(registry, /"POST \/v2\/kiln\/rebased\/blobs\/uploads\/\?[^"]*mount=sha256[^"]*" 201/);
    expect(mounts).toHaveLength(3); // the three layers; the config comes from memory
  });

  it('falls back to an upload when the mount source does not have the blob', async () => {
    const image = await generateImage(dir, { layers: [[{ name: 'fresh', content: 'fresh' }]] });
    const client = clientFor(registry);
    await pushImage(client, 'kiln/fallback', image, { tags: ['v1'], mountFrom: ['kiln/nowhere'] });
    const tried = await accessLines(registry, /"POST \/v2\/kiln\/fallback\/blobs\/uploads\/\?[^"]*mount=[^"]*" 202/);
    expect(tried.length).toBeGreaterThanOrEqual(1);
    const head = await client.headManifest('kiln/fallback', 'v1');
    expect(head?.digest).toBe(image.digest);
  });
});

describe('indexes', () => {
  let indexDigest: string;
  let indexRaw: Buffer;
  let arm64Digest: string;

  beforeAll(async () => {
    const client = clientFor(registry);
    const amd64 = await generateImage(dir, { architecture: 'amd64' });
    const arm64 = await generateImage(dir, { architecture: 'arm64', format: 'docker' });
    await pushImage(client, 'kiln/multi', amd64);
    await pushImage(client, 'kiln/multi', arm64);
    const index = indexOf([amd64, arm64]);
    await client.putManifest('kiln/multi', 'multi', index.raw, MediaType.ociIndex);
    indexDigest = index.digest;
    indexRaw = index.raw;
    arm64Digest = arm64.digest;
  });

  it('pulls the image of the requested platform from an index', async () => {
    const image = await pullImage(clientFor(registry), 'kiln/multi', 'multi', { platform: { os: 'linux', architecture: 'arm64' } });
    expect(image.digest).toBe(arm64Digest);
    expect(image.config.architecture).toBe('arm64');
  });

  it('copies a whole index to another registry, byte for byte', async () => {
    const result = await copyImage(
      { client: clientFor(registry), repository: 'kiln/multi', reference: 'multi' },
      { client: clientFor(other), repository: 'mirror/multi', tags: ['copied'] },
    );
    expect(result.digest).toBe(indexDigest);
    expect(result.blobs.uploaded).toBe(8);
    const inspect = ['inspect', '--raw', `--cert-dir=${other.certDir}`];
    const raw = await runTool('skopeo', [...inspect, `docker://${other.host}/mirror/multi:copied`]);
    expect(Buffer.from(raw.stdout, 'utf8').equals(indexRaw)).toBe(true);
    const child = await runTool('skopeo', [...inspect, `docker://${other.host}/mirror/multi@${arm64Digest}`]);
    expect(sha256Digest(Buffer.from(child.stdout, 'utf8'))).toBe(arm64Digest);
    // and a full read of the copy through skopeo fetches and checks every blob
    await runTool('skopeo', ['copy', '--all', `--src-cert-dir=${other.certDir}`, `docker://${other.host}/mirror/multi:copied`, `oci:${path.join(dir, 'index-copy')}:x`]);
  });

  it('copies an index within one registry by mounting', async () => {
    const client = clientFor(registry);
    const result = await copyImage(
      { client, repository: 'kiln/multi', reference: 'multi' },
      { client, repository: 'kiln/multi-copy', tags: ['latest'] },
    );
    expect(result.digest).toBe(indexDigest);
    expect(result.blobs).toEqual({ exists: 0, mounted: 8, uploaded: 0 });
  });

  it('pushes a pulled index (children first, then the index, tags last)', async () => {
    const pulled = await pull(clientFor(registry), 'kiln/multi', 'multi');
    expect(pulled.kind).toBe('index');
    if (pulled.kind !== 'index') return;
    const digest = await pushIndex(clientFor(other), 'pushed/multi', pulled.index, { tags: ['v1'] });
    expect(digest).toBe(indexDigest);
    const tags = await clientFor(other).listTags('pushed/multi');
    expect(tags).toEqual(['v1']);
  });
});
