import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BuildOptions } from '../../../../src/build/options.js';
import { buildVariables, formatDotenv } from '../../../../src/ci/gitlab/dotenv-report.js';
import { GitLabJobError, gitLabRegistryLogins, readGitLabJobInputs, splitLines, splitList } from '../../../../src/ci/gitlab/job-inputs.js';
import { runGitLabEntry, runGitLabJob, type GitLabJobDependencies } from '../../../../src/ci/gitlab/job.js';
import { writeRegistryLogins } from '../../../../src/ci/gitlab/registry-auth.js';

const digest = `sha256:${'ab'.repeat(32)}`;
const password = 'glcbt-s3cret-Passw0rd';

function collector(): { text: string; write(text: string): void } {
  return {
    text: '',
    write(text: string) {
      this.text += text;
    },
  };
}

describe('GitLab job inputs', () => {
  it('splits lists on commas, spaces and newlines, build arguments on lines only', () => {
    expect(splitList(' a:1, b:2\nc:3  ')).toEqual(['a:1', 'b:2', 'c:3']);
    expect(splitList(undefined)).toEqual([]);
    expect(splitLines('A=1, 2\n\n  B=x y \r\n')).toEqual(['A=1, 2', 'B=x y']);
  });

  it('maps KILN_* variables to kaniko flags, relative to the project directory', () => {
    const inputs = readGitLabJobInputs(
      {
        CI_PROJECT_DIR: '/builds/g/p',
        KILN_CONTEXT: 'app',
        KILN_DOCKERFILE: 'app/Dockerfile.prod',
        KILN_DESTINATIONS: 'r.example/g/p:1 r.example/g/p:latest',
        KILN_BUILD_ARGS: 'A=1\nB=two words',
        KILN_CAPS: 'NET_ADMIN,SYS_PTRACE',
        KILN_CACHE_REPO: 'r.example/g/p/cache',
        CI_REGISTRY_IMAGE: 'r.example/g/p',
        CI_COMMIT_REF_SLUG: 'main',
      },
      '/elsewhere',
    );
    expect(inputs.buildArguments).toEqual([
      '--context', '/builds/g/p/app',
      '--dockerfile', 'app/Dockerfile.prod',
      '--destination', 'r.example/g/p:1',
      '--destination', 'r.example/g/p:latest',
      '--build-arg', 'A=1',
      '--build-arg', 'B=two words',
      '--cap-add', 'NET_ADMIN',
      '--cap-add', 'SYS_PTRACE',
      '--cache-repo', 'r.example/g/p/cache',
    ]);
    expect(inputs.defaultDestination).toBe('r.example/g/p:main');
    expect(inputs.dotenvPath).toBe('/builds/g/p/kiln.env');
  });

  it('defaults the context to the project directory and passes URL contexts through', () => {
    expect(readGitLabJobInputs({ CI_PROJECT_DIR: '/builds/p' }, '/x').buildArguments.slice(0, 4)).toEqual(['--context', '/builds/p', '--dockerfile', 'Dockerfile']);
    expect(readGitLabJobInputs({ KILN_CONTEXT: 'git://h/r.git#main' }, '/x').buildArguments[1]).toBe('git://h/r.git#main');
    expect(readGitLabJobInputs({}, '/x').defaultDestination).toBeUndefined();
  });

  it('logs in to the registry and the dependency proxy only when all three variables are set', () => {
    expect(gitLabRegistryLogins({ CI_REGISTRY: 'r.example', CI_REGISTRY_USER: 'gitlab-ci-token' })).toEqual([]);
    expect(
      gitLabRegistryLogins({
        CI_REGISTRY: 'r.example',
        CI_REGISTRY_USER: 'gitlab-ci-token',
        CI_REGISTRY_PASSWORD: password,
        CI_DEPENDENCY_PROXY_SERVER: 'gitlab.example:443',
        CI_DEPENDENCY_PROXY_USER: 'gitlab-ci-token',
        CI_DEPENDENCY_PROXY_PASSWORD: 'proxy-pw',
      }).map((login) => [login.source, login.registry, login.username]),
    ).toEqual([
      ['CI_DEPENDENCY_PROXY_SERVER', 'gitlab.example:443', 'gitlab-ci-token'],
      ['CI_REGISTRY', 'r.example', 'gitlab-ci-token'],
    ]);
  });
});

describe('dotenv report', () => {
  it('pins every destination to the digest', () => {
    expect(buildVariables(digest, ['r.example/g/p:main', 'r.example/g/p:1', 'r.example/g/q'])).toEqual({
      KILN_DIGEST: digest,
      KILN_IMAGE: `r.example/g/p@${digest}`,
      KILN_IMAGES: `r.example/g/p@${digest} r.example/g/q@${digest}`,
    });
    expect(formatDotenv({ KILN_DIGEST: digest, KILN_IMAGE: 'x@y' })).toBe(`KILN_DIGEST=${digest}\nKILN_IMAGE=x@y\n`);
  });

  it('refuses what GitLab could not read back', () => {
    expect(() => formatDotenv({ 'BAD-NAME': 'x' })).toThrow(GitLabJobError);
    expect(() => formatDotenv({ A: 'two\nlines' })).toThrow(/spans lines/);
  });
});

