/**
 * Credentials and transport settings against real registries: config.json (with a real credential
 * helper) feeding the client for an htpasswd registry, and --registry-certificate /
 * --skip-tls-verify-registry for a TLS registry with its own CA.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleImage } from '../../src/image/assemble.js';
import type { Image } from '../../src/image/image.js';
import { RegistryClient } from '../../src/registry/client.js';
import { DockerConfigCredentialStore, mergeDockerConfigAuth } from '../../src/registry/credentials.js';
import { EndpointFactory, type TransportOptions } from '../../src/registry/endpoints.js';
import { RegistryError } from '../../src/registry/errors.js';
import { pushImage } from '../../src/registry/remote-image.js';
import type { CredentialStore } from '../../src/registry/types.js';
import { runTool } from '../harness/process.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { testConfig, writeTestLayer } from '../harness/test-layers.js';

let dir: string;
let basic: TestRegistry;
let tls: TestRegistry;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-creds-e2e-'));
  [basic, tls] = await Promise.all([startRegistry('basic'), startRegistry('tls')]);
});

afterAll(async () => {
  await basic?.stop();
  await tls?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function makeImage(label: string): Promise<Image> {
  const layer = await writeTestLayer(dir, [{ name: 'etc/label', content: `${label} ${randomBytes(8).toString('hex')}\n` }]);
  return assembleImage({ config: testConfig(), layers: [layer.layer], format: 'oci' });
}

async function push(factory: EndpointFactory, registry: string, credentials: CredentialStore, repository: string, image: Image): Promise<string> {
  const [endpoint] = factory.resolveEndpoints(registry, 'push');
  if (!endpoint) throw new Error('no endpoint');
  return pushImage(new RegistryClient({ endpoint, credentials }), repository, image, { tags: ['v1'] });
}

async function skopeoDigest(registry: TestRegistry, reference: string): Promise<string> {
  // `skopeo inspect` takes the unprefixed forms of the copy flags.
  const args = [
    registry.certDir ? `--cert-dir=${registry.certDir}` : '--tls-verify=false',
    ...(registry.mode === 'basic' ? [`--creds=${registry.username}:${registry.password}`] : []),
  ];
  const { stdout } = await runTool('skopeo', ['inspect', ...args, `docker://${reference}`]);
  return (JSON.parse(stdout) as { Digest: string }).Digest;
}

describe('credentials from config.json', () => {
  it('pushes to an htpasswd registry with credentials from a real credential helper', async () => {
    const configDir = join(dir, 'helper-config');
    const binDir = join(dir, 'bin');
    await mkdir(configDir, { recursive: true });
    await mkdir(binDir, { recursive: true });
    const helper = join(binDir, 'docker-credential-kilntest');
    await writeFile(
      helper,
      `#!/bin/sh
read -r host
if [ "$host" = "${basic.host}" ]; then
  printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}' "$host" "${basic.username}" "${basic.password}"
else
  echo "credentials not found in native keychain"; exit 1
fi
`,
    );
    await chmod(helper, 0o755);
    await writeFile(join(configDir, 'config.json'), JSON.stringify({ credHelpers: { [basic.host]: 'kilntest' } }));
    const env = { ...process.env, DOCKER_CONFIG: configDir, PATH: `${binDir}${delimiter}${process.env.PATH ?? ''}` };
    const store = await DockerConfigCredentialStore.load({ env });

    const factory = new EndpointFactory({ insecureRegistries: [basic.host] });
    try {
      const image = await makeImage('helper');
      expect(await push(factory, basic.host, store, 'creds/helper', image)).toBe(image.digest);
      expect(await skopeoDigest(basic, `${basic.host}/creds/helper:v1`)).toBe(image.digest);
    } finally {
      await factory.close();
    }
  });

  it('pushes with an auths entry written by mergeDockerConfigAuth; a wrong password fails without showing it', async () => {
    const configPath = join(dir, 'merged', 'config.json');
    await mergeDockerConfigAuth(configPath, basic.host, basic.username, basic.password);
    const factory = new EndpointFactory({ insecureRegistries: [basic.host] });
    try {
      const good = await DockerConfigCredentialStore.load({ configPath });
      const image = await makeImage('merged');
      expect(await push(factory, basic.host, good, 'creds/merged', image)).toBe(image.digest);

      const wrongPassword = `wrong-${randomBytes(6).toString('hex')}`;
      await mergeDockerConfigAuth(configPath, basic.host, basic.username, wrongPassword);
      const bad = await DockerConfigCredentialStore.load({ configPath });
      const error = await push(factory, basic.host, bad, 'creds/merged', await makeImage('bad')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RegistryError);
      expect((error as RegistryError).status).toBe(401);
      const shown = `${(error as Error).message} ${String((error as Error).stack)}`;
      expect(shown).not.toContain(wrongPassword);
      expect(shown).not.toContain(Buffer.from(`${basic.username}:${wrongPassword}`).toString('base64'));
    } finally {
      await factory.close();
    }
  });
});

describe('TLS settings against a registry with its own CA', () => {
  const anonymous: CredentialStore = { get: async () => undefined };

  async function pushWith(options: Partial<TransportOptions>, repository: string): Promise<string | unknown> {
    const factory = new EndpointFactory(options);
    try {
      const image = await makeImage(repository);
      return await push(factory, tls.host, anonymous, repository, image).then((digest) => {
        expect(digest).toBe(image.digest);
        return digest;
      });
    } catch (error) {
      return error;
    } finally {
      await factory.close();
    }
  }

  it('fails certificate verification by default', async () => {
    const error = await pushWith({}, 'tls/default');
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as Error).message).toMatch(/certificate|self[- ]signed|verify/i);
  });

  it('trusts the CA from --registry-certificate', async () => {
    const digest = await pushWith({ registryCertificates: { [tls.host]: join(tls.certDir!, 'ca.crt') } }, 'tls/ca');
    expect(digest).toMatch(/^sha256:/);
    expect(await skopeoDigest(tls, `${tls.host}/tls/ca:v1`)).toBe(digest);
  });

  it('skips verification for --skip-tls-verify-registry, and for --skip-tls-verify on pushes', async () => {
    expect(await pushWith({ skipTlsVerifyRegistries: [tls.host] }, 'tls/skip-registry')).toMatch(/^sha256:/);
    expect(await pushWith({ skipTlsVerify: true }, 'tls/skip-all')).toMatch(/^sha256:/);
    // --skip-tls-verify-pull is for pulls only.
    expect(await pushWith({ skipTlsVerifyPull: true }, 'tls/skip-pull')).toBeInstanceOf(RegistryError);
  });
});
