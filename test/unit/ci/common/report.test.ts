import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { locateErrorInSource, pinReference } from '../../../../src/ci/build-report.js';
import { writeDockerConfig } from '../../../../src/ci/docker-config.js';
import { privilegedBuildFlag, privilegedInvocation, removeDirectory } from '../../../../src/ci/privilege.js';
import { writeSecretFiles } from '../../../../src/ci/secret-files.js';

describe('build errors located in the Dockerfile', () => {
  it('splits FILE:LINE[:COLUMN]: message when FILE is the Dockerfile of the build', () => {
    expect(locateErrorInSource('ctx/Dockerfile:3: RUN false failed: exit code 1', 'ctx/Dockerfile')).toEqual({ file: 'ctx/Dockerfile', line: 3, message: 'RUN false failed: exit code 1' });
    expect(locateErrorInSource('my app/Dockerfile:7:12: unknown instruction: FORM', 'my app/Dockerfile')).toEqual({ file: 'my app/Dockerfile', line: 7, message: 'unknown instruction: FORM' });
    expect(locateErrorInSource('no --destination given', 'Dockerfile')).toBeUndefined();
    expect(locateErrorInSource('127.0.0.1:5000: connection refused', 'Dockerfile')).toBeUndefined();
    expect(locateErrorInSource('Dockerfile:x: odd', 'Dockerfile')).toBeUndefined();
    expect(locateErrorInSource('Dockerfile:1: odd', '')).toBeUndefined();
  });
  it('pins references to a digest', () => {
    expect(pinReference('r.example/a:1', 'sha256:ab')).toBe('r.example/a:1@sha256:ab');
    expect(pinReference('r.example/a@sha256:00', 'sha256:ab')).toBe('r.example/a@sha256:ab');
  });
});

describe('privilege', () => {
  it('builds in process as root and re-runs the bundle under sudo -n otherwise', () => {
    expect(privilegedInvocation(0, '/usr/bin/node', '/a/dist/github-main.js', '/t/req.json')).toBeUndefined();
    expect(privilegedInvocation(1001, '/usr/bin/node', '/a/dist/github-main.js', '/t/req.json')).toEqual({
      command: 'sudo',
      args: ['-n', '--', '/usr/bin/node', '/a/dist/github-main.js', privilegedBuildFlag, '/t/req.json'],
    });
  });
  it('removes a directory without sudo when it can', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-ci-rm-'));
    await writeFile(path.join(dir, 'f'), 'x');
    const calls: string[][] = [];
    await removeDirectory(dir, 1001, async (invocation) => (calls.push(invocation.args), 0));
    await expect(stat(dir)).rejects.toThrow(/ENOENT/);
    expect(calls).toEqual([]);
  });
});

describe('files the wrappers write', () => {
  it('copies the existing Docker config and merges the login into the copy only', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-ci-config-'));
    try {
      const userConfig = path.join(dir, 'user');
      await mkdir(userConfig);
      const original = JSON.stringify({ auths: { 'other.example': { auth: 'b3RoZXI6cHc=' } } });
      await writeFile(path.join(userConfig, 'config.json'), original);
      const fresh = await writeDockerConfig(path.join(dir, 'fresh'), [{ registry: 'r.example:5000', username: 'u', password: 'p' }], { DOCKER_CONFIG: userConfig });
      const merged = JSON.parse(await readFile(path.join(fresh, 'config.json'), 'utf8')) as { auths: Record<string, { auth: string }> };
      expect(Object.keys(merged.auths).sort()).toEqual(['other.example', 'r.example:5000']);
      expect(Buffer.from(merged.auths['r.example:5000']?.auth ?? '', 'base64').toString()).toBe('u:p');
      expect(await readFile(path.join(userConfig, 'config.json'), 'utf8')).toBe(original);
      expect((await stat(path.join(fresh, 'config.json'))).mode & 0o777).toBe(0o600);
      const alone = await writeDockerConfig(path.join(dir, 'alone'), [{ registry: 'r.example', username: 'u', password: 'p' }], { DOCKER_CONFIG: path.join(dir, 'missing') });
      expect(Object.keys((JSON.parse(await readFile(path.join(alone, 'config.json'), 'utf8')) as { auths: object }).auths)).toEqual(['r.example']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  it('writes secret values to 0600 files named by position, not by id', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-ci-secrets-'));
    try {
      const files = await writeSecretFiles(path.join(dir, 'secrets'), [{ id: '../escape', value: 's1' }]);
      const file = files.get('../escape') ?? '';
      expect(path.dirname(file)).toBe(path.join(dir, 'secrets'));
      expect(await readFile(file, 'utf8')).toBe('s1');
      expect((await stat(file)).mode & 0o777).toBe(0o600);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
