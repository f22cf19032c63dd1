/**
 * Credentials from Docker's config.json, looked up the way the docker CLI (and so kaniko, through
 * go-containerregistry's default keychain) does: `credHelpers` for the host, else `credsStore`,
 * else the `auths` entry. Hand-written because no npm library reproduces Docker's key matching and
 * helper protocol exactly.
 *
 * Secrets never leave this module except as the returned `Credential`: no logging here, and every
 * error names the file, the registry key or the helper, never what they contained.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Credential, CredentialStore } from './types.js';

/** The key Docker Hub's credentials are stored under, by docker login and everyone since. */
export const dockerHubAuthKey = 'https://index.docker.io/v1/';

/** The host all Docker Hub aliases normalise to. */
const dockerHubHost = 'index.docker.io';
const dockerHubAliases: ReadonlySet<string> = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** What credential helpers print when they have nothing for a host (docker-credential-helpers). */
const helperNotFoundMessage = 'credentials not found';
/** Helpers print this user name when the secret is an identity (refresh) token. */
const identityTokenUsername = '<token>';

// ---------------------------------------------------------------------------------------------
// Errors

/** config.json exists but cannot be read or is not what Docker writes. */
export class DockerConfigError extends Error {
  readonly path: string;
  constructor(path: string, reason: string, options?: { cause?: unknown }) {
    super(`Docker config ${path}: ${reason}`, options);
    this.name = 'DockerConfigError';
    this.path = path;
  }
}

/** A docker-credential-* helper could not be run or answered something unusable. */
export class CredentialHelperError extends Error {
  readonly helper: string;
  readonly registry: string;
  constructor(helper: string, registry: string, reason: string, options?: { cause?: unknown }) {
    super(`credential helper docker-credential-${helper} for ${registry}: ${reason}`, options);
    this.name = 'CredentialHelperError';
    this.helper = helper;
    this.registry = registry;
  }
}

// ---------------------------------------------------------------------------------------------
// Running helpers

export interface ProcessResult {
  /** null when the process was killed by a signal (e.g. on timeout). */
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a program with stdin text; injected so tests and CI wrappers can control it. */
export interface ProcessRunner {
  run(
    program: string,
    args: readonly string[],
    options: { input: string; timeoutMs: number; env: NodeJS.ProcessEnv },
  ): Promise<ProcessResult>;
}

/** Output beyond this is not kept: a helper's answer is a few hundred bytes. */
const maxHelperOutput = 1024 * 1024;

/** The real runner: spawns without a shell, kills the process when the timeout passes. */
export function createNodeProcessRunner(): ProcessRunner {
  return {
    run(program, args, { input, timeoutMs, env }) {
      return new Promise((resolve, reject) => {
        const child = spawn(program, [...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        let kept = 0;
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
          // A grandchild (a shell helper's `sleep`) may hold the pipes open: stop waiting on them.
          child.stdout.destroy();
          child.stderr.destroy();
        }, timeoutMs);
        const keep = (into: Buffer[]) => (chunk: Buffer) => {
          if (kept + chunk.length <= maxHelperOutput) {
            into.push(chunk);
            kept += chunk.length;
          }
        };
        child.stdout.on('data', keep(stdout));
        child.stderr.on('data', keep(stderr));
        child.on('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
        // A helper that exits before reading stdin makes the write fail with EPIPE; its exit
        // status tells the real story, so the write error itself carries nothing to report.
        child.stdin.on('error', () => undefined);
        child.stdin.end(input);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({
            exitCode: code,
            stdout: Buffer.concat(stdout).toString('utf8'),
            stderr: Buffer.concat(stderr).toString('utf8'),
            timedOut,
          });
        });
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Key matching

/**
 * The host a config.json key or a registry name stands for: scheme and path dropped
 * (`https://ghcr.io/v2/` → `ghcr.io`), lower-cased, Docker Hub aliases folded to one.
 */
export function normalizeRegistryKey(key: string): string {
  let host = key.trim();
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(host);
  if (scheme) host = host.slice(scheme[0].length);
  const slash = host.indexOf('/');
  if (slash >= 0) host = host.slice(0, slash);
  host = host.toLowerCase();
  return dockerHubAliases.has(host) ? dockerHubHost : host;
}

/** The address Docker hands helpers and writes into config.json for a registry. */
export function dockerConfigKeyFor(registry: string): string {
  const host = normalizeRegistryKey(registry);
  return host === dockerHubHost ? dockerHubAuthKey : host;
}

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string {
  const dir = env.DOCKER_CONFIG;
  return dir ? join(dir, 'config.json') : join(home, '.docker', 'config.json');
}

// ---------------------------------------------------------------------------------------------
// The config file

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

interface ParsedDockerConfig {
  auths: ReadonlyMap<string, AuthEntry>;
  credHelpers: ReadonlyMap<string, string>;
  credsStore: string | undefined;
}

const emptyConfig: ParsedDockerConfig = { auths: new Map(), credHelpers: new Map(), credsStore: undefined };

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Validates the parts of config.json we use; other fields (proxies, aliases, ...) are ignored. */
function parseDockerConfig(path: string, text: string): ParsedDockerConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    // The SyntaxError's message may quote the file's text, and so a secret: name only the problem.
    throw new DockerConfigError(path, 'is not valid JSON');
  }
  if (!isPlainObject(raw)) throw new DockerConfigError(path, 'is not a JSON object');

  const auths = new Map<string, AuthEntry>();
  if (raw.auths !== undefined) {
    if (!isPlainObject(raw.auths)) throw new DockerConfigError(path, '"auths" is not an object');
    for (const [key, entry] of Object.entries(raw.auths)) {
      if (!isPlainObject(entry)) throw new DockerConfigError(path, `auths entry "${key}" is not an object`);
      const parsed: AuthEntry = {};
      for (const field of ['auth', 'username', 'password', 'identitytoken', 'registrytoken'] as const) {
        const value = entry[field];
        if (value === undefined || value === null) continue;
        if (typeof value !== 'string') {
          throw new DockerConfigError(path, `auths entry "${key}" field "${field}" is not a string`);
        }
        parsed[field] = value;
      }
      auths.set(key, parsed);
    }
  }

  const credHelpers = new Map<string, string>();
  if (raw.credHelpers !== undefined) {
    if (!isPlainObject(raw.credHelpers)) throw new DockerConfigError(path, '"credHelpers" is not an object');
    for (const [key, helper] of Object.entries(raw.credHelpers)) {
      if (typeof helper !== 'string' || !isHelperName(helper)) {
        throw new DockerConfigError(path, `credHelpers entry "${key}" is not a helper name`);
      }
      credHelpers.set(key, helper);
    }
  }

  let credsStore: string | undefined;
  if (raw.credsStore !== undefined && raw.credsStore !== '') {
    if (typeof raw.credsStore !== 'string' || !isHelperName(raw.credsStore)) {
      throw new DockerConfigError(path, '"credsStore" is not a helper name');
    }
    credsStore = raw.credsStore;
  }
  return { auths, credHelpers, credsStore };
}

/** Helper names become part of a program name: keep them to what helpers are called. */
function isHelperName(name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name);
}

async function readConfigText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DockerConfigError(path, `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`, {
      cause: error,
    });
  }
}

