/**
 * The registry client against a real distribution registry in each of its four modes: plain HTTP,
 * htpasswd Basic, TLS with a private CA, and Bearer tokens. skopeo is the independent reader.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { RegistryClient } from '../../src/registry/client.js';
import { RegistryError } from '../../src/registry/errors.js';
import { pullImage, pushImage } from '../../src/registry/remote-image.js';
import type { Credential, CredentialStore } from '../../src/registry/types.js';
import { sha256Digest } from '../../src/image/digest.js';
import { startRegistry, type RegistryMode, type TestRegistry } from '../harness/registry.js';
import { runTool } from '../harness/process.js';
import { generateImage } from '../harness/generated-image.js';

function storeOf(credential: Credential | undefined): CredentialStore {
  return { get: async () => credential };
}

describe.each(['plain', 'basic', 'tls', 'token'] as const)('registry in %s mode', (mode: RegistryMode) => {
  let registry: TestRegistry;
  let dir: string;
  const logLines: string[] = [];
  const needsCredentials = mode === 'basic' || mode === 'token';
  const repository = 'kiln/generated';

  const client = (credential?: Credential, lines: string[] = logLines): RegistryClient =>
    new RegistryClient({
      endpoint: registry.endpoint,
      credentials: storeOf(credential),
      log: (line) => lines.push(line),
      retryPolicy: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20, maxRetryAfterMs: 100 },
    });
  const goodCredential = (): Credential | undefined =>
    needsCredentials ? { kind: 'basic', username: registry.username, password: registry.password } : undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-e2e-modes-'));
    registry = await startRegistry(mode);
  });

  afterAll(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('pushes a generated multi-layer image that skopeo reads back with the same digests', async () => {
    const image = await generateImage(dir);
    const digest = await pushImage(client(goodCredential()), repository, image, { tags: ['v1'] });
    expect(digest).toBe(image.digest);

    const raw = await runTool('skopeo', ['inspect', '--raw', ...registry.skopeoSrcArgs().map(toInspectArg), `docker://${registry.host}/${repository}:v1`]);
    expect(sha256Digest(Buffer.from(raw.stdout, 'utf8'))).toBe(image.digest);

    const layout = path.join(dir, `copy-${mode}`);
    await runTool('skopeo', ['copy', ...registry.skopeoSrcArgs(), `docker://${registry.host}/${repository}:v1`, `oci:${layout}:v1`]);
    const index = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(index.manifests[0]?.digest).toBe(image.digest);
    for (const layer of image.layers) {
      const blob = await readFile(path.join(layout, 'blobs', 'sha256', layer.descriptor.digest.slice('sha256:'.length)));
      expect(sha256Digest(blob)).toBe(layer.descriptor.digest);
    }
  });

  it('pulls the image back lazily and streams verified layers', async () => {
    const lines: string[] = [];
    const reader = client(goodCredential(), lines);
    const image = await pullImage(reader, repository, 'v1');
    expect(image.layers).toHaveLength(3);
    // Lazy: manifest and config only, no layer blob fetched yet.
    const blobGets = (): number => lines.filter((l) => l.startsWith('GET') && l.includes('/blobs/')).length;
    expect(blobGets()).toBe(1);
    for (const layer of image.layers) {
      const hash = createHash('sha256');
      for await (const chunk of await layer.open()) hash.update(chunk as Buffer);
      expect(`sha256:${hash.digest('hex')}`).toBe(layer.descriptor.digest);
    }
    expect(blobGets()).toBe(4);
    expect(image.config.rootfs.diff_ids).toEqual(image.layers.map((layer) => layer.diffId));
    const byDigest = await reader.getManifest(repository, image.digest);
    expect(byDigest.raw.equals(image.rawManifest)).toBe(true);
  });

  // distribution 2.8 ignores `n` on tags/list and sends no Link header (pagination came in 3.0), so
  // only the single-page path is exercised here; nextLink() is unit-tested.
  it('lists tags', async () => {
    const writer = client(goodCredential());
    const head = await writer.getManifest(repository, 'v1');
    for (const tag of ['a', 'b', 'c', 'd']) await writer.putManifest(repository, tag, head.raw, head.contentType);
    expect((await writer.listTags(repository, 2)).sort()).toEqual(['a', 'b', 'c', 'd', 'v1']);
  });

  it('never writes a credential into its log', () => {
    expect(logLines.length).toBeGreaterThan(0);
    const text = logLines.join('\n');
    expect(text).not.toContain(registry.password);
    expect(text).not.toMatch(/Basic |Bearer /);
  });
});

describe.each(['basic', 'token'] as const)('authentication failures in %s mode', (mode: RegistryMode) => {
  let registry: TestRegistry;
  let dir: string;
  const repository = 'kiln/generated';
  const client = (credential: Credential | undefined, lines: string[] = []): RegistryClient =>
    new RegistryClient({ endpoint: registry.endpoint, credentials: storeOf(credential), log: (line) => lines.push(line) });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-e2e-authfail-'));
    registry = await startRegistry(mode);
    const image = await generateImage(dir, { layers: [[{ name: 'f', content: 'f' }]] });
    await pushImage(client({ kind: 'basic', username: registry.username, password: registry.password }), repository, image, { tags: ['v1'] });
  });

  afterAll(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('reports wrong credentials clearly, without the password', async () => {
    const wrongPassword = `${registry.password}-wrong`;
    const lines: string[] = [];
    const failure = await client({ kind: 'basic', username: registry.username, password: wrongPassword }, lines)
      .getManifest(repository, 'v1')
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(failure).toBeInstanceOf(RegistryError);
    const error = failure as RegistryError;
    expect(error.status).toBe(401);
    expect(error.registry).toBe(registry.host);
    expect(error.repository).toBe(repository);
    expect(error.message).toContain(registry.host);
    expect(error.message).toMatch(/UNAUTHORIZED/);
    const everything = `${error.message}\n${String(error.stack)}\n${JSON.stringify(error)}\n${lines.join('\n')}`;
    expect(everything).not.toContain(wrongPassword);
    expect(everything).not.toContain(Buffer.from(`${registry.username}:${wrongPassword}`).toString('base64'));
  });

  it('refuses an anonymous push with the registry’s own message', async () => {
    const image = await generateImage(dir, { layers: [[{ name: 'anon', content: 'x' }]] });
    const failure = await pushImage(client(undefined), 'kiln/anonymous', image, { tags: ['x'] }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(RegistryError);
    expect((failure as RegistryError).status).toBe(401);
    expect((failure as RegistryError).message).toMatch(/kiln\/anonymous.*HTTP 401 Unauthorized.*no credentials are configured/);
  });
});

/** skopeo inspect takes the unprefixed form of the copy source flags. */
function toInspectArg(arg: string): string {
  return arg.replace(/^--src-/, '--');
}
