/**
 * Git build contexts, fetched with the system's `git` (one shallow fetch of the one commit a
 * build needs where the server allows it).
 *
 * Credentials (GIT_TOKEN, or GIT_USERNAME + GIT_PASSWORD, or user:password in the URL) reach
 * git only as an `http.<origin>/.extraHeader` set through GIT_CONFIG_* environment variables:
 * never in process arguments, never in `.git/config`, and every message git prints is scrubbed
 * of them before it can reach an error.
 */
import { isAbsolute, join, relative } from 'node:path';
import { realpath, stat } from 'node:fs/promises';
import type { ProcessRunner } from './process.js';
import { ContextSourceError, GitContextError, type GitOptions } from './types.js';

/** A git context: where to fetch from and what to check out. */
export interface GitContextSpec {
  /** The URL git fetches from (credentials removed). */
  url: string;
  /** A branch, tag or other ref (`main`, `refs/heads/main`, `refs/pull/1/head`) or a commit. */
  ref?: string;
  /** A commit to check out after fetching `ref` (kaniko's `#ref#sha`). */
  commit?: string;
  /** A directory of the repository to use as the context (Docker's `#ref:dir`). */
  subdir?: string;
  /** Credentials found in the URL's userinfo, moved out of it. */
  urlCredentials?: { username: string; password: string };
}

const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/i;

/** Is this `--context` a git repository (rather than a tarball URL or a path)? */
export function isGitContext(spec: string): boolean {
  if (spec.startsWith('git://') || spec.startsWith('git@') || spec.startsWith('ssh://')) return true;
  if (/^(https?|file):\/\//.test(spec)) {
    const beforeFragment = spec.split('#')[0] as string;
    const path = beforeFragment.split('?')[0] as string;
    return /\.git\/?$/.test(path);
  }
  return false;
}

/**
 * Parses a git context. Two fragment forms are accepted:
 * kaniko's `#<ref>#<commit>` (always for `git://`, which kaniko fetches over https, or http when
 * GIT_PULL_METHOD=http), and Docker's `#<ref>:<subdir>`.
 */
export function parseGitContext(spec: string, env: NodeJS.ProcessEnv): GitContextSpec {
  const hash = spec.indexOf('#');
  let base = hash < 0 ? spec : spec.slice(0, hash);
  const fragment = hash < 0 ? '' : spec.slice(hash + 1);
  const result: GitContextSpec = { url: base };
  const kanikoForm = spec.startsWith('git://') || fragment.includes('#');
  if (spec.startsWith('git://')) {
    const method = env['GIT_PULL_METHOD'] === 'http' ? 'http' : 'https';
    base = `${method}://${base.slice('git://'.length)}`;
  }
  if (kanikoForm) {
    const [ref, commit] = fragment.split('#');
    if (ref !== undefined && ref !== '') result.ref = ref;
    if (commit !== undefined && commit !== '') result.commit = commit;
  } else if (fragment !== '') {
    const colon = fragment.indexOf(':');
    const ref = colon < 0 ? fragment : fragment.slice(0, colon);
    const subdir = colon < 0 ? '' : fragment.slice(colon + 1);
    if (ref !== '') result.ref = ref;
    if (subdir !== '') result.subdir = subdir;
  }
  if (/^https?:\/\//.test(base)) {
    const url = new URL(base);
    if (url.username !== '' || url.password !== '') {
      result.urlCredentials = { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
      url.username = '';
      url.password = '';
    }
    base = url.toString();
  }
  result.url = base;
  return result;
}

/** Reads kaniko's `--git` key=value options. Unknown keys are errors, never ignored. */
export function parseGitOptions(raw: GitOptions | Record<string, string> | undefined): GitOptions {
  if (raw === undefined) return {};
  const known = new Set(['branch', 'singleBranch', 'recurseSubmodules', 'insecureSkipTls']);
  if (Object.keys(raw).every((k) => known.has(k))) return raw as GitOptions;
  const out: GitOptions = {};
  const bool = (key: string, value: string): boolean => {
    if (value === 'true') return true;
    if (value === 'false') return false;
    throw new ContextSourceError('--git', `${key} must be true or false, not ${JSON.stringify(value)}`);
  };
  for (const [key, value] of Object.entries(raw as Record<string, string>)) {
    switch (key) {
      case 'branch':
        out.branch = value;
        break;
      case 'single-branch':
        out.singleBranch = bool(key, value);
        break;
      case 'recurse-submodules':
        out.recurseSubmodules = bool(key, value);
        break;
      case 'insecure-skip-tls':
        out.insecureSkipTls = bool(key, value);
        break;
      default:
        throw new ContextSourceError('--git', `unknown option ${JSON.stringify(key)} (known: branch, single-branch, recurse-submodules, insecure-skip-tls)`);
    }
  }
  return out;
}

export interface GitFetchOptions {
  runner: ProcessRunner;
  env: NodeJS.ProcessEnv;
  git: GitOptions;
}

/** The URL as it may appear in messages: no credentials, no query string. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username !== '' || u.password !== '') {
      u.username = '***';
      u.password = '';
    }
    if (u.search !== '') u.search = '?…';
    return u.toString();
  } catch {
    // Not a WHATWG URL (scp-like git@host:repo): nothing in it to hide.
    return url;
  }
}

interface Credentials {
  username: string;
  password: string;
}

function credentialsFor(spec: GitContextSpec, env: NodeJS.ProcessEnv): Credentials | null {
  // kaniko's precedence: a token is sent as the user name with an empty password.
  const token = env['GIT_TOKEN'] ?? '';
  if (token !== '') return { username: token, password: '' };
  const username = env['GIT_USERNAME'] ?? '';
  const password = env['GIT_PASSWORD'] ?? '';
  if (username !== '' || password !== '') return { username, password };
  return spec.urlCredentials ?? null;
}

/**
 * The environment git runs with: no prompts, and credentials as an extra header scoped to the
 * repository's origin, through GIT_CONFIG_COUNT/KEY/VALUE (git ≥ 2.31).
 */
export function gitEnvironment(spec: GitContextSpec, options: GitFetchOptions): { env: NodeJS.ProcessEnv; secrets: string[] } {
  const env: NodeJS.ProcessEnv = { ...options.env, GIT_TERMINAL_PROMPT: '0' };
  for (const name of ['GIT_TOKEN', 'GIT_USERNAME', 'GIT_PASSWORD']) delete env[name];
  const secrets: string[] = [];
  let count = Number(env['GIT_CONFIG_COUNT'] ?? '0');
  if (!Number.isInteger(count) || count < 0) count = 0;
  const addConfig = (key: string, value: string): void => {
    env[`GIT_CONFIG_KEY_${count}`] = key;
    env[`GIT_CONFIG_VALUE_${count}`] = value;
    count++;
    env['GIT_CONFIG_COUNT'] = String(count);
  };
  const creds = credentialsFor(spec, options.env);
  if (creds !== null && /^https?:\/\//.test(spec.url)) {
    const basic = Buffer.from(`${creds.username}:${creds.password}`).toString('base64');
    secrets.push(basic, creds.username, creds.password);
    addConfig(`http.${new URL(spec.url).origin}/.extraHeader`, `Authorization: Basic ${basic}`);
  }
  if (options.git.insecureSkipTls === true) env['GIT_SSL_NO_VERIFY'] = 'true';
  return { env, secrets: secrets.filter((s) => s.length >= 4) };
}

function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('***');
  return out;
}