/** Picks the entry for a host: the exact key first, then any key that normalises to the host. */
function findByHost<T>(entries: ReadonlyMap<string, T>, registry: string): [string, T] | undefined {
  const host = normalizeRegistryKey(registry);
  const preferred = [registry, dockerConfigKeyFor(registry)];
  for (const key of preferred) {
    const value = entries.get(key);
    if (value !== undefined) return [key, value];
  }
  for (const [key, value] of entries) {
    if (normalizeRegistryKey(key) === host) return [key, value];
  }
  return undefined;
}

function credentialFromAuthEntry(path: string, key: string, entry: AuthEntry): Credential | undefined {
  if (entry.registrytoken) return { kind: 'registryToken', token: entry.registrytoken };
  if (entry.identitytoken) return { kind: 'identityToken', token: entry.identitytoken };
  let username = entry.username ?? '';
  let password = entry.password ?? '';
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) {
      throw new DockerConfigError(path, `auths entry "${key}" has an "auth" value that is not base64 of user:password`);
    }
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  if (username === '' && password === '') return undefined;
  return { kind: 'basic', username, password };
}

// ---------------------------------------------------------------------------------------------
// The store

export interface DockerConfigStoreOptions {
  /** Defaults to `dockerConfigPath(env)`. */
  configPath?: string;
  /** Environment for DOCKER_CONFIG and for helpers (PATH). Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  runner?: ProcessRunner;
  /** How long a helper may take; cloud helpers make network calls. Default 30 s. */
  helperTimeoutMs?: number;
}

export class DockerConfigCredentialStore implements CredentialStore {
  readonly configPath: string;
  readonly #config: ParsedDockerConfig;
  readonly #runner: ProcessRunner;
  readonly #env: NodeJS.ProcessEnv;
  readonly #helperTimeoutMs: number;

  private constructor(configPath: string, config: ParsedDockerConfig, options: DockerConfigStoreOptions) {
    this.configPath = configPath;
    this.#config = config;
    this.#runner = options.runner ?? createNodeProcessRunner();
    this.#env = options.env ?? process.env;
    this.#helperTimeoutMs = options.helperTimeoutMs ?? 30_000;
  }

  /** Reads config.json now (a missing file means anonymous access everywhere). */
  static async load(options: DockerConfigStoreOptions = {}): Promise<DockerConfigCredentialStore> {
    const env = options.env ?? process.env;
    const path = options.configPath ?? dockerConfigPath(env);
    const text = await readConfigText(path);
    const config = text === undefined ? emptyConfig : parseDockerConfig(path, text);
    return new DockerConfigCredentialStore(path, config, options);
  }

  /**
   * Answers per host, kept for the store's life (one kiln run): a build asks for the same
   * registry many times and cloud helpers take a network round trip each. Failures are not kept.
   */
  readonly #answers = new Map<string, Promise<Credential | undefined>>();

