/**
 * Starts a real CNCF distribution registry (`/usr/bin/docker-registry serve CONFIG`, Debian's
 * docker-registry 2.8) on 127.0.0.1 and a free port, in one of four modes, with its own config,
 * storage and log under a fresh temporary directory that stop() removes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import type { RegistryEndpoint } from '../../src/registry/types.js';
import { runTool } from './process.js';
import { startTokenServer, type TokenServer, type TokenServerOptions } from './token-server.js';

export type RegistryMode = 'plain' | 'basic' | 'tls' | 'token';

export interface StartRegistryOptions {
  /** For basic and token modes; a random password by default. */
  username?: string;
  password?: string;
  /** Token mode: passed to the token server. */
  token?: Pick<TokenServerOptions, 'lifetimeSeconds' | 'refreshTokens'>;
  /**
   * Serve blob GETs from a separate plain-HTTP "CDN" on another port, as cloud-backed registries
   * do: the registry answers 307 to it (distribution's `redirect` storage middleware).
   */
  blobCdn?: boolean;
}

export interface BlobCdn {
  url: string;
  /** What the CDN was asked, and whether the request carried an Authorization header. */
  readonly requests: { path: string; hadAuthorization: boolean; status: number }[];
}

export interface TestRegistry {
  mode: RegistryMode;
  /** `127.0.0.1:PORT`, as written in image references. */
  host: string;
  /** `http(s)://127.0.0.1:PORT` */
  url: string;
  username: string;
  password: string;
  /** TLS mode: the CA certificate (PEM) and a directory holding it as `ca.crt` (skopeo's --cert-dir). */
  caCert?: string;
  certDir?: string;
  tokenServer?: TokenServer;
  blobCdn?: BlobCdn;
  /** An endpoint for this registry, with one undici Agent (closed by stop()). */
  endpoint: RegistryEndpoint;
  /** skopeo flags to read from / write to this registry (TLS trust and credentials). */
  skopeoSrcArgs(): string[];
  skopeoDestArgs(): string[];
  /** The registry's log so far (access lines show each request). */
  readLog(): Promise<string>;
  stop(): Promise<void>;
}

const registryBinary = '/usr/bin/docker-registry';

