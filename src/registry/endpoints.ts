/**
 * Where to send a registry's requests and how: kaniko's transport flags applied to one host.
 *
 * kaniko's meanings, kept here:
 * - `--insecure` (pushes), `--insecure-pull` (pulls) and `--insecure-registry R` (both) mean plain
 *   HTTP to that registry.
 * - `--skip-tls-verify` (pushes), `--skip-tls-verify-pull` (pulls) and `--skip-tls-verify-registry R`
 *   (both) mean HTTPS without certificate verification; skipping verification also drops a
 *   `--registry-certificate` CA for that host, as in kaniko.
 * - `--registry-certificate host=path` adds a CA to the default trust; `--registry-client-cert
 *   host=cert,key` presents a client certificate (mTLS).
 * - Pulls try `--registry-map` targets for the image's registry in order, then `--registry-mirror`s
 *   (which kaniko turns into maps for Docker Hub only), then the registry itself unless
 *   `--skip-default-registry-fallback`. A target may carry a path, which becomes a repository prefix.
 *   Pushes never go through maps or mirrors.
 *
 * go-containerregistry (kaniko's client) also tries plain HTTP for loopback and private addresses
 * when HTTPS fails; candidates for such hosts carry `plainHttpFallback` so the client can do the same.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { createSecureContext, rootCertificates } from 'node:tls';
import { Agent, type Dispatcher } from 'undici';
import type { Direction, RegistryEndpoint } from './types.js';

export interface ClientCertificatePaths {
  cert: string;
  key: string;
}

/** kaniko's registry flags, already parsed. Host keys are matched with Docker Hub aliases folded. */
export interface TransportOptions {
  insecure: boolean;
  insecurePull: boolean;
  insecureRegistries: readonly string[];
  skipTlsVerify: boolean;
  skipTlsVerifyPull: boolean;
  skipTlsVerifyRegistries: readonly string[];
  /** host → path of a PEM CA bundle. */
  registryCertificates: Readonly<Record<string, string>>;
  /** host → client certificate and key (PEM). */
  registryClientCerts: Readonly<Record<string, ClientCertificatePaths>>;
  /** Docker Hub mirrors, `host[:port][/prefix]`, tried in order. */
  registryMirrors: readonly string[];
  /** original registry → replacement `host[:port][/prefix]`s, tried in order. */
  registryMaps: Readonly<Record<string, readonly string[]>>;
  skipDefaultRegistryFallback: boolean;
}

export const defaultTransportOptions: TransportOptions = Object.freeze({
  insecure: false,
  insecurePull: false,
  insecureRegistries: [],
  skipTlsVerify: false,
  skipTlsVerifyPull: false,
  skipTlsVerifyRegistries: [],
  registryCertificates: {},
  registryClientCerts: {},
  registryMirrors: [],
  registryMaps: {},
  skipDefaultRegistryFallback: false,
});

// ---------------------------------------------------------------------------------------------
// Errors

/** A flag's value is malformed (`--registry-map foo`). */
export class FlagValueError extends Error {
  readonly flag: string;
  readonly value: string;
  constructor(flag: string, value: string, reason: string) {
    super(`invalid ${flag} value "${value}": ${reason}`);
    this.name = 'FlagValueError';
    this.flag = flag;
    this.value = value;
  }
}

/** A file a TLS flag names cannot be used. */
export class TlsFileError extends Error {
  readonly flag: string;
  readonly host: string;
  readonly path: string;
  constructor(flag: string, host: string, path: string, reason: string, options?: { cause?: unknown }) {
    super(`${flag} ${host}: ${path}: ${reason}`, options);
    this.name = 'TlsFileError';
    this.flag = flag;
    this.host = host;
    this.path = path;
  }
}

// ---------------------------------------------------------------------------------------------
// Flag value parsers

function splitKeyValue(flag: string, value: string, expected: string): [string, string] {
  const eq = value.indexOf('=');
  if (eq < 0) throw new FlagValueError(flag, value, `expected ${expected}`);
  const key = value.slice(0, eq).trim();
  const rest = value.slice(eq + 1).trim();
  if (key === '') throw new FlagValueError(flag, value, `the registry before "=" is empty (expected ${expected})`);
  if (rest === '') throw new FlagValueError(flag, value, `nothing after "=" (expected ${expected})`);
  return [key, rest];
}

/** `--registry-certificate host=path` (repeatable; a later value for a host wins, as in kaniko). */
export function parseRegistryCertificates(values: readonly string[]): Record<string, string> {
  const result: Record<string, string> = {};
  for (const value of values) {
    const [host, path] = splitKeyValue('--registry-certificate', value, 'my.registry.url=/path/to/ca.pem');
    result[host] = path;
  }
  return result;
}