  async get(registry: string): Promise<Credential | undefined> {
    const host = normalizeRegistryKey(registry);
    let answer = this.#answers.get(host);
    if (answer === undefined) {
      answer = this.#lookUp(registry);
      this.#answers.set(host, answer);
      // The caller gets the rejection through `answer`; this side branch only forgets it, so the
      // next call asks again.
      answer.catch(() => this.#answers.delete(host));
    }
    return answer;
  }

  async #lookUp(registry: string): Promise<Credential | undefined> {
    const helper = findByHost(this.#config.credHelpers, registry)?.[1] ?? this.#config.credsStore;
    if (helper !== undefined) {
      const fromHelper = await this.#askHelper(helper, registry);
      if (fromHelper !== undefined) return fromHelper;
      // Docker stops here; we also accept an `auths` entry the helper does not know about, which
      // is what users mean when a CI job writes auths into a config that names a credsStore.
    }
    const found = findByHost(this.#config.auths, registry);
    return found ? credentialFromAuthEntry(this.configPath, found[0], found[1]) : undefined;
  }

  async #askHelper(helper: string, registry: string): Promise<Credential | undefined> {
    const program = `docker-credential-${helper}`;
    let result: ProcessResult;
    try {
      result = await this.#runner.run(program, ['get'], {
        input: dockerConfigKeyFor(registry),
        timeoutMs: this.#helperTimeoutMs,
        env: this.#env,
      });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const reason = code === 'ENOENT' ? `${program} is not on PATH` : `cannot be run (${code ?? String(error)})`;
      throw new CredentialHelperError(helper, registry, reason, { cause: error });
    }
    if (result.timedOut) {
      throw new CredentialHelperError(helper, registry, `did not answer within ${this.#helperTimeoutMs} ms`);
    }
    if (result.exitCode !== 0) {
      const said = `${result.stdout}\n${result.stderr}`.trim();
      if (said.toLowerCase().includes(helperNotFoundMessage)) return undefined;
      // A failing helper prints an error message, not a credential, so its first line is safe to show.
      const firstLine = said.split('\n')[0]?.slice(0, 200) ?? '';
      throw new CredentialHelperError(
        helper,
        registry,
        `exited with status ${result.exitCode ?? 'killed'}${firstLine ? `: ${firstLine}` : ''}`,
      );
    }
    return parseHelperAnswer(helper, registry, result.stdout);
  }
}

function parseHelperAnswer(helper: string, registry: string, stdout: string): Credential | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    // Never quote the output: it is supposed to hold a secret.
    throw new CredentialHelperError(helper, registry, 'printed something that is not JSON');
  }
  if (!isPlainObject(parsed)) throw new CredentialHelperError(helper, registry, 'printed JSON that is not an object');
  const username = parsed.Username;
  const secret = parsed.Secret;
  if ((username !== undefined && typeof username !== 'string') || (secret !== undefined && typeof secret !== 'string')) {
    throw new CredentialHelperError(helper, registry, 'printed Username/Secret that are not strings');
  }
  if (!secret) return undefined;
  if (username === identityTokenUsername) return { kind: 'identityToken', token: secret };
  return { kind: 'basic', username: username ?? '', password: secret };
}

// ---------------------------------------------------------------------------------------------
// Writing

/**
 * Adds (or replaces) the `auths` entry for `registry` in the config.json at `path`, keeping
 * everything else in it. A `credHelpers` entry for the same host is removed, since it would
 * otherwise shadow the credentials just written. The file is written 0600 via a rename, so a
 * reader never sees half a file.
 */
export async function mergeDockerConfigAuth(
  path: string,
  registry: string,
  username: string,
  password: string,
): Promise<void> {
  const text = await readConfigText(path);
  let config: Record<string, unknown> = {};
  if (text !== undefined && text.trim() !== '') {
    parseDockerConfig(path, text); // validates, with errors naming the file
    config = JSON.parse(text) as Record<string, unknown>;
  }
  const host = normalizeRegistryKey(registry);
  const key = dockerConfigKeyFor(registry);

  const auths: Record<string, unknown> = isPlainObject(config.auths) ? { ...config.auths } : {};
  for (const existing of Object.keys(auths)) {
    if (existing !== key && normalizeRegistryKey(existing) === host) delete auths[existing];
  }
  auths[key] = { auth: Buffer.from(`${username}:${password}`, 'utf8').toString('base64') };
  config.auths = auths;

  if (isPlainObject(config.credHelpers)) {
    const helpers = { ...config.credHelpers };
    for (const existing of Object.keys(helpers)) {
      if (normalizeRegistryKey(existing) === host) delete helpers[existing];
    }
    config.credHelpers = helpers;
  }

  await writeFileAtomically(path, `${JSON.stringify(config, null, '\t')}\n`);
}

async function writeFileAtomically(path: string, content: string): Promise<void> {
  const dir = dirname(path);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new DockerConfigError(path, `its directory cannot be created (${(error as NodeJS.ErrnoException).code ?? 'error'})`, {
      cause: error,
    });
  }
  const temporary = join(dir, `.config.json.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(content, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw new DockerConfigError(path, `cannot be written (${(error as NodeJS.ErrnoException).code ?? 'error'})`, {
      cause: error,
    });
  }
}