/**
 * Fetches the repository into `dest` (an existing empty directory) and checks out the wanted
 * commit. Returns the context root (`dest`, or its subdirectory for `#ref:dir`).
 */
export async function fetchGitContext(spec: GitContextSpec, dest: string, options: GitFetchOptions): Promise<string> {
  const { env, secrets } = gitEnvironment(spec, options);
  const shown = displayUrl(spec.url);
  const git = async (step: string, args: string[], allowFailure = false): Promise<boolean> => {
    const result = await options.runner.run('git', args, { cwd: dest, env });
    if (result.exitCode === 0) return true;
    if (allowFailure) return false;
    throw new GitContextError(shown, step, scrub(result.stderr, secrets));
  };

  await git('git init', ['init', '--quiet', '.']);
  await git('adding the remote', ['remote', 'add', 'origin', spec.url]);

  const ref = spec.ref ?? (options.git.branch !== undefined && options.git.branch !== '' ? options.git.branch : 'HEAD');
  const wanted = spec.commit ?? (SHA.test(ref) ? ref : undefined);
  const fetch = ['fetch', '--quiet', '--no-tags'];
  if (wanted !== undefined) {
    // Most servers (GitHub, GitLab, git ≥ 2.x over protocol v2) let a client fetch one commit.
    const direct = await git(`fetching ${wanted}`, [...fetch, '--depth', '1', 'origin', wanted], true);
    if (!direct) {
      const from = spec.commit !== undefined ? [ref] : [];
      await git(`fetching ${from[0] ?? 'all refs'} to find ${wanted}`, [...fetch, 'origin', ...from]);
    }
    await git(`checking out ${wanted}`, ['-c', 'advice.detachedHead=false', 'checkout', '--quiet', '--force', wanted]);
  } else {
    await git(`fetching ${ref}`, [...fetch, '--depth', '1', 'origin', ref]);
    await git(`checking out ${ref}`, ['-c', 'advice.detachedHead=false', 'checkout', '--quiet', '--force', 'FETCH_HEAD']);
  }
  if (options.git.singleBranch === false) {
    await git('fetching all branches', [...fetch, '--depth', '1', 'origin', '+refs/heads/*:refs/remotes/origin/*']);
  }
  if (options.git.recurseSubmodules === true) {
    await git('updating submodules', ['submodule', 'update', '--init', '--recursive', '--depth', '1']);
  }
  if (spec.subdir === undefined) return dest;
  return resolveInside(dest, spec.subdir, `${shown} subdirectory`);
}

/**
 * Joins a user-given relative directory to a root and checks that it exists, is a directory,
 * and (after resolving symlinks) is still inside the root.
 */
export async function resolveInside(root: string, sub: string, what: string): Promise<string> {
  if (isAbsolute(sub) || sub.split('/').includes('..')) {
    throw new ContextSourceError(what, `${JSON.stringify(sub)} must be a relative path inside the context`);
  }
  const candidate = join(root, sub);
  let real: string;
  let realRoot: string;
  try {
    real = await realpath(candidate);
    realRoot = await realpath(root);
    if (!(await stat(real)).isDirectory()) throw new ContextSourceError(what, `${JSON.stringify(sub)} is not a directory`);
  } catch (err) {
    if (err instanceof ContextSourceError) throw err;
    throw new ContextSourceError(what, `${JSON.stringify(sub)} does not exist`, { cause: err });
  }
  const rel = relative(realRoot, real);
  if (rel.startsWith('..') || isAbsolute(rel)) {
    throw new ContextSourceError(what, `${JSON.stringify(sub)} leads outside the context`);
  }
  return candidate;
}