export async function startRegistry(mode: RegistryMode, options: StartRegistryOptions = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-registry-'));
  const username = options.username ?? 'kiln-user';
  const password = options.password ?? `pw-${randomBytes(9).toString('base64url')}`;
  const cleanups: (() => Promise<void>)[] = [() => rm(dir, { recursive: true, force: true })];
  const cleanup = async (): Promise<void> => {
    for (const step of cleanups.reverse()) await step();
  };
  try {
    let tokenServer: TokenServer | undefined;
    let caCert: string | undefined;
    let certDir: string | undefined;
    const config: Record<string, unknown> = {
      version: 0.1,
      log: { level: 'info', accesslog: { disabled: false } },
      storage: {
        filesystem: { rootdirectory: path.join(dir, 'data') },
        delete: { enabled: true },
        cache: { blobdescriptor: 'inmemory' },
      },
    };
    const http: Record<string, unknown> = { headers: { 'X-Content-Type-Options': ['nosniff'] } };

    if (mode === 'basic') {
      // distribution accepts bcrypt entries only.
      const { stdout } = await runTool('htpasswd', ['-Bbn', username, password]);
      await writeFile(path.join(dir, 'htpasswd'), stdout);
      config.auth = { htpasswd: { realm: 'kiln-test', path: path.join(dir, 'htpasswd') } };
    }
    if (mode === 'token') {
      tokenServer = await startTokenServer({ dir, users: { [username]: password }, ...options.token });
      const server = tokenServer;
      cleanups.push(() => server.stop());
      config.auth = {
        token: {
          realm: tokenServer.realm,
          service: tokenServer.service,
          issuer: tokenServer.issuer,
          rootcertbundle: tokenServer.rootCertBundle,
        },
      };
    }
    if (mode === 'tls') {
      const tls = await makeTlsFiles(dir);
      caCert = tls.caPem;
      certDir = tls.certDir;
      http.tls = { certificate: tls.certPath, key: tls.keyPath };
    }
    let blobCdn: BlobCdn | undefined;
    if (options.blobCdn) {
      const cdn = await startBlobCdn(path.join(dir, 'data'));
      cleanups.push(() => cdn.stop());
      blobCdn = cdn;
      config.middleware = { storage: [{ name: 'redirect', options: { baseurl: `${cdn.url}/` } }] };
    }
    const scheme = mode === 'tls' ? 'https' : 'http';
    const agent = new Agent(caCert ? { connect: { ca: caCert } } : {});
    cleanups.push(() => agent.close());

    const logPath = path.join(dir, 'registry.log');
    const configPath = path.join(dir, 'config.yml');
    let child: ChildProcess | undefined;
    let port = 0;
    // A free port found by binding 0 can be taken by someone else before the registry binds it.
    for (let tries = 0; tries < 3 && child === undefined; tries++) {
      port = await freePort();
      await writeFile(configPath, stringify({ ...config, http: { ...http, addr: `127.0.0.1:${port}` } }));
      const started = await spawnRegistry(configPath, logPath);
      const up = await waitUntilServing(`${scheme}://127.0.0.1:${port}/v2/`, agent, started);
      if (up) child = started.child;
      else await started.kill();
    }
    if (!child) throw new Error(`the registry did not start; log:\n${await readFile(logPath, 'utf8').catch(() => '')}`);
    const running = child;
    cleanups.push(() => killChild(running));

    const host = `127.0.0.1:${port}`;
    const credsArgs = mode === 'basic' || mode === 'token' ? [`${username}:${password}`] : [];
    return {
      mode,
      host,
      url: `${scheme}://${host}`,
      username,
      password,
      ...(caCert ? { caCert } : {}),
      ...(certDir ? { certDir } : {}),
      ...(tokenServer ? { tokenServer } : {}),
      ...(blobCdn ? { blobCdn } : {}),
      endpoint: { registry: host, apiHost: host, scheme, dispatcher: agent },
      skopeoSrcArgs: () => [
        ...(certDir ? [`--src-cert-dir=${certDir}`] : ['--src-tls-verify=false']),
        ...credsArgs.map((c) => `--src-creds=${c}`),
      ],
      skopeoDestArgs: () => [
        ...(certDir ? [`--dest-cert-dir=${certDir}`] : ['--dest-tls-verify=false']),
        ...credsArgs.map((c) => `--dest-creds=${c}`),
      ],
      readLog: () => readFile(logPath, 'utf8'),
      stop: cleanup,
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

interface StartedRegistry {
  child: ChildProcess;
  exited: Promise<void>;
  kill(): Promise<void>;
}

async function spawnRegistry(configPath: string, logPath: string): Promise<StartedRegistry> {
  const log = createWriteStream(logPath, { flags: 'a' });
  await new Promise<void>((resolve, reject) => {
    log.once('open', () => resolve());
    log.once('error', reject);
  });
  const child = spawn(registryBinary, ['serve', configPath], { stdio: ['ignore', log, log] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, exited, kill: () => killChild(child) };
}

async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

async function waitUntilServing(url: string, agent: Agent, started: StartedRegistry): Promise<boolean> {
  let exited = false;
  void started.exited.then(() => {
    exited = true;
  });
  for (let i = 0; i < 200 && !exited; i++) {
    try {
      const response = await request(url, { dispatcher: agent });
      await response.body.dump();
      if (response.statusCode === 200 || response.statusCode === 401) return true;
    } catch (error) {
      // Connection refused while the registry starts up; anything else is worth seeing.
      const code = (error as { code?: unknown }).code;
      if (code !== 'ECONNREFUSED' && code !== 'UND_ERR_SOCKET') throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A self-signed CA and a server certificate for 127.0.0.1/localhost signed by it. */
async function makeTlsFiles(dir: string): Promise<{ caPem: string; certDir: string; certPath: string; keyPath: string }> {
  const caKey = path.join(dir, 'ca.key');
  const caCrt = path.join(dir, 'ca.crt');
  const keyPath = path.join(dir, 'server.key');
  const csr = path.join(dir, 'server.csr');
  const certPath = path.join(dir, 'server.crt');
  const ext = path.join(dir, 'server.ext');
  await runTool('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-keyout', caKey, '-out', caCrt, '-subj', '/CN=kiln test CA']);
  await runTool('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', csr, '-subj', '/CN=127.0.0.1']);
  await writeFile(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  await runTool('openssl', ['x509', '-req', '-in', csr, '-CA', caCrt, '-CAkey', caKey, '-CAcreateserial', '-days', '2', '-out', certPath, '-extfile', ext]);
  // skopeo reads every *.crt in --cert-dir as a CA; keep only the CA there.
  const certDir = path.join(dir, 'certs.d');
  await mkdir(certDir, { recursive: true });
  const caPem = await readFile(caCrt, 'utf8');
  await writeFile(path.join(certDir, 'ca.crt'), caPem);
  return { caPem, certDir, certPath, keyPath };
}

/** A static file server over the registry's storage root: the target of its blob redirects. */
async function startBlobCdn(root: string): Promise<BlobCdn & { stop(): Promise<void> }> {
  const requests: BlobCdn['requests'] = [];
  const server = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://cdn.invalid');
    const file = path.join(root, path.normalize(decodeURIComponent(url.pathname)));
    const record = (status: number): void => {
      requests.push({ path: url.pathname, hadAuthorization: req.headers.authorization !== undefined, status });
    };
    if (!file.startsWith(root + path.sep)) {
      record(403);
      res.writeHead(403).end();
      return;
    }
    stat(file).then(
      (info) => {
        record(200);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': info.size });
        createReadStream(file).pipe(res);
      },
      () => {
        record(404);
        res.writeHead(404).end();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
