import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fetchGitContext, gitEnvironment, isGitContext, parseGitContext, parseGitOptions } from '../../../src/context/git-source.js';
import type { ProcessRunner, ProcessRunOptions } from '../../../src/context/process.js';
import { parseContextSpec } from '../../../src/context/source.js';
import { ContextSpecError, GitContextError } from '../../../src/context/types.js';

describe('parseContextSpec', () => {
  it('recognizes every kaniko form', () => {
    expect(parseContextSpec('/workspace/')).toEqual({ kind: 'dir', path: '/workspace/' });
    expect(parseContextSpec('dir://ctx')).toEqual({ kind: 'dir', path: 'ctx' });
    expect(parseContextSpec('tar://ctx.tar.gz')).toEqual({ kind: 'tar', path: 'ctx.tar.gz' });
    expect(parseContextSpec('tar://stdin')).toEqual({ kind: 'stdin', allowDockerfile: false });
    expect(parseContextSpec('-')).toEqual({ kind: 'stdin', allowDockerfile: true });
    expect(parseContextSpec('https://example.com/ctx.tar.gz')).toEqual({ kind: 'url', url: 'https://example.com/ctx.tar.gz' });
    expect(parseContextSpec('https://example.com/r.git#main:sub').kind).toBe('git');
    expect(() => parseContextSpec('s3://bucket/ctx.tgz')).toThrow(ContextSpecError);
    expect(() => parseContextSpec('ftp://x/y')).toThrow(/unknown scheme/);
  });
});

describe('parseGitContext', () => {
  it('reads kaniko’s git://host/repo.git#ref#sha over https (or GIT_PULL_METHOD)', () => {
    const sha = 'a'.repeat(40);
    expect(parseGitContext(`git://github.com/org/repo.git#refs/heads/dev#${sha}`, {})).toEqual({
      url: 'https://github.com/org/repo.git',
      ref: 'refs/heads/dev',
      commit: sha,
    });
    expect(parseGitContext('git://host/r.git', { GIT_PULL_METHOD: 'http' }).url).toBe('http://host/r.git');
  });

  it('reads Docker’s #ref:subdir and moves URL credentials out of the URL', () => {
    expect(parseGitContext('https://u:p%40ss@host/r.git#v1.2:docker/app', {})).toEqual({
      url: 'https://host/r.git',
      ref: 'v1.2',
      subdir: 'docker/app',
      urlCredentials: { username: 'u', password: 'p@ss' },
    });
    expect(parseGitContext('https://host/r.git#:sub', {})).toEqual({ url: 'https://host/r.git', subdir: 'sub' });
  });

  it('tells git URLs from tarball URLs', () => {
    expect(isGitContext('https://host/r.git')).toBe(true);
    expect(isGitContext('https://host/r.git#main')).toBe(true);
    expect(isGitContext('git@github.com:org/r.git')).toBe(true);
    expect(isGitContext('https://host/ctx.tar.gz')).toBe(false);
    expect(isGitContext('file:///tmp/r.git#main')).toBe(true);
  });

  it('parses --git options and refuses unknown ones', () => {
    expect(parseGitOptions({ branch: 'dev', 'single-branch': 'false', 'recurse-submodules': 'true', 'insecure-skip-tls': 'true' })).toEqual({
      branch: 'dev',
      singleBranch: false,
      recurseSubmodules: true,
      insecureSkipTls: true,
    });
    expect(() => parseGitOptions({ depth: '1' })).toThrow(/unknown option "depth"/);
    expect(() => parseGitOptions({ 'single-branch': 'yes' })).toThrow(/true or false/);
  });
});

describe('git credentials', () => {
  const token = 'ghp_SuperSecretToken123';

  it('go through GIT_CONFIG_* as a header scoped to the origin, never as arguments', () => {
    const spec = parseGitContext('https://git.example.com/org/r.git', {});
    const { env, secrets } = gitEnvironment(spec, { env: { GIT_TOKEN: token, PATH: '/usr/bin' }, git: {}, runner: noRunner });
    expect(env['GIT_TOKEN']).toBeUndefined();
    expect(env['GIT_CONFIG_COUNT']).toBe('1');
    expect(env['GIT_CONFIG_KEY_0']).toBe('http.https://git.example.com/.extraHeader');
    expect(env['GIT_CONFIG_VALUE_0']).toBe(`Authorization: Basic ${Buffer.from(`${token}:`).toString('base64')}`);
    expect(env['GIT_TERMINAL_PROMPT']).toBe('0');
    expect(secrets).toContain(token);
  });

  it('uses GIT_USERNAME and GIT_PASSWORD, appending to existing GIT_CONFIG_* entries', () => {
    const spec = parseGitContext('https://h/r.git', {});
    const { env } = gitEnvironment(spec, {
      env: { GIT_USERNAME: 'me', GIT_PASSWORD: 'pw-secret', GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'core.x', GIT_CONFIG_VALUE_0: 'y' },
      git: { insecureSkipTls: true },
      runner: noRunner,
    });
    expect(env['GIT_CONFIG_COUNT']).toBe('2');
    expect(env['GIT_CONFIG_VALUE_1']).toBe(`Authorization: Basic ${Buffer.from('me:pw-secret').toString('base64')}`);
    expect(env['GIT_SSL_NO_VERIFY']).toBe('true');
  });

  describe('with a recording runner', () => {
    let dir = '';
    afterEach(async () => {
      if (dir !== '') await rm(dir, { recursive: true, force: true });
    });

    it('keeps secrets out of arguments and out of the error git’s stderr becomes', async () => {
      dir = await mkdtemp(join(tmpdir(), 'kiln-git-unit-'));
      const calls: Array<{ args: readonly string[]; options: ProcessRunOptions }> = [];
      const basic = Buffer.from(`${token}:`).toString('base64');
      const runner: ProcessRunner = {
        run(_program, args, options) {
          calls.push({ args, options });
          if (args[0] === 'fetch') {
            return Promise.resolve({ exitCode: 128, stdout: '', stderr: `fatal: auth failed for ${token} (Authorization: Basic ${basic})` });
          }
          return Promise.resolve({ exitCode: 0, stdout: '', stderr: '' });
        },
      };
      const spec = parseGitContext('https://git.example.com/org/r.git#main', {});
      const failure = fetchGitContext(spec, dir, { runner, env: { GIT_TOKEN: token }, git: {} });
      await expect(failure).rejects.toThrow(GitContextError);
      const err = (await failure.catch((e: unknown) => e)) as Error;
      expect(err.message).not.toContain(token);
      expect(err.message).not.toContain(basic);
      expect(err.message).toContain('***');
      for (const call of calls) expect(call.args.join(' ')).not.toContain(token);
      expect(calls.map((c) => c.args[0])).toEqual(['init', 'remote', 'fetch']);
      expect(calls[2]?.args).toEqual(['fetch', '--quiet', '--no-tags', '--depth', '1', 'origin', 'main']);
    });
  });
});

const noRunner: ProcessRunner = {
  run() {
    return Promise.reject(new Error('not expected to run'));
  },
};
