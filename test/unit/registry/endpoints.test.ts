import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EndpointFactory,
  FlagValueError,
  TlsFileError,
  defaultTransportOptions,
  parseRegistryCertificates,
  parseRegistryClientCerts,
  parseRegistryMaps,
  parseRegistryMirrors,
  planEndpoints,
  type TlsMaterial,
  type TransportOptions,
} from '../../../src/registry/endpoints.js';

const opts = (o: Partial<TransportOptions>): TransportOptions => ({ ...defaultTransportOptions, ...o });
const summary = (registry: string, direction: 'pull' | 'push', o: Partial<TransportOptions>) =>
  planEndpoints(registry, direction, opts(o)).map((p) => `${p.source} ${p.scheme}://${p.apiHost}/${p.pathPrefix} as ${p.registry}`);

describe('flag value parsers', () => {
  it('parses --registry-certificate host=path, later values winning', () => {
    expect(parseRegistryCertificates(['my.reg:5000=/certs/ca.pem', 'other=/a=b.pem', 'my.reg:5000=/certs/new.pem'])).toEqual({
      'my.reg:5000': '/certs/new.pem',
      other: '/a=b.pem',
    });
    for (const bad of ['my.reg', '=/ca.pem', 'my.reg=']) {
      expect(() => parseRegistryCertificates([bad])).toThrow(FlagValueError);
    }
    expect(() => parseRegistryCertificates(['my.reg'])).toThrow('invalid --registry-certificate value "my.reg": expected my.registry.url=/path/to/ca.pem');
  });

  it('parses --registry-client-cert host=cert,key', () => {
    expect(parseRegistryClientCerts(['my.reg=/c.pem,/k.pem'])).toEqual({ 'my.reg': { cert: '/c.pem', key: '/k.pem' } });
    for (const bad of ['my.reg=/c.pem', 'my.reg=/c.pem,', 'my.reg=/a,/b,/c', 'my.reg']) {
      expect(() => parseRegistryClientCerts([bad])).toThrow(/invalid --registry-client-cert value/);
    }
  });

  it("parses --registry-map 'a=b;c=d', repeatable, accumulating targets in order; empty is nothing", () => {
    expect(
      parseRegistryMaps([
        'index.docker.io=mirror.example.com/dockerhub;quay.io=quay-mirror.example.com',
        '',
        'index.docker.io=second.example.com:5000',
      ]),
    ).toEqual({
      'index.docker.io': ['mirror.example.com/dockerhub', 'second.example.com:5000'],
      'quay.io': ['quay-mirror.example.com'],
    });
    expect(() => parseRegistryMaps(['quay.io'])).toThrow(/invalid --registry-map value "quay.io": expected/);
    expect(() => parseRegistryMaps(['quay.io=mirror;bad'])).toThrow(/value "bad"/);
    expect(() => parseRegistryMaps(['quay.io=not a host'])).toThrow(/is not a registry host/);
    expect(() => parseRegistryMaps(['quay.io=ftp://x'])).toThrow(/only http:\/\/ or https:\/\//);
  });

  it('validates mirrors', () => {
    expect(parseRegistryMirrors(['mirror.gcr.io', ' ', 'https://m.example.com/hub'])).toEqual(['mirror.gcr.io', 'https://m.example.com/hub']);
    expect(() => parseRegistryMirrors(['mirror.gcr.io/UPPER'])).toThrow(/not a repository path prefix/);
  });
});

describe('planEndpoints', () => {
  it('sends Docker Hub to registry-1.docker.io over HTTPS', () => {
    expect(summary('docker.io', 'pull', {})).toEqual(['registry https://registry-1.docker.io/ as docker.io']);
    expect(summary('index.docker.io', 'push', {})).toEqual(['registry https://registry-1.docker.io/ as docker.io']);
    expect(summary('ghcr.io', 'pull', {})).toEqual(['registry https://ghcr.io/ as ghcr.io']);
  });

  it('pulls try maps, then mirrors (Docker Hub only), then the registry; pushes only the registry', () => {
    const o = {
      registryMaps: { 'index.docker.io': ['map.example.com/dockerhub'], 'quay.io': ['quay-map.example.com:5000/q/'] },
      registryMirrors: ['mirror.gcr.io', 'mirror2.example.com/hub'],
    };
    expect(summary('docker.io', 'pull', o)).toEqual([
      'registry-map https://map.example.com/dockerhub/ as map.example.com',
      'registry-mirror https://mirror.gcr.io/ as mirror.gcr.io',
      'registry-mirror https://mirror2.example.com/hub/ as mirror2.example.com',
      'registry https://registry-1.docker.io/ as docker.io',
    ]);
    expect(summary('quay.io', 'pull', o)).toEqual([
      'registry-map https://quay-map.example.com:5000/q/ as quay-map.example.com:5000',
      'registry https://quay.io/ as quay.io',
    ]);
    expect(summary('ghcr.io', 'pull', o)).toEqual(['registry https://ghcr.io/ as ghcr.io']);
    expect(summary('docker.io', 'push', o)).toEqual(['registry https://registry-1.docker.io/ as docker.io']);
  });

  it('skipDefaultRegistryFallback drops the registry only when there were candidates', () => {
    const o = { registryMirrors: ['mirror.gcr.io'], skipDefaultRegistryFallback: true };
    expect(summary('docker.io', 'pull', o)).toEqual(['registry-mirror https://mirror.gcr.io/ as mirror.gcr.io']);
    expect(summary('ghcr.io', 'pull', o)).toEqual(['registry https://ghcr.io/ as ghcr.io']);
    expect(summary('docker.io', 'push', o)).toEqual(['registry https://registry-1.docker.io/ as docker.io']);
  });

  it('--insecure is for pushes, --insecure-pull for pulls, --insecure-registry for both (also mirrors)', () => {
    expect(summary('reg.example.com', 'push', { insecure: true })).toEqual(['registry http://reg.example.com/ as reg.example.com']);
    expect(summary('reg.example.com', 'pull', { insecure: true })).toEqual(['registry https://reg.example.com/ as reg.example.com']);
    expect(summary('reg.example.com', 'pull', { insecurePull: true })).toEqual(['registry http://reg.example.com/ as reg.example.com']);
    expect(summary('reg.example.com', 'push', { insecurePull: true })).toEqual(['registry https://reg.example.com/ as reg.example.com']);
    const perHost = { insecureRegistries: ['REG.example.com', 'mirror.local:5000'], registryMirrors: ['mirror.local:5000'] };
    expect(summary('reg.example.com', 'push', perHost)).toEqual(['registry http://reg.example.com/ as reg.example.com']);
    expect(summary('reg.example.com', 'pull', perHost)).toEqual(['registry http://reg.example.com/ as reg.example.com']);
    expect(summary('docker.io', 'pull', perHost)).toEqual([
      'registry-mirror http://mirror.local:5000/ as mirror.local:5000',
      'registry https://registry-1.docker.io/ as docker.io',
    ]);
    expect(summary('docker.io', 'pull', { registryMirrors: ['http://m.example.com'] })[0]).toBe(
      'registry-mirror http://m.example.com/ as m.example.com',
    );
  });

  it('--skip-tls-verify* keeps HTTPS without verification and drops the host CA', () => {
    const tls = (registry: string, direction: 'pull' | 'push', o: Partial<TransportOptions>) =>
      planEndpoints(registry, direction, opts(o))[0]?.tls;
    expect(tls('r.example.com', 'push', { skipTlsVerify: true })?.rejectUnauthorized).toBe(false);
    expect(tls('r.example.com', 'pull', { skipTlsVerify: true })?.rejectUnauthorized).toBe(true);
    expect(tls('r.example.com', 'pull', { skipTlsVerifyPull: true })?.rejectUnauthorized).toBe(false);
    expect(tls('r.example.com', 'push', { skipTlsVerifyPull: true })?.rejectUnauthorized).toBe(true);
    expect(tls('r.example.com', 'pull', { skipTlsVerifyRegistries: ['r.example.com'] })?.rejectUnauthorized).toBe(false);
    expect(tls('r.example.com', 'push', { registryCertificates: { 'r.example.com': '/ca.pem' } })).toEqual({
      rejectUnauthorized: true,
      caPath: '/ca.pem',
      clientCert: undefined,
    });
    expect(
      tls('r.example.com', 'push', {
        registryCertificates: { 'r.example.com': '/ca.pem' },
        skipTlsVerifyRegistries: ['r.example.com'],
        registryClientCerts: { 'r.example.com': { cert: '/c', key: '/k' } },
      }),
    ).toEqual({ rejectUnauthorized: false, caPath: undefined, clientCert: { cert: '/c', key: '/k' } });
    expect(tls('docker.io', 'pull', { skipTlsVerifyRegistries: ['index.docker.io'] })?.rejectUnauthorized).toBe(false);
  });

  it('offers a plain-HTTP fallback only for loopback/private hosts with no TLS flag naming them', () => {
    const fallback = (registry: string, o: Partial<TransportOptions> = {}) => planEndpoints(registry, 'push', opts(o))[0]?.plainHttpFallback;
    expect(fallback('127.0.0.1:5000')).toBe(true);
    expect(fallback('localhost:5000')).toBe(true);
    expect(fallback('[::1]:5000')).toBe(true);
    expect(fallback('192.168.1.4:5000')).toBe(true);
    expect(fallback('ghcr.io')).toBe(false);
    expect(fallback('172.32.0.1')).toBe(false);
    expect(fallback('127.0.0.1:5000', { registryCertificates: { '127.0.0.1:5000': '/ca.pem' } })).toBe(false);
    expect(fallback('127.0.0.1:5000', { insecure: true })).toBe(false);
  });
});

// --- Real TLS: a CA, a server certificate and a client certificate made with openssl. ---

const run = promisify(execFile);
let dir: string;
let server: Server;
let port: number;
const seen: { authorized: boolean }[] = [];

async function openssl(...args: string[]): Promise<void> {
  await run('openssl', args, { cwd: dir });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-endpoints-'));
  await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=kiln test CA');
  await writeFile(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  await openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'san.ext', '-out', 'server.pem');
  await openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=kiln client');
  await openssl('x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-out', 'client.pem');
  await openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other.key', '-out', 'other.csr', '-subj', '/CN=other');

  server = createServer(
    {
      key: await readFile(join(dir, 'server.key')),
      cert: await readFile(join(dir, 'server.pem')),
      ca: await readFile(join(dir, 'ca.pem')),
      requestCert: true,
      rejectUnauthorized: false,
    },
    (req, res) => {
      seen.push({ authorized: (req.socket as TLSSocket).authorized });
      res.setHeader('content-type', 'application/json');
      res.end('{}');
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
}, 60_000);

afterAll(async () => {
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

async function ping(factory: EndpointFactory, registry: string): Promise<number> {
  const [endpoint] = factory.resolveEndpoints(registry, 'push');
  if (!endpoint) throw new Error('no endpoint');
  const response = await request(`${endpoint.scheme}://${endpoint.apiHost}/v2/`, { dispatcher: endpoint.dispatcher });
  await response.body.dump();
  return response.statusCode;
}

describe('EndpointFactory over real TLS', () => {
  it('fails verification without the CA, succeeds with --registry-certificate or --skip-tls-verify', async () => {
    const host = `127.0.0.1:${port}`;
    const plain = new EndpointFactory();
    await expect(ping(plain, host)).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
    await plain.close();

    const withCa = new EndpointFactory({ registryCertificates: { [host]: join(dir, 'ca.pem') } });
    expect(await ping(withCa, host)).toBe(200);
    await withCa.close();

    const skip = new EndpointFactory({ skipTlsVerifyRegistries: [host] });
    expect(await ping(skip, host)).toBe(200);
    await skip.close();
  });

  it('presents the client certificate for --registry-client-cert', async () => {
    const host = `127.0.0.1:${port}`;
    seen.length = 0;
    const factory = new EndpointFactory({
      registryCertificates: { [host]: join(dir, 'ca.pem') },
      registryClientCerts: { [host]: { cert: join(dir, 'client.pem'), key: join(dir, 'client.key') } },
    });
    expect(await ping(factory, host)).toBe(200);
    await factory.close();
    const noCert = new EndpointFactory({ registryCertificates: { [host]: join(dir, 'ca.pem') } });
    expect(await ping(noCert, host)).toBe(200);
    await noCert.close();
    expect(seen).toEqual([{ authorized: true }, { authorized: false }]);
  });

  it('creates one dispatcher per (apiHost, TLS settings) and reuses it', async () => {
    const made: TlsMaterial[] = [];
    const agents: Agent[] = [];
    const factory = new EndpointFactory(
      { registryMirrors: ['mirror.example.com'], skipTlsVerifyRegistries: ['mirror.example.com'] },
      {
        createDispatcher: (tls) => {
          made.push(tls);
          const agent = new Agent();
          agents.push(agent);
          return agent;
        },
      },
    );
    const a = factory.resolveEndpoints('docker.io', 'pull');
    const b = factory.resolveEndpoints('index.docker.io', 'pull');
    const c = factory.resolveEndpoints('docker.io', 'push');
    expect(a.map((e) => e.apiHost)).toEqual(['mirror.example.com', 'registry-1.docker.io']);
    expect(b[0]?.dispatcher).toBe(a[0]?.dispatcher);
    expect(b[1]?.dispatcher).toBe(a[1]?.dispatcher);
    expect(c[0]?.dispatcher).toBe(a[1]?.dispatcher);
    expect(a[0]?.dispatcher).not.toBe(a[1]?.dispatcher);
    expect(made.map((t) => t.rejectUnauthorized)).toEqual([false, true]);
    await factory.close();
    expect(agents.map((agent) => agent.closed)).toEqual([true, true]);
    expect(() => factory.resolveEndpoints('docker.io', 'pull')).toThrow(/after close/);
  });

  it('names the flag and the path of an unreadable or unusable file', () => {
    const missing = join(dir, 'missing.pem');
    expect(() => new EndpointFactory({ registryCertificates: { 'r.example.com': missing } })).toThrow(
      `--registry-certificate r.example.com: ${missing}: cannot be read (ENOENT)`,
    );
    expect(() => new EndpointFactory({ registryCertificates: { 'r.example.com': join(dir, 'san.ext') } })).toThrow(
      /--registry-certificate r\.example\.com: .*san\.ext: holds no PEM certificate/,
    );
    expect(
      () => new EndpointFactory({ registryClientCerts: { 'r.example.com': { cert: join(dir, 'client.pem'), key: missing } } }),
    ).toThrow(TlsFileError);
    const mismatched = () =>
      new EndpointFactory({ registryClientCerts: { 'r.example.com': { cert: join(dir, 'client.pem'), key: join(dir, 'other.key') } } });
    expect(mismatched).toThrow(/--registry-client-cert r\.example\.com: .*client\.pem,.*other\.key: not usable/);
    expect(() => new EndpointFactory({ registryMirrors: ['bad host'] })).toThrow(FlagValueError);
  });
});
