/**
 * Faults between kiln and a real registry: a fault-injecting proxy sits in front of the
 * distribution registry, and the client (reached through EndpointFactory, as the CLI does) must
 * resume, retry and keep tags consistent. Waiting is observed through an injected clock.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleImage } from '../../src/image/assemble.js';
import type { Image } from '../../src/image/image.js';
import { RegistryClient } from '../../src/registry/client.js';
import { EndpointFactory } from '../../src/registry/endpoints.js';
import { RegistryError } from '../../src/registry/errors.js';
import { pullImage, pushImage } from '../../src/registry/remote-image.js';
import type { Clock } from '../../src/registry/retry.js';
import type { CredentialStore } from '../../src/registry/types.js';
import { FaultProxy } from '../harness/fault-proxy.js';
import { runTool } from '../harness/process.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { readAll, testConfig, writeTestLayer } from '../harness/test-layers.js';

const anonymous: CredentialStore = { get: async () => undefined };

let dir: string;
let registry: TestRegistry;
let proxy: FaultProxy;
let endpoints: EndpointFactory;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-faults-'));
  registry = await startRegistry('plain');
  proxy = await FaultProxy.start(registry.url);
  endpoints = new EndpointFactory({ insecureRegistries: [proxy.host, registry.host] });
});

afterAll(async () => {
  await endpoints?.close();
  await proxy?.stop();
  await registry?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** A clock whose sleeps return at once and are recorded. */
function recordingClock(): Clock & { sleeps: number[] } {
  const sleeps: number[] = [];
  return { sleeps, now: () => Date.now(), sleep: async (ms) => void sleeps.push(ms) };
}

function clientFor(host: string, direction: 'pull' | 'push', clock: Clock): RegistryClient {
  const [endpoint] = endpoints.resolveEndpoints(host, direction);
  if (!endpoint) throw new Error(`no endpoint for ${host}`);
  return new RegistryClient({ endpoint, credentials: anonymous, clock });
}

/** A two-layer image whose big layer (~1.5 MB, hardly compressible) is new every call. */
async function makeImage(label: string): Promise<Image> {
  const big = await writeTestLayer(dir, [{ name: 'data.bin', content: randomBytes(1_200_000).toString('base64') }]);
  const small = await writeTestLayer(dir, [{ name: 'etc/label', content: `${label}\n` }]);
  return assembleImage({ config: testConfig(), layers: [small.layer, big.layer], format: 'oci' });
}

async function skopeoDigest(reference: string): Promise<string> {
  const { stdout } = await runTool('skopeo', ['inspect', '--tls-verify=false', `docker://${reference}`]);
  return (JSON.parse(stdout) as { Digest: string }).Digest;
}

const hexOf = (digest: string) => digest.slice('sha256:'.length);

