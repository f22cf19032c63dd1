import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CredentialHelperError,
  DockerConfigCredentialStore,
  DockerConfigError,
  dockerConfigKeyFor,
  dockerConfigPath,
  mergeDockerConfigAuth,
  normalizeRegistryKey,
} from '../../../src/registry/credentials.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

let dir: string;
let binDir: string;
let env: NodeJS.ProcessEnv;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-creds-'));
  binDir = join(dir, 'bin');
  await mkdir(binDir);
  env = { ...process.env, DOCKER_CONFIG: dir, PATH: `${binDir}${delimiter}${process.env.PATH ?? ''}`, KILNTEST_LOG: join(dir, 'helper.log') };
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeConfig(config: unknown): Promise<void> {
  await writeFile(join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
}

/**
 * A real credential helper: a shell script on PATH that logs the host it was asked about and
 * answers per host the way docker-credential-helpers do.
 */
async function installHelper(name = 'kilntest', body?: string): Promise<void> {
  const script =
    body ??
    `#!/bin/sh
[ "$1" = get ] || { echo "unknown command $1" >&2; exit 2; }
read -r host
echo "$host" >> "$KILNTEST_LOG"
case "$host" in
  helped.example.com) printf '{"ServerURL":"%s","Username":"helperuser","Secret":"helper-secret-1"}' "$host" ;;
  https://index.docker.io/v1/) printf '{"ServerURL":"%s","Username":"hubuser","Secret":"hub-secret-2"}' "$host" ;;
  token.example.com) printf '{"ServerURL":"%s","Username":"<token>","Secret":"refresh-secret-3"}' "$host" ;;
  broken.example.com) echo "keychain locked: cannot unlock" >&2; exit 1 ;;
  garbage.example.com) echo "not json and garbage-secret-4" ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`;
  const path = join(binDir, `docker-credential-${name}`);
  await writeFile(path, script);
  await chmod(path, 0o755);
}

async function helperCalls(): Promise<string[]> {
  try {
    return (await readFile(join(dir, 'helper.log'), 'utf8')).split('\n').filter(Boolean);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

describe('key matching', () => {
  it('normalises schemes, API path suffixes, case and Docker Hub aliases', () => {
    expect(normalizeRegistryKey('https://index.docker.io/v1/')).toBe('index.docker.io');
    expect(normalizeRegistryKey('docker.io')).toBe('index.docker.io');
    expect(normalizeRegistryKey('registry-1.docker.io')).toBe('index.docker.io');
    expect(normalizeRegistryKey('https://GHCR.io/v2/')).toBe('ghcr.io');
    expect(normalizeRegistryKey('http://127.0.0.1:5000')).toBe('127.0.0.1:5000');
    expect(normalizeRegistryKey('quay.io')).toBe('quay.io');
    expect(dockerConfigKeyFor('docker.io')).toBe('https://index.docker.io/v1/');
    expect(dockerConfigKeyFor('ghcr.io')).toBe('ghcr.io');
  });

  it('finds config.json in DOCKER_CONFIG, else in ~/.docker', () => {
    expect(dockerConfigPath({ DOCKER_CONFIG: '/kaniko/.docker/' }, '/root')).toBe('/kaniko/.docker/config.json');
    expect(dockerConfigPath({}, '/home/me')).toBe('/home/me/.docker/config.json');
  });
});

describe('auths entries', () => {
  it('decodes auth, username/password, identitytoken and registrytoken', async () => {
    await writeConfig({
      auths: {
        'https://index.docker.io/v1/': { auth: b64('hubuser:hub:pass') },
        'https://ghcr.io/v2/': { username: 'gh', password: 'ghpass' },
        'http://127.0.0.1:5000': { auth: b64('local:localpass') },
        'id.example.com': { identitytoken: 'idtok' },
        'reg.example.com': { registrytoken: 'regtok', auth: b64('ignored:ignored') },
        'empty.example.com': {},
      },
    });
    const store = await DockerConfigCredentialStore.load({ env });
    expect(store.configPath).toBe(join(dir, 'config.json'));
    // A password may itself contain colons: only the first one splits.
    expect(await store.get('docker.io')).toEqual({ kind: 'basic', username: 'hubuser', password: 'hub:pass' });
    expect(await store.get('index.docker.io')).toEqual({ kind: 'basic', username: 'hubuser', password: 'hub:pass' });
    expect(await store.get('registry-1.docker.io')).toEqual({ kind: 'basic', username: 'hubuser', password: 'hub:pass' });
    expect(await store.get('ghcr.io')).toEqual({ kind: 'basic', username: 'gh', password: 'ghpass' });
    expect(await store.get('127.0.0.1:5000')).toEqual({ kind: 'basic', username: 'local', password: 'localpass' });
    expect(await store.get('id.example.com')).toEqual({ kind: 'identityToken', token: 'idtok' });
    expect(await store.get('reg.example.com')).toEqual({ kind: 'registryToken', token: 'regtok' });
    expect(await store.get('empty.example.com')).toBeUndefined();
    expect(await store.get('127.0.0.1:5001')).toBeUndefined();
    expect(await store.get('quay.io')).toBeUndefined();
  });

  it('does not show secrets when the store itself is printed or serialised', async () => {
    await writeConfig({ auths: { 'ghcr.io': { auth: b64('gh:printed-secret-10') }, 'id.example.com': { identitytoken: 'printed-token-11' } } });
    const store = await DockerConfigCredentialStore.load({ env });
    for (const shown of [inspect(store, { depth: 10, showHidden: true }), JSON.stringify(store), String(store)]) {
      expect(shown).not.toContain('printed-secret-10');
      expect(shown).not.toContain(b64('gh:printed-secret-10'));
      expect(shown).not.toContain('printed-token-11');
    }
  });

  it('prefers the exact key over one that only normalises to the host', async () => {
    await writeConfig({
      auths: {
        'https://myreg.example.com/v1/': { auth: b64('old:oldpass') },
        'myreg.example.com': { auth: b64('new:newpass') },
      },
    });
    const store = await DockerConfigCredentialStore.load({ env });
    expect(await store.get('myreg.example.com')).toEqual({ kind: 'basic', username: 'new', password: 'newpass' });
  });

  it('treats a missing config as no credentials', async () => {
    const store = await DockerConfigCredentialStore.load({ env });
    expect(await store.get('docker.io')).toBeUndefined();
  });

  it('names the file for invalid JSON without quoting its content', async () => {
    await writeConfig('{"auths": {"x": {"auth": "c2VjcmV0LXZhbHVlLTk="}},,}');
    const error = await DockerConfigCredentialStore.load({ env }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DockerConfigError);
    expect((error as Error).message).toContain(join(dir, 'config.json'));
    expect((error as Error).message).toContain('not valid JSON');
    expect((error as Error).message).not.toContain('c2VjcmV0');
  });

  it('rejects wrongly typed fields and an undecodable auth, naming the key but not the secret', async () => {
    await writeConfig({ auths: { 'bad.example.com': { auth: b64('nocolon-secret-5') } } });
    const store = await DockerConfigCredentialStore.load({ env });
    const error = await store.get('bad.example.com').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DockerConfigError);
    expect((error as Error).message).toMatch(/bad\.example\.com.*not base64 of user:password/);
    expect((error as Error).message).not.toContain('nocolon-secret-5');
    expect((error as Error).message).not.toContain(b64('nocolon-secret-5'));

    await writeConfig({ auths: { 'x.example.com': { password: 42 } } });
    await expect(DockerConfigCredentialStore.load({ env })).rejects.toThrow(/field "password" is not a string/);
    await writeConfig({ auths: [] });
    await expect(DockerConfigCredentialStore.load({ env })).rejects.toThrow(/"auths" is not an object/);
    await writeConfig({ credsStore: '../../bin/sh' });
    await expect(DockerConfigCredentialStore.load({ env })).rejects.toThrow(/"credsStore" is not a helper name/);
  });
});

describe('credential helpers (a real helper on PATH)', () => {
  it('asks the credHelpers helper for its host, passing Docker Hub as its v1 key', async () => {
    await installHelper();
    await writeConfig({
      credHelpers: { 'helped.example.com': 'kilntest', 'docker.io': 'kilntest', 'token.example.com': 'kilntest' },
      auths: { 'other.example.com': { auth: b64('o:opass') } },
    });
    const store = await DockerConfigCredentialStore.load({ env });
    expect(await store.get('helped.example.com')).toEqual({ kind: 'basic', username: 'helperuser', password: 'helper-secret-1' });
    expect(await store.get('docker.io')).toEqual({ kind: 'basic', username: 'hubuser', password: 'hub-secret-2' });
    expect(await store.get('token.example.com')).toEqual({ kind: 'identityToken', token: 'refresh-secret-3' });
    // A host without a helper entry and without credsStore reads auths and never runs a helper.
    expect(await store.get('other.example.com')).toEqual({ kind: 'basic', username: 'o', password: 'opass' });
    // Asked again, the store answers from what the helper said before.
    expect(await store.get('helped.example.com')).toEqual({ kind: 'basic', username: 'helperuser', password: 'helper-secret-1' });
    expect(await store.get('index.docker.io')).toEqual({ kind: 'basic', username: 'hubuser', password: 'hub-secret-2' });
    expect(await helperCalls()).toEqual(['helped.example.com', 'https://index.docker.io/v1/', 'token.example.com']);
  });

  it('uses credsStore for every host; "credentials not found" means none (or the auths entry)', async () => {
    await installHelper();
    await writeConfig({ credsStore: 'kilntest', auths: { 'fallback.example.com': { auth: b64('f:fpass') } } });
    const store = await DockerConfigCredentialStore.load({ env });
    expect(await store.get('helped.example.com')).toEqual({ kind: 'basic', username: 'helperuser', password: 'helper-secret-1' });
    expect(await store.get('unknown.example.com')).toBeUndefined();
    expect(await store.get('fallback.example.com')).toEqual({ kind: 'basic', username: 'f', password: 'fpass' });
    expect(await helperCalls()).toEqual(['helped.example.com', 'unknown.example.com', 'fallback.example.com']);
  });

  it('credHelpers wins over credsStore', async () => {
    await installHelper();
    await installHelper('other', '#!/bin/sh\necho "other helper ran" >&2; exit 1\n');
    await writeConfig({ credsStore: 'other', credHelpers: { 'helped.example.com': 'kilntest' } });
    const store = await DockerConfigCredentialStore.load({ env });
    expect(await store.get('helped.example.com')).toEqual({ kind: 'basic', username: 'helperuser', password: 'helper-secret-1' });
    await expect(store.get('elsewhere.example.com')).rejects.toThrow(/docker-credential-other.*other helper ran/);
  });

  it('reports a failing, missing, garbling or hanging helper without leaking what it printed on stdout', async () => {
    await installHelper();
    await writeConfig({
      credHelpers: { 'broken.example.com': 'kilntest', 'garbage.example.com': 'kilntest', 'gone.example.com': 'absent', 'slow.example.com': 'slow' },
    });
    await installHelper('slow', '#!/bin/sh\nexec sleep 30\n');
    const store = await DockerConfigCredentialStore.load({ env });

    const broken = await store.get('broken.example.com').catch((e: unknown) => e);
    expect(broken).toBeInstanceOf(CredentialHelperError);
    expect((broken as Error).message).toContain('docker-credential-kilntest for broken.example.com: exited with status 1: keychain locked');

    const garbage = await store.get('garbage.example.com').catch((e: unknown) => e);
    expect(garbage).toBeInstanceOf(CredentialHelperError);
    expect((garbage as Error).message).toContain('not JSON');
    expect((garbage as Error).message).not.toContain('garbage-secret-4');

    await expect(store.get('gone.example.com')).rejects.toThrow(/docker-credential-absent is not on PATH/);
    // Failures are not remembered: the next call runs the helper again.
    await expect(store.get('broken.example.com')).rejects.toThrow(/keychain locked/);
    expect((await helperCalls()).filter((h) => h === 'broken.example.com')).toHaveLength(2);
    const impatient = await DockerConfigCredentialStore.load({ env, helperTimeoutMs: 300 });
    await expect(impatient.get('slow.example.com')).rejects.toThrow(/did not answer within 300 ms/);
  });
});

describe('mergeDockerConfigAuth', () => {
  it('adds an entry to an existing config, keeps the rest, and writes 0600 atomically', async () => {
    const path = join(dir, 'config.json');
    await writeFile(
      path,
      JSON.stringify({
        auths: { 'ghcr.io': { auth: b64('a:b') }, 'https://quay.io/v1/': { auth: b64('old:old') } },
        credHelpers: { 'quay.io': 'ecr-login', 'gcr.io': 'gcloud' },
        proxies: { default: { httpProxy: 'http://proxy:3128' } },
      }),
      { mode: 0o644 },
    );
    await mergeDockerConfigAuth(path, 'quay.io', 'robot', 'robot-secret-6');
    await mergeDockerConfigAuth(path, 'docker.io', 'hub', 'hub-secret-7');

    const written = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    expect(written).toEqual({
      auths: {
        'ghcr.io': { auth: b64('a:b') },
        'quay.io': { auth: b64('robot:robot-secret-6') },
        'https://index.docker.io/v1/': { auth: b64('hub:hub-secret-7') },
      },
      credHelpers: { 'gcr.io': 'gcloud' },
      proxies: { default: { httpProxy: 'http://proxy:3128' } },
    });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['bin', 'config.json']);

    const store = await DockerConfigCredentialStore.load({ env });
    expect(await store.get('quay.io')).toEqual({ kind: 'basic', username: 'robot', password: 'robot-secret-6' });
    expect(await store.get('docker.io')).toEqual({ kind: 'basic', username: 'hub', password: 'hub-secret-7' });
  });

  it('creates the file and its directory when missing', async () => {
    const path = join(dir, 'fresh', '.docker', 'config.json');
    await mergeDockerConfigAuth(path, '127.0.0.1:5000', 'u', 'p');
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ auths: { '127.0.0.1:5000': { auth: b64('u:p') } } });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('refuses to overwrite a config it cannot parse, naming the file and not the secret', async () => {
    const path = join(dir, 'config.json');
    await writeFile(path, '{ not json');
    const error = await mergeDockerConfigAuth(path, 'ghcr.io', 'u', 'merge-secret-8').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DockerConfigError);
    expect((error as Error).message).toContain(path);
    expect((error as Error).message).not.toContain('merge-secret-8');
    expect(await readFile(path, 'utf8')).toBe('{ not json');
  });
});