/** `--registry-client-cert host=cert,key` (repeatable). */
export function parseRegistryClientCerts(values: readonly string[]): Record<string, ClientCertificatePaths> {
  const expected = 'my.registry.url=/path/to/cert.pem,/path/to/key.pem';
  const result: Record<string, ClientCertificatePaths> = {};
  for (const value of values) {
    const [host, paths] = splitKeyValue('--registry-client-cert', value, expected);
    const parts = paths.split(',').map((p) => p.trim());
    if (parts.length !== 2 || !parts[0] || !parts[1]) {
      throw new FlagValueError('--registry-client-cert', value, `expected two paths separated by a comma (${expected})`);
    }
    result[host] = { cert: parts[0], key: parts[1] };
  }
  return result;
}

/**
 * `--registry-map 'orig=new;orig2=new2'`, repeatable, targets accumulating per registry in order.
 * An empty value is ignored, as kaniko does, so `--registry-map=$REGISTRY_MAP` works when unset.
 */
export function parseRegistryMaps(values: readonly string[]): Record<string, string[]> {
  const result: Record<string, string[]> = {};
  for (const value of values) {
    if (value.trim() === '') continue;
    for (const pair of value.split(';')) {
      if (pair.trim() === '') continue;
      const [orig, target] = splitKeyValue('--registry-map', pair, "original.registry=new.registry[/prefix][;...]");
      parseTarget('--registry-map', target);
      (result[orig] ??= []).push(target);
    }
  }
  return result;
}

/** `--registry-mirror` values (repeatable); validated, empty ones dropped. */
export function parseRegistryMirrors(values: readonly string[]): string[] {
  const result: string[] = [];
  for (const value of values) {
    const trimmed = value.trim();
    if (trimmed === '') continue;
    parseTarget('--registry-mirror', trimmed);
    result.push(trimmed);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Hosts

const dockerHub = 'docker.io';
const dockerHubApiHost = 'registry-1.docker.io';
const dockerHubAliases: ReadonlySet<string> = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** A registry host as compared between flags and references: lower-case, Docker Hub folded. */
export function canonicalRegistryHost(host: string): string {
  let h = host.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = h.indexOf('/');
  if (slash >= 0) h = h.slice(0, slash);
  h = h.toLowerCase();
  return dockerHubAliases.has(h) ? dockerHub : h;
}

/** The host:port requests go to: Docker Hub's API lives at registry-1.docker.io. */
export function apiHostFor(registry: string): string {
  const canonical = canonicalRegistryHost(registry);
  return canonical === dockerHub ? dockerHubApiHost : canonical;
}

interface ParsedTarget {
  host: string;
  pathPrefix: string;
  scheme: 'http' | 'https' | undefined;
}

const hostPattern = /^(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)(:[0-9]{1,5})?$/i;

/** `host[:port][/prefix]`, optionally with `http://` or `https://` in front. */
function parseTarget(flag: string, target: string): ParsedTarget {
  let rest = target.trim();
  let scheme: ParsedTarget['scheme'];
  const schemeMatch = /^(https?):\/\//i.exec(rest);
  if (schemeMatch) {
    scheme = schemeMatch[1]?.toLowerCase() === 'http' ? 'http' : 'https';
    rest = rest.slice(schemeMatch[0].length);
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(rest)) {
    throw new FlagValueError(flag, target, 'only http:// or https:// may precede the registry host');
  }
  const slash = rest.indexOf('/');
  const host = slash >= 0 ? rest.slice(0, slash) : rest;
  const path = slash >= 0 ? rest.slice(slash + 1).replace(/^\/+|\/+$/g, '') : '';
  if (!hostPattern.test(host)) throw new FlagValueError(flag, target, `"${host}" is not a registry host[:port]`);
  if (path !== '' && !/^[a-z0-9._/-]+$/.test(path)) {
    throw new FlagValueError(flag, target, `"${path}" is not a repository path prefix (lower-case, digits, . _ - /)`);
  }
  return { host: host.toLowerCase(), pathPrefix: path === '' ? '' : `${path}/`, scheme };
}

/** Loopback and private addresses, where go-containerregistry falls back to plain HTTP. */
function isLocalHost(hostPort: string): boolean {
  let host = hostPort;
  if (host.startsWith('[')) host = host.slice(1, host.indexOf(']'));
  else if (host.includes(':')) host = host.slice(0, host.lastIndexOf(':'));
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 6) return host === '::1';
  if (isIP(host) !== 4) return false;
  const [a, b] = host.split('.').map(Number) as [number, number];
  return a === 127 || a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168);
}

// ---------------------------------------------------------------------------------------------
// Planning (pure)