describe('through a fault-injecting proxy', () => {
  it('resumes a blob download cut mid-way with a Range request and verifies the bytes', async () => {
    const image = await makeImage('pull');
    await pushImage(clientFor(registry.host, 'push', recordingClock()), 'faults/pull', image, { tags: ['v1'] });
    const big = image.layers[1]!.descriptor;
    expect(big.size).toBeGreaterThan(1_000_000);

    proxy.resetCounts();
    const blobPath = new RegExp(`/blobs/${big.digest}$`);
    proxy.inject({ match: { method: 'GET', path: blobPath }, fault: { kind: 'drop', afterBytes: 400_000 } });
    const clock = recordingClock();
    const pulled = await pullImage(clientFor(proxy.host, 'pull', clock), 'faults/pull', 'v1');
    expect(pulled.digest).toBe(image.digest);

    const bytes = await readAll(await pulled.layers[1]!.open());
    expect(bytes.length).toBe(big.size);
    const gets = proxy.requests.filter((r) => r.method === 'GET' && blobPath.test(r.path));
    expect(gets.map((r) => r.fault)).toEqual(['drop', undefined]);
    expect(gets[0]?.headers.range).toBeUndefined();
    const resumedFrom = /^bytes=(\d+)-$/.exec(String(gets[1]?.headers.range));
    expect(resumedFrom).not.toBeNull();
    expect(Number(resumedFrom?.[1])).toBeGreaterThan(0);
    expect(Number(resumedFrom?.[1])).toBeLessThanOrEqual(400_000);
    expect(gets[1]?.status).toBe(206);
    expect(proxy.pendingFaults).toBe(0);
  });

  it('a download cut on every try fails with an error naming the blob', async () => {
    const image = await makeImage('pull-fails');
    await pushImage(clientFor(registry.host, 'push', recordingClock()), 'faults/pull-fails', image, { tags: ['v1'] });
    const big = image.layers[1]!.descriptor;
    const blobPath = new RegExp(`/blobs/${big.digest}$`);
    proxy.inject({ match: { method: 'GET', path: blobPath }, fault: { kind: 'drop', afterBytes: 100_000 }, times: 50 });
    try {
      const pulled = await pullImage(clientFor(proxy.host, 'pull', recordingClock()), 'faults/pull-fails', 'v1');
      const error = await readAll(await pulled.layers[1]!.open()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toContain(big.digest);
    } finally {
      proxy.clearFaults();
    }
  });

  it('a push rides out 500s and a 429, honouring Retry-After', async () => {
    const image = await makeImage('push');
    proxy.resetCounts();
    // The first upload session start is throttled, the first blob PUT and the first manifest PUT fail.
    proxy.inject({ match: { method: 'POST', path: /\/blobs\/uploads\/$/ }, fault: { kind: 'throttle', retryAfterSeconds: 7 } });
    proxy.inject({ match: { method: 'PUT', path: /\/blobs\/uploads\/.*digest=/ }, fault: { kind: 'status', status: 500 } });
    proxy.inject({ match: { method: 'PUT', path: /\/manifests\// }, fault: { kind: 'status', status: 503 } });
    const clock = recordingClock();
    const digest = await pushImage(clientFor(proxy.host, 'push', clock), 'faults/push', image, { tags: ['v1'] });

    expect(digest).toBe(image.digest);
    expect(proxy.pendingFaults).toBe(0);
    expect(clock.sleeps).toContain(7_000);
    // Three blobs (two layers and the config) stored, plus the one PUT answered 500.
    const blobPuts = proxy.requests.filter((r) => r.method === 'PUT' && /\/blobs\/uploads\//.test(r.path));
    expect(blobPuts.filter((r) => r.status === 201)).toHaveLength(3);
    expect(blobPuts.filter((r) => r.fault === 'status')).toHaveLength(1);
    expect(await skopeoDigest(`${registry.host}/faults/push:v1`)).toBe(image.digest);
  });

  it('a push that finally fails leaves the tag on the previous image, because the manifest goes last', async () => {
    const old = await makeImage('old');
    const oldDigest = await pushImage(clientFor(proxy.host, 'push', recordingClock()), 'faults/keep', old, { tags: ['latest'] });
    expect(await skopeoDigest(`${registry.host}/faults/keep:latest`)).toBe(oldDigest);

    const next = await makeImage('new');
    const bigHex = hexOf(next.layers[1]!.descriptor.digest);
    proxy.resetCounts();
    // Every attempt to finish the new big layer's upload fails.
    proxy.inject({ match: { method: 'PUT', path: new RegExp(`/blobs/uploads/.*digest=sha256(:|%3A)${bigHex}`) }, fault: { kind: 'status', status: 500 }, times: 1_000 });
    try {
      const clock = recordingClock();
      const error = await pushImage(clientFor(proxy.host, 'push', clock), 'faults/keep', next, { tags: ['latest'] }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RegistryError);
      expect((error as RegistryError).status).toBe(500);
      expect((error as Error).message).toContain('faults/keep');
      expect(clock.sleeps.length).toBeGreaterThan(0);
    } finally {
      proxy.clearFaults();
    }
    expect(proxy.count({ method: 'PUT', path: /\/manifests\// })).toBe(0);
    expect(await skopeoDigest(`${registry.host}/faults/keep:latest`)).toBe(oldDigest);
  });

  it('keeps upload Locations pointing at the proxy and passes everything else through', async () => {
    proxy.resetCounts();
    const response = await fetch(`${proxy.url}/v2/faults/location/blobs/uploads/`, { method: 'POST' });
    await response.arrayBuffer();
    expect(response.status).toBe(202);
    const location = response.headers.get('location') ?? '';
    expect(new URL(location, proxy.url).host).toBe(proxy.host);
    expect(proxy.count({ method: 'POST' })).toBe(1);

    // Asked under the registry's own host name, the registry answers with an absolute Location
    // naming itself: the proxy must turn it back to itself, or the upload would bypass the faults.
    const direct = await request(`${proxy.url}/v2/faults/location/blobs/uploads/`, {
      method: 'POST',
      headers: { host: registry.host },
    });
    await direct.body.dump();
    expect(direct.statusCode).toBe(202);
    const rewritten = new URL(String(direct.headers.location));
    expect(rewritten.host).toBe(proxy.host);
    expect(rewritten.pathname).toMatch(/^\/v2\/faults\/location\/blobs\/uploads\/[0-9a-f-]+$/);
  });
});
