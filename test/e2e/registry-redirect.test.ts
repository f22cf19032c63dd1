/**
 * Blob downloads redirected to another host, as registries backed by cloud storage answer: the
 * real registry (with its `redirect` storage middleware) sends 307 to a separate file server. The
 * client must follow it, verify the bytes, and keep the registry credentials to the registry.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { RegistryClient } from '../../src/registry/client.js';
import { pullImage, pushImage } from '../../src/registry/remote-image.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { generateImage } from '../harness/generated-image.js';

let registry: TestRegistry;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-e2e-redirect-'));
  registry = await startRegistry('basic', { blobCdn: true });
});

afterAll(async () => {
  await registry?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('redirected blob downloads', () => {
  it('follows the redirect, verifies the blob, and sends no credentials to the other host', async () => {
    const client = new RegistryClient({
      endpoint: registry.endpoint,
      credentials: { get: async () => ({ kind: 'basic', username: registry.username, password: registry.password }) },
    });
    const image = await generateImage(dir);
    await pushImage(client, 'kiln/redirected', image, { tags: ['v1'] });

    const pulled = await pullImage(client, 'kiln/redirected', 'v1');
    for (const layer of pulled.layers) {
      const hash = createHash('sha256');
      for await (const chunk of await layer.open()) hash.update(chunk as Buffer);
      expect(`sha256:${hash.digest('hex')}`).toBe(layer.descriptor.digest);
    }

    const redirects = (await registry.readLog()).split('\n').filter((l) => /"GET \/v2\/kiln\/redirected\/blobs\/sha256:[^"]*" 307/.test(l));
    expect(redirects).toHaveLength(4); // the config and three layers
    const cdn = registry.blobCdn!.requests;
    expect(cdn).toHaveLength(4);
    expect(cdn.every((r) => r.status === 200 && !r.hadAuthorization)).toBe(true);
  });
});