export interface TlsSettings {
  rejectUnauthorized: boolean;
  /** CA bundle added to the default roots (from --registry-certificate). */
  caPath: string | undefined;
  clientCert: ClientCertificatePaths | undefined;
}

/** One candidate, before a dispatcher is attached. */
export interface EndpointPlan {
  /** Host used for credentials and errors: the image's registry, or the map/mirror target. */
  registry: string;
  apiHost: string;
  scheme: 'http' | 'https';
  /** Prepended to the (normalised) repository, e.g. `dockerhub/` + `library/alpine`. */
  pathPrefix: string;
  tls: TlsSettings;
  /** When HTTPS fails to connect, the client may retry over plain HTTP (loopback/private hosts). */
  plainHttpFallback: boolean;
  /** Which flag produced this candidate. */
  source: 'registry-map' | 'registry-mirror' | 'registry';
}

function hostListHas(list: readonly string[], host: string): boolean {
  const wanted = canonicalRegistryHost(host);
  return list.some((entry) => canonicalRegistryHost(entry) === wanted);
}

function hostRecordGet<T>(record: Readonly<Record<string, T>>, host: string): T | undefined {
  const wanted = canonicalRegistryHost(host);
  let found: T | undefined;
  for (const [key, value] of Object.entries(record)) {
    if (canonicalRegistryHost(key) === wanted) found = value;
  }
  return found;
}

function planOne(
  host: string,
  pathPrefix: string,
  explicitScheme: 'http' | 'https' | undefined,
  direction: Direction,
  options: TransportOptions,
  source: EndpointPlan['source'],
): EndpointPlan {
  const registry = canonicalRegistryHost(host);
  const plainHttp =
    (direction === 'pull' ? options.insecurePull : options.insecure) || hostListHas(options.insecureRegistries, registry);
  const skipVerify =
    (direction === 'pull' ? options.skipTlsVerifyPull : options.skipTlsVerify) ||
    hostListHas(options.skipTlsVerifyRegistries, registry);
  const caPath = skipVerify ? undefined : hostRecordGet(options.registryCertificates, registry);
  const clientCert = hostRecordGet(options.registryClientCerts, registry);
  const scheme = explicitScheme ?? (plainHttp ? 'http' : 'https');
  const tlsNamed = skipVerify || caPath !== undefined || clientCert !== undefined;
  return {
    registry,
    apiHost: apiHostFor(registry),
    scheme,
    pathPrefix,
    tls: { rejectUnauthorized: !skipVerify, caPath, clientCert },
    plainHttpFallback: scheme === 'https' && explicitScheme === undefined && !tlsNamed && isLocalHost(registry),
    source,
  };
}

/** The ordered candidates for reaching `registry` (a host as written in references). */
export function planEndpoints(registry: string, direction: Direction, options: TransportOptions): EndpointPlan[] {
  const own = canonicalRegistryHost(registry);
  if (own === '') throw new FlagValueError('registry', registry, 'empty registry host');
  const plans: EndpointPlan[] = [];
  if (direction === 'pull') {
    const targets: { flag: '--registry-map' | '--registry-mirror'; value: string }[] = [];
    for (const [orig, values] of Object.entries(options.registryMaps)) {
      if (canonicalRegistryHost(orig) !== own) continue;
      for (const value of values) targets.push({ flag: '--registry-map', value });
    }
    if (own === dockerHub) {
      for (const value of options.registryMirrors) targets.push({ flag: '--registry-mirror', value });
    }
    for (const { flag, value } of targets) {
      const target = parseTarget(flag, value);
      const source = flag === '--registry-map' ? 'registry-map' : 'registry-mirror';
      plans.push(planOne(target.host, target.pathPrefix, target.scheme, direction, options, source));
    }
    if (targets.length > 0 && options.skipDefaultRegistryFallback) return plans;
  }
  plans.push(planOne(own, '', undefined, direction, options, 'registry'));
  return plans;
}

// ---------------------------------------------------------------------------------------------
// Dispatchers

/** A candidate with the dispatcher that carries its TLS settings. */
export interface ResolvedEndpoint extends RegistryEndpoint {
  pathPrefix: string;
  plainHttpFallback: boolean;
  source: EndpointPlan['source'];
}

export interface TlsMaterial {
  ca: string[] | undefined;
  cert: Buffer | undefined;
  key: Buffer | undefined;
  rejectUnauthorized: boolean;
}

export interface EndpointFactoryDeps {
  readFile?: (path: string) => Buffer;
  /** Builds the dispatcher for one (apiHost, TLS settings); defaults to an undici Agent. */
  createDispatcher?: (tls: TlsMaterial) => Dispatcher;
}

/**
 * Owns one dispatcher per (apiHost, TLS settings), created on first use and reused, so keep-alive
 * connections are shared by every request to a registry. Certificate files are read and checked
 * when the factory is made, so a wrong path fails before any build work starts.
 */
