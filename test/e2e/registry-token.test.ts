/**
 * Bearer token behaviour against the real registry and the test token server: tokens cached per
 * scope, refreshed once when the registry refuses one, identity tokens exchanged as OAuth2 refresh
 * tokens, and mounts that need pull access to the source repository.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { RegistryClient } from '../../src/registry/client.js';
import { copyImage } from '../../src/registry/copy.js';
import { RegistryError } from '../../src/registry/errors.js';
import { pullImage, pushImage } from '../../src/registry/remote-image.js';
import type { Credential } from '../../src/registry/types.js';
import type { Clock } from '../../src/registry/retry.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { generateImage } from '../harness/generated-image.js';

const refreshToken = 'kiln-refresh-4f1c2a9e7b';
let registry: TestRegistry;
let dir: string;
let imageDigest: string;

const basic = (): Credential => ({ kind: 'basic', username: registry.username, password: registry.password });
const clientWith = (credential: Credential | undefined, clock?: Clock, lines: string[] = []): RegistryClient =>
  new RegistryClient({
    endpoint: registry.endpoint,
    credentials: { get: async () => credential },
    ...(clock ? { clock } : {}),
    log: (line) => lines.push(line),
  });
const tokenRequests = () => registry.tokenServer!.requests;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-e2e-token-'));
  registry = await startRegistry('token', { token: { refreshTokens: { [refreshToken]: 'kiln-user' } } });
  const image = await generateImage(dir);
  imageDigest = await pushImage(clientWith(basic()), 'kiln/app', image, { tags: ['v1'] });
});

afterAll(async () => {
  await registry?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('Bearer tokens', () => {
  it('fetches one token per scope and reuses it until it expires', async () => {
    const client = clientWith(basic());
    const before = tokenRequests().length;
    const image = await pullImage(client, 'kiln/app', 'v1');
    for (const layer of image.layers) (await layer.open()).resume();
    await client.getManifest('kiln/app', image.digest);
    const fetched = tokenRequests().slice(before);
    expect(fetched).toHaveLength(1);
    expect(fetched[0]).toMatchObject({ method: 'GET', account: 'kiln-user', scopes: ['repository:kiln/app:pull'], status: 200 });
  });

  it('asks again when its clock says the token has expired', async () => {
    let now = Date.now();
    const clock: Clock = { now: () => now, sleep: async () => undefined };
    const client = clientWith(basic(), clock);
    const before = tokenRequests().length;
    await client.getManifest('kiln/app', 'v1');
    await client.getManifest('kiln/app', 'v1');
    expect(tokenRequests().length - before).toBe(1);
    now += 10 * 60 * 1000; // past the 300 s lifetime
    await client.getManifest('kiln/app', 'v1');
    expect(tokenRequests().length - before).toBe(2);
  });

  it('refreshes the token once when the registry refuses one it believed valid', async () => {
    const client = clientWith(basic());
    const before = tokenRequests().length;
    registry.tokenServer!.expiredTokensToIssue = 1;
    const manifest = await client.getManifest('kiln/app', 'v1');
    expect(manifest.digest).toBe(imageDigest);
    expect(tokenRequests().length - before).toBe(2);
    const refused = (await registry.readLog()).split('\n').filter((line) => /"GET \/v2\/kiln\/app\/manifests\/v1 [^"]*" 401/.test(line));
    expect(refused.length).toBeGreaterThanOrEqual(1);
  });

  it('gives up after one refresh when every token is refused', async () => {
    const client = clientWith(basic());
    registry.tokenServer!.expiredTokensToIssue = 5;
    const failure = await client.getManifest('kiln/app', 'v1').then(() => undefined, (error: unknown) => error);
    registry.tokenServer!.expiredTokensToIssue = 0;
    expect(failure).toBeInstanceOf(RegistryError);
    expect((failure as RegistryError).status).toBe(401);
    expect((failure as RegistryError).message).toContain('get manifest v1');
  });

  it('mounts across repositories with a token that can pull the source', async () => {
    const client = clientWith(basic());
    const result = await copyImage(
      { client, repository: 'kiln/app', reference: 'v1' },
      { client, repository: 'kiln/app-copy', tags: ['v1'] },
    );
    expect(result.digest).toBe(imageDigest);
    expect(result.blobs.mounted).toBe(4);
    const mountScopes = tokenRequests().filter((r) => r.scopes.includes('repository:kiln/app:pull') && r.scopes.includes('repository:kiln/app-copy:pull,push'));
    expect(mountScopes.length).toBeGreaterThanOrEqual(1);
  });
});

describe('mounts without access to the source', () => {
  it('uploads instead when the token may not pull the mount source', async () => {
    const client = clientWith(basic());
    const image = await generateImage(dir, { layers: [[{ name: 'private', content: 'private base' }]] });
    await pushImage(client, 'secret/base', image, { tags: ['v1'] });
    registry.tokenServer!.deniedRepositories.add('secret/base');
    try {
      await pushImage(clientWith(basic()), 'kiln/derived', image, { tags: ['v1'], mountFrom: ['secret/base'] });
    } finally {
      registry.tokenServer!.deniedRepositories.delete('secret/base');
    }
    const log = (await registry.readLog()).split('\n');
    expect(log.filter((l) => /"POST \/v2\/kiln\/derived\/blobs\/uploads\/\?[^"]*mount=[^"]*" 401/.test(l)).length).toBeGreaterThanOrEqual(1);
    expect(log.filter((l) => /"PUT \/v2\/kiln\/derived\/blobs\/uploads\/[^"]*" 201/.test(l))).toHaveLength(2);
    expect((await client.getManifest('kiln/derived', 'v1')).digest).toBe(image.digest);
  });
});

describe('registry tokens', () => {
  it('uses a ready Bearer token (config.json registrytoken) as it is', async () => {
    const url = new URL(registry.tokenServer!.realm);
    url.searchParams.set('service', registry.tokenServer!.service);
    url.searchParams.set('scope', 'repository:kiln/app:pull');
    const response = await request(url, {
      headers: { authorization: `Basic ${Buffer.from(`${registry.username}:${registry.password}`).toString('base64')}` },
    });
    const { token } = (await response.body.json()) as { token: string };
    const before = tokenRequests().length;
    const manifest = await clientWith({ kind: 'registryToken', token }).getManifest('kiln/app', 'v1');
    expect(manifest.digest).toBe(imageDigest);
    expect(tokenRequests().length).toBe(before);
  });
});

describe('identity tokens', () => {
  it('exchanges an identity token at the realm with the refresh_token grant', async () => {
    const before = tokenRequests().length;
    const client = clientWith({ kind: 'identityToken', token: refreshToken });
    const image = await generateImage(dir, { layers: [[{ name: 'id', content: 'identity' }]] });
    await pushImage(client, 'kiln/identity', image, { tags: ['v1'] });
    expect((await client.getManifest('kiln/identity', 'v1')).digest).toBe(image.digest);
    const used = tokenRequests().slice(before);
    expect(used.length).toBeGreaterThanOrEqual(1);
    expect(used.every((r) => r.method === 'POST' && r.grantType === 'refresh_token' && r.account === 'kiln-user')).toBe(true);
  });

  it('reports an unknown identity token without repeating it', async () => {
    const secret = 'kiln-refresh-not-known-9d8e';
    const lines: string[] = [];
    const failure = await clientWith({ kind: 'identityToken', token: secret }, undefined, lines)
      .getManifest('kiln/app', 'v1')
      .then(() => undefined, (error: unknown) => error);
    expect(failure).toBeInstanceOf(RegistryError);
    const error = failure as RegistryError;
    expect(error.status).toBe(401);
    expect(error.message).toMatch(/get a token from http:\/\/127\.0\.0\.1:\d+\/token.*invalid_grant/);
    expect(`${error.message}\n${String(error.stack)}\n${lines.join('\n')}`).not.toContain(secret);
  });
});