describe('GitLab job', () => {
  let work: string;
  beforeEach(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'kiln-gitlab-unit-'));
  });
  afterEach(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('merges logins into an existing Docker config, keeping its other entries', async () => {
    const dockerDir = path.join(work, 'docker');
    await mkdir(dockerDir);
    const existing = {
      auths: { 'other.example': { auth: 'b3RoZXI6cHc=' }, 'https://r.example/v1/': { auth: 'c3RhbGU6c3RhbGU=' } },
      credHelpers: { 'gcr.io': 'gcloud', 'r.example': 'broken' },
      proxies: { default: { httpProxy: 'http://proxy:3128' } },
    };
    await writeFile(path.join(dockerDir, 'config.json'), JSON.stringify(existing));
    const file = await writeRegistryLogins([{ source: 'CI_REGISTRY', registry: 'r.example', username: 'gitlab-ci-token', password }], { DOCKER_CONFIG: dockerDir });
    expect(file).toBe(path.join(dockerDir, 'config.json'));
    const config = JSON.parse(await readFile(file, 'utf8')) as typeof existing;
    expect(config.auths).toEqual({
      'other.example': { auth: 'b3RoZXI6cHc=' },
      'r.example': { auth: Buffer.from(`gitlab-ci-token:${password}`).toString('base64') },
    });
    expect(config.credHelpers).toEqual({ 'gcr.io': 'gcloud' });
    expect(config.proxies).toEqual(existing.proxies);
  });

  function deps(env: NodeJS.ProcessEnv, built: BuildOptions[], fail?: Error): GitLabJobDependencies & { out: ReturnType<typeof collector>; err: ReturnType<typeof collector> } {
    const out = collector();
    const err = collector();
    return {
      env,
      cwd: work,
      stdout: out,
      stderr: err,
      out,
      err,
      async build(options) {
        built.push(options);
        if (fail) throw fail;
        return { digest };
      },
    };
  }

  it('logs in, builds to the default destination and writes the dotenv report; the password is never printed', async () => {
    const env = {
      CI_PROJECT_DIR: work,
      CI_REGISTRY: 'r.example',
      CI_REGISTRY_USER: 'gitlab-ci-token',
      CI_REGISTRY_PASSWORD: password,
      CI_REGISTRY_IMAGE: 'r.example/g/p',
      CI_COMMIT_REF_SLUG: 'feature-x',
      DOCKER_CONFIG: path.join(work, '.docker'),
      KILN_BUILD_ARGS: 'A=1',
    };
    const built: BuildOptions[] = [];
    const d = deps(env, built);
    const result = await runGitLabJob(['--snapshot-mode=redo', '--cache=true'], d);
    expect(built).toHaveLength(1);
    expect(built[0]).toMatchObject({ context: work, destinations: ['r.example/g/p:feature-x'], buildArgs: { A: '1' }, snapshotMode: 'redo', cache: true });
    expect(result.dotenvPath).toBe(path.join(work, 'kiln.env'));
    expect(await readFile(result.dotenvPath, 'utf8')).toBe(`KILN_DIGEST=${digest}\nKILN_IMAGE=r.example/g/p@${digest}\nKILN_IMAGES=r.example/g/p@${digest}\n`);
    expect(d.out.text.trim().split('\n').at(-1)).toBe(digest);
    const config = JSON.parse(await readFile(path.join(work, '.docker', 'config.json'), 'utf8')) as { auths: Record<string, unknown> };
    expect(Object.keys(config.auths)).toEqual(['r.example']);
    expect(d.err.text).toContain('CI_REGISTRY (r.example)');
    expect(d.out.text + d.err.text).not.toContain(password);
  });

  it('lets the script arguments override the inputs', async () => {
    const built: BuildOptions[] = [];
    await runGitLabJob(['--destination', 'r.example/other:1', '--dockerfile', 'X.Dockerfile'], deps({ CI_PROJECT_DIR: work, KILN_DESTINATIONS: 'r.example/g/p:1' }, built));
    expect(built[0]?.destinations).toEqual(['r.example/g/p:1', 'r.example/other:1']);
    expect(built[0]?.dockerfile).toBe('X.Dockerfile');
  });

  it('exits 2 with a clear message when nothing names a destination, 1 when the build fails', async () => {
    const built: BuildOptions[] = [];
    const missing = deps({ CI_PROJECT_DIR: work }, built);
    expect(await runGitLabEntry([], missing)).toBe(2);
    expect(missing.err.text).toMatch(/no destination.*CI_REGISTRY_IMAGE/);
    expect(built).toHaveLength(0);

    const failing = deps({ CI_PROJECT_DIR: work, KILN_DESTINATIONS: 'r.example/g/p:1' }, built, new Error('RUN false: exit code 1'));
    expect(await runGitLabEntry([], failing)).toBe(1);
    expect(failing.err.text).toContain('RUN false: exit code 1');

    const badFlag = deps({ CI_PROJECT_DIR: work, KILN_DESTINATIONS: 'r.example/g/p:1' }, built);
    expect(await runGitLabEntry(['--snapshot-mode=fast'], badFlag)).toBe(2);
    expect(await runGitLabEntry(['--dry-run'], badFlag)).toBe(2);
    expect(badFlag.err.text).toMatch(/--snapshot-mode.*\n.*--dry-run/s);
    expect(built).toHaveLength(1);
  });
});
