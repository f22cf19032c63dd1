/** ADD of URLs (a local HTTP server) and git repositories (the system git), end to end on disk. */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createSpawnRunner } from '../../src/context/process.js';
import { ChecksumMismatchError, copyIntoRoot, CopyError, RemoteSourceError, type CopyIntoRootOptions } from '../../src/build/copy/index.js';
import { describeTree, instruction, tempDir } from '../unit/build/copy-helpers.js';
import { makeTar } from '../unit/rootfs/helpers.js';

const lastModified = 'Wed, 21 Oct 2015 07:28:00 GMT';
let server: http.Server;
let base: string;
let tarGz: Buffer;

beforeAll(async () => {
  tarGz = zlib.gzipSync(await makeTar([{ name: 'inside.txt', body: 'in the tar' }]));
  server = http.createServer((req, res) => {
    if (req.url === '/files/tool.tar.gz') {
      res.writeHead(200, { 'last-modified': lastModified, 'content-disposition': 'attachment; filename="other-name.bin"' });
      res.end(tarGz);
    } else if (req.url === '/files/data.txt') {
      res.writeHead(200);
      res.end('data\n');
    } else if (req.url === '/moved') {
      res.writeHead(302, { location: '/files/data.txt' });
      res.end();
    } else if (req.url === '/') {
      res.writeHead(200);
      res.end('index');
    } else {
      res.writeHead(404);
      res.end('no such thing');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
});

let context: string;
let dest: string;
let cleanups: Array<() => Promise<void>>;

beforeEach(async () => {
  const c = await tempDir();
  const d = await tempDir();
  cleanups = [c.cleanup, d.cleanup];
  context = c.dir;
  dest = d.dir;
});

afterEach(async () => {
  for (const c of cleanups) await c();
});

const run = (text: string, extra: Partial<CopyIntoRootOptions> = {}) =>
  copyIntoRoot({ instruction: instruction(text), sourceRoot: context, destRoot: dest, workdir: '/', ...extra });

describe('ADD <url>', () => {
  it('downloads into dest/ under the URL\'s name, 0600, mtime from Last-Modified, never extracted', async () => {
    const result = await run(`ADD ${base}/files/tool.tar.gz /downloads/`);
    const tree = await describeTree(dest);
    expect(tree['downloads/tool.tar.gz']).toMatchObject({ type: 'file', mode: '0600', owner: '0:0' });
    expect((await stat(path.join(dest, 'downloads/tool.tar.gz'))).mtimeMs).toBe(Date.parse(lastModified));
    expect(Object.keys(tree)).toEqual(['downloads', 'downloads/tool.tar.gz']);
    expect(result.changes.changes.map((c) => c.path)).toEqual(['downloads', 'downloads/tool.tar.gz']);
  });

  it('names the file after the destination without a slash; follows redirects; --chmod and --chown apply', async () => {
    await run(`ADD --chmod=644 --chown=7:8 ${base}/moved /etc/data.conf`);
    await run(`ADD ${base}/ /x/`);
    const tree = await describeTree(dest);
    expect(tree['etc/data.conf']).toMatchObject({ content: 'data\n', mode: '0644', owner: '7:8' });
    expect(tree['x/__unnamed__']?.content).toBe('index');
  });

  it('extracts a downloaded archive only with --unpack', async () => {
    await run(`ADD --unpack ${base}/files/tool.tar.gz /unpacked/`);
    const tree = await describeTree(dest);
    expect(tree['unpacked/inside.txt']?.content).toBe('in the tar');
    expect(tree['unpacked/tool.tar.gz']).toBeUndefined();
  });

  it('verifies --checksum, naming both digests on a mismatch', async () => {
    const good = `sha256:${createHash('sha256').update(tarGz).digest('hex')}`;
    await run(`ADD --checksum=${good} ${base}/files/tool.tar.gz /ok/`);
    expect((await describeTree(dest))['ok/tool.tar.gz']?.type).toBe('file');
    const bad = `sha256:${'0'.repeat(64)}`;
    let error: unknown;
    try {
      await run(`ADD --checksum=${bad} ${base}/files/tool.tar.gz /bad/`);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ChecksumMismatchError);
    expect((error as Error).message).toContain(bad);
    expect((error as Error).message).toContain(good);
    expect(Object.keys(await describeTree(dest)).some((p) => p.startsWith('bad'))).toBe(false);
  });

  it('fails on an HTTP error with the status', async () => {
    let error: unknown;
    try {
      await run(`ADD ${base}/missing /x/`);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(RemoteSourceError);
    expect((error as RemoteSourceError).status).toBe(404);
  });
});

describe('ADD <git repository>', () => {
  let repo: string;
  let commit: string;
  let repoCleanup: () => Promise<void>;

  const git = (cwd: string, ...args: string[]): string => {
    const result = spawnSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', '-c', 'init.defaultBranch=main', ...args], { cwd, encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`git ${args.join(' ')}: ${result.stderr}`);
    return result.stdout.trim();
  };

  beforeAll(async () => {
    const t = await tempDir('kiln-copy-git-');
    repo = t.dir;
    repoCleanup = t.cleanup;
    await mkdir(path.join(repo, 'sub'));
    await writeFile(path.join(repo, 'README'), 'readme\n');
    await writeFile(path.join(repo, 'sub/run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    git(repo, 'init', '--quiet', '.');
    git(repo, 'add', '.');
    git(repo, 'commit', '--quiet', '-m', 'one');
    commit = git(repo, 'rev-parse', 'HEAD');
  });

  afterAll(async () => {
    await repoCleanup();
  });

  /** The https URL the Dockerfile names is rewritten by git itself to the local fixture. */
  const gitOptions = () => ({
    runner: createSpawnRunner(),
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: context,
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: `url.file://${repo}.insteadOf`,
      GIT_CONFIG_VALUE_0: 'https://git.example.invalid/repo.git',
    },
  });

  it('copies the checkout without .git, or with it under --keep-git-dir', async () => {
    await run('ADD https://git.example.invalid/repo.git#main /src/', { git: gitOptions() });
    await run('ADD --keep-git-dir https://git.example.invalid/repo.git /kept/', { git: gitOptions() });
    await run('ADD https://git.example.invalid/repo.git#main:sub /only-sub/', { git: gitOptions() });
    const tree = await describeTree(dest);
    expect(tree['src/README']).toMatchObject({ content: 'readme\n', owner: '0:0' });
    expect(tree['src/sub/run.sh']?.mode).toBe('0755');
    expect(tree['src/.git']).toBeUndefined();
    expect(tree['kept/.git']?.type).toBe('dir');
    expect(Object.keys(tree).filter((p) => p.startsWith('only-sub')).sort()).toEqual(['only-sub', 'only-sub/run.sh']);
  });

  it('checks --checksum against the commit', async () => {
    await run(`ADD --checksum=${commit} https://git.example.invalid/repo.git#main /ok/`, { git: gitOptions() });
    let error: unknown;
    try {
      await run(`ADD --checksum=${'a'.repeat(40)} https://git.example.invalid/repo.git#main /bad/`, { git: gitOptions() });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(CopyError);
    expect((error as Error).message).toContain(commit);
  });
});