export class EndpointFactory {
  readonly options: TransportOptions;
  readonly #dispatchers = new Map<string, Dispatcher>();
  readonly #cas = new Map<string, string>();
  readonly #clientCerts = new Map<string, { cert: Buffer; key: Buffer }>();
  readonly #createDispatcher: (tls: TlsMaterial) => Dispatcher;
  #closed = false;

  constructor(options: Partial<TransportOptions> = {}, deps: EndpointFactoryDeps = {}) {
    this.options = { ...defaultTransportOptions, ...options };
    const read = deps.readFile ?? ((path: string) => readFileSync(path));
    this.#createDispatcher = deps.createDispatcher ?? defaultDispatcher;

    for (const value of this.options.registryMirrors) parseTarget('--registry-mirror', value);
    for (const values of Object.values(this.options.registryMaps)) {
      for (const value of values) parseTarget('--registry-map', value);
    }
    for (const [host, path] of Object.entries(this.options.registryCertificates)) {
      const pem = readTlsFile(read, '--registry-certificate', host, path).toString('utf8');
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
        throw new TlsFileError('--registry-certificate', host, path, 'holds no PEM certificate');
      }
      checkSecureContext('--registry-certificate', host, path, () => createSecureContext({ ca: pem }));
      this.#cas.set(path, pem);
    }
    for (const [host, paths] of Object.entries(this.options.registryClientCerts)) {
      const cert = readTlsFile(read, '--registry-client-cert', host, paths.cert);
      const key = readTlsFile(read, '--registry-client-cert', host, paths.key);
      checkSecureContext('--registry-client-cert', host, `${paths.cert},${paths.key}`, () =>
        createSecureContext({ cert, key }),
      );
      this.#clientCerts.set(clientCertKey(paths), { cert, key });
    }
  }

  /** The ordered candidates to try for `registry`; pushes get exactly one. */
  resolveEndpoints(registry: string, direction: Direction): ResolvedEndpoint[] {
    return planEndpoints(registry, direction, this.options).map((plan) => ({
      registry: plan.registry,
      apiHost: plan.apiHost,
      scheme: plan.scheme,
      pathPrefix: plan.pathPrefix,
      plainHttpFallback: plan.plainHttpFallback,
      source: plan.source,
      dispatcher: this.#dispatcherFor(plan),
    }));
  }

  /** Closes every dispatcher (waiting for in-flight requests). The factory is unusable after. */
  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#dispatchers.values()];
    this.#dispatchers.clear();
    await Promise.all(all.map((d) => d.close()));
  }

  #dispatcherFor(plan: EndpointPlan): Dispatcher {
    if (this.#closed) throw new Error('EndpointFactory used after close()');
    const { tls } = plan;
    const key = JSON.stringify([plan.apiHost, tls.rejectUnauthorized, tls.caPath ?? null, tls.clientCert ?? null]);
    let dispatcher = this.#dispatchers.get(key);
    if (!dispatcher) {
      const ca = tls.caPath === undefined ? undefined : this.#cas.get(tls.caPath);
      const pair = tls.clientCert === undefined ? undefined : this.#clientCerts.get(clientCertKey(tls.clientCert));
      dispatcher = this.#createDispatcher({
        // Node's `ca` replaces the default roots; kaniko adds the CA to the system pool instead.
        ca: ca === undefined ? undefined : [...rootCertificates, ca],
        cert: pair?.cert,
        key: pair?.key,
        rejectUnauthorized: tls.rejectUnauthorized,
      });
      this.#dispatchers.set(key, dispatcher);
    }
    return dispatcher;
  }
}

function clientCertKey(paths: ClientCertificatePaths): string {
  return JSON.stringify([paths.cert, paths.key]);
}

function defaultDispatcher(tls: TlsMaterial): Dispatcher {
  return new Agent({
    connect: {
      rejectUnauthorized: tls.rejectUnauthorized,
      ...(tls.ca ? { ca: tls.ca } : {}),
      ...(tls.cert ? { cert: tls.cert } : {}),
      ...(tls.key ? { key: tls.key } : {}),
    },
  });
}

function readTlsFile(read: (path: string) => Buffer, flag: string, host: string, path: string): Buffer {
  try {
    return read(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new TlsFileError(flag, host, path, `cannot be read (${code ?? String(error)})`, { cause: error });
  }
}

function checkSecureContext(flag: string, host: string, path: string, make: () => unknown): void {
  try {
    make();
  } catch (error) {
    // OpenSSL's reason (bad PEM, key does not match certificate) never includes key material.
    const reason = error instanceof Error ? error.message : String(error);
    throw new TlsFileError(flag, host, path, `not usable: ${reason}`, { cause: error });
  }
}
