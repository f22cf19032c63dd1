// Every context source for real: a directory, tar and tar.gz made by `tar`, standard input fed by
// a `tar` child process, an https URL served locally with a self-signed certificate, and git
// repositories made with `git init` and cloned over file://.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBuildContext } from '../../src/context/source.js';
import { ContextFetchError, ContextSourceError, ContextSpecError, type BuildContext } from '../../src/context/types.js';
import { walkContext, type ContextEntry } from '../../src/context/walk.js';

let base = '';
let ctx = '';

/** What matters of a listing for comparing two sources of the same tree. */
function summary(entries: ContextEntry[]): string[] {
  return entries.map((e) => `${e.path} ${e.type} ${e.type === 'file' ? e.size : ''} ${((e.mode ?? 0) & 0o7777).toString(8)} ${e.linkTarget ?? ''}`);
}

async function listing(context: BuildContext): Promise<string[]> {
  return summary(await walkContext(context.root, context.ignore));
}

async function withContext<T>(promise: Promise<BuildContext>, use: (c: BuildContext) => Promise<T>): Promise<T> {
  const context = await promise;
  try {
    return await use(context);
  } finally {
    await context.cleanup();
  }
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'kiln-ctx-'));
  ctx = join(base, 'ctx');
  await mkdir(join(ctx, 'app', 'sub'), { recursive: true });
  await mkdir(join(ctx, 'secret'));
  await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY app /app\n');
  await writeFile(join(ctx, '.dockerignore'), '*.log\nsecret\n');
  await writeFile(join(ctx, 'app', 'main.txt'), 'hello\n');
  await writeFile(join(ctx, 'app', 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
  await writeFile(join(ctx, 'app', 'sub', 'deep.txt'), 'deep\n');
  await writeFile(join(ctx, 'debug.log'), 'noise\n');
  await writeFile(join(ctx, 'secret', 'key'), 'k\n');
  await symlink('app/main.txt', join(ctx, 'link'));
  await symlink('/etc/passwd', join(ctx, 'abs-link'));
});

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('directory contexts', () => {
  it('uses a plain path in place and applies .dockerignore', async () => {
    await withContext(openBuildContext({ context: 'ctx', cwd: base }), async (c) => {
      expect(c.root).toBe(ctx);
      expect(c.kind).toBe('dir');
      expect(c.dockerfile).toEqual({ path: join(ctx, 'Dockerfile'), contents: 'FROM scratch\nCOPY app /app\n' });
      expect(c.ignoreFile).toBe(join(ctx, '.dockerignore'));
      const entries = await walkContext(c.root, c.ignore);
      expect(entries.map((e) => e.path)).toEqual([
        '.dockerignore',
        'Dockerfile',
        'abs-link',
        'app',
        'app/main.txt',
        'app/run.sh',
        'app/sub',
        'app/sub/deep.txt',
        'link',
      ]);
      const link = entries.find((e) => e.path === 'abs-link');
      expect(link).toMatchObject({ type: 'symlink', linkTarget: '/etc/passwd' });
    });
    expect(existsSync(ctx)).toBe(true);
  });

  it('takes dir://, a Dockerfile outside the context, and its own <Dockerfile>.dockerignore', async () => {
    const outside = join(base, 'build', 'web.Dockerfile');
    await mkdir(join(base, 'build'), { recursive: true });
    await writeFile(outside, 'FROM scratch\n');
    await writeFile(`${outside}.dockerignore`, 'app/sub\n');
    await withContext(openBuildContext({ context: `dir://${ctx}`, dockerfile: outside }), async (c) => {
      expect(c.dockerfile.path).toBe(outside);
      expect(c.ignoreFile).toBe(`${outside}.dockerignore`);
      const paths = (await walkContext(c.root, c.ignore)).map((e) => e.path);
      expect(paths).toContain('debug.log');
      expect(paths).not.toContain('app/sub/deep.txt');
    });
  });

  it('applies --context-sub-path and refuses one that leaves the context', async () => {
    await writeFile(join(ctx, 'app', 'Dockerfile'), 'FROM scratch\n');
    try {
      await withContext(openBuildContext({ context: ctx, contextSubPath: 'app', cwd: base }), async (c) => {
        expect(c.root).toBe(join(ctx, 'app'));
        expect(c.dockerfile.path).toBe(join(ctx, 'app', 'Dockerfile'));
      });
      await expect(openBuildContext({ context: ctx, contextSubPath: '../', cwd: base })).rejects.toThrow(ContextSourceError);
      await expect(openBuildContext({ context: ctx, contextSubPath: 'link', cwd: base })).rejects.toThrow(/not a directory/);
    } finally {
      await rm(join(ctx, 'app', 'Dockerfile'));
    }
  });

  it('reads the Dockerfile from standard input with -f -', async () => {
    const stdin = Readable.from([Buffer.from('FROM busybox\n')]);
    await withContext(openBuildContext({ context: ctx, dockerfile: '-', stdin }), async (c) => {
      expect(c.dockerfile).toEqual({ path: null, contents: 'FROM busybox\n' });
      expect(c.ignoreFile).toBe(join(ctx, '.dockerignore'));
    });
  });

  it('names a missing context or Dockerfile', async () => {
    await expect(openBuildContext({ context: join(base, 'nope') })).rejects.toThrow(/does not exist/);
    await expect(openBuildContext({ context: ctx, dockerfile: 'Nope.Dockerfile', cwd: base })).rejects.toThrow(/Nope\.Dockerfile.*not found/);
  });
});

describe('tar contexts', () => {
  let expected: string[] = [];
  beforeAll(async () => {
    execFileSync('tar', ['-cf', join(base, 'ctx.tar'), '-C', ctx, '.']);
    execFileSync('tar', ['-czf', join(base, 'ctx.tgz'), '-C', ctx, '.']);
    await withContext(openBuildContext({ context: ctx }), async (c) => {
      expected = await listing(c);
    });
  });

  for (const file of ['ctx.tar', 'ctx.tgz']) {
    it(`extracts tar://${file} (format by magic bytes) to the same tree, then cleans up`, async () => {
      const c = await openBuildContext({ context: `tar://${file}`, cwd: base });
      expect(c.kind).toBe('tar');
      expect(await listing(c)).toEqual(expected);
      expect(c.dockerfile.contents).toBe('FROM scratch\nCOPY app /app\n');
      expect(await readlink(join(c.root, 'abs-link'))).toBe('/etc/passwd');
      expect((await lstat(join(c.root, 'app', 'run.sh'))).mode & 0o777).toBe(0o755);
      await c.cleanup();
      expect(existsSync(c.root)).toBe(false);
    });
  }

  it('reads a tar.gz piped from another process with --context -', async () => {
    const child = spawn('tar', ['-czf', '-', '-C', ctx, '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await withContext(openBuildContext({ context: '-', stdin: child.stdout }), async (c) => {
      expect(c.kind).toBe('stdin');
      expect(await listing(c)).toEqual(expected);
    });
  });

  it('reads a plain tar with tar://stdin', async () => {
    const child = spawn('tar', ['-cf', '-', '-C', ctx, '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await withContext(openBuildContext({ context: 'tar://stdin', stdin: child.stdout }), async (c) => {
      expect(await listing(c)).toEqual(expected);
    });
  });

  it('takes a lone Dockerfile on stdin with - (docker build -), but not with tar://stdin', async () => {
    await withContext(openBuildContext({ context: '-', stdin: Readable.from([Buffer.from('FROM alpine\nRUN true\n')]) }), async (c) => {
      expect(c.dockerfile).toEqual({ path: null, contents: 'FROM alpine\nRUN true\n' });
      expect(await walkContext(c.root, c.ignore)).toEqual([]);
    });
    await expect(openBuildContext({ context: 'tar://stdin', stdin: Readable.from([Buffer.from('FROM alpine\n')]) })).rejects.toThrow(
      /not a tar or tar\.gz/,
    );
    await expect(openBuildContext({ context: '-', dockerfile: '-', stdin: Readable.from([]) })).rejects.toThrow(ContextSpecError);
  });

  it('reports a missing archive and refuses compressions it cannot read', async () => {
    await expect(openBuildContext({ context: 'tar://missing.tar', cwd: base })).rejects.toThrow(/tar:\/\/missing\.tar: cannot read/);
    // Only the magic bytes matter: detection happens before any decompression.
    await writeFile(join(base, 'ctx.tar.bz2'), Buffer.concat([Buffer.from('BZh91AY&SY'), Buffer.alloc(600, 1)]));
    await expect(openBuildContext({ context: `tar://${join(base, 'ctx.tar.bz2')}` })).rejects.toThrow(/bzip2-compressed archives are not supported/);
  });
});

describe('https URL contexts', () => {
  let server: Server;
  let origin = '';
  let dispatcher: Agent;

  beforeAll(async () => {
    const key = join(base, 'tls.key');
    const cert = join(base, 'tls.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], {
      stdio: 'ignore',
    });
    const archive = await readFile(join(base, 'ctx.tgz'));
    server = createServer({ key: await readFile(key), cert: await readFile(cert) }, (req, res) => {
      if (req.url === '/ctx.tgz') {
        res.writeHead(200, { 'content-type': 'application/gzip' });
        // Several writes: the extractor must cope with a stream that arrives in pieces.
        for (let i = 0; i < archive.length; i += 1000) res.write(archive.subarray(i, i + 1000));
        res.end();
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('no such context');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    dispatcher = new Agent({ connect: { ca: await readFile(cert) } });
  });

  afterAll(async () => {
    await dispatcher.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('downloads and extracts a tarball', async () => {
    await withContext(openBuildContext({ context: `${origin}/ctx.tgz`, dispatcher }), async (c) => {
      expect(c.kind).toBe('url');
      expect(c.dockerfile.contents).toBe('FROM scratch\nCOPY app /app\n');
      expect((await walkContext(c.root, c.ignore)).map((e) => e.path)).toContain('app/sub/deep.txt');
    });
  });

  it('fails clearly on an HTTP error', async () => {
    const failure = openBuildContext({ context: `${origin}/missing.tgz?token=abc`, dispatcher });
    await expect(failure).rejects.toThrow(ContextFetchError);
    await expect(failure).rejects.toThrow(/HTTP 404: no such context/);
    await expect(failure).rejects.not.toThrow(/token=abc/);
  });

  it('fails clearly when the certificate is not trusted', async () => {
    await expect(openBuildContext({ context: `${origin}/ctx.tgz` })).rejects.toThrow(ContextFetchError);
  });
});

describe('git contexts', () => {
  let repo = '';
  let first = '';
  let second = '';
  const git = (...args: string[]): string =>
    execFileSync('git', ['-c', 'user.name=kiln', '-c', 'user.email=kiln@example.com', '-c', 'init.defaultBranch=main', ...args], {
      cwd: repo,
      encoding: 'utf8',
    }).trim();

  beforeAll(async () => {
    repo = join(base, 'repo.git');
    await mkdir(join(repo, 'docker'), { recursive: true });
    git('init', '--quiet', '.');
    await writeFile(join(repo, 'Dockerfile'), 'FROM one\n');
    await writeFile(join(repo, 'docker', 'Dockerfile'), 'FROM sub\n');
    git('add', '.');
    git('commit', '--quiet', '-m', 'one');
    first = git('rev-parse', 'HEAD');
    await writeFile(join(repo, 'Dockerfile'), 'FROM two\n');
    git('commit', '--quiet', '-am', 'two');
    second = git('rev-parse', 'HEAD');
    git('checkout', '--quiet', '-b', 'dev');
    await writeFile(join(repo, 'Dockerfile'), 'FROM dev\n');
    git('commit', '--quiet', '-am', 'dev');
    git('checkout', '--quiet', 'main');
  });

  const url = (): string => `file://${repo}`;
  const dockerfileOf = async (context: string, extra: Partial<Parameters<typeof openBuildContext>[0]> = {}): Promise<string> =>
    withContext(openBuildContext({ context, ...extra }), async (c) => {
      expect(c.kind).toBe('git');
      return c.dockerfile.contents;
    });

  it('clones the default branch', async () => {
    expect(await dockerfileOf(url())).toBe('FROM two\n');
  });

  it('selects a branch (Docker #ref, kaniko #refs/heads/…, --git branch=)', async () => {
    expect(await dockerfileOf(`${url()}#dev`)).toBe('FROM dev\n');
    expect(await dockerfileOf(`${url()}#refs/heads/dev#`)).toBe('FROM dev\n');
    expect(await dockerfileOf(url(), { git: { branch: 'dev' } })).toBe('FROM dev\n');
  });

  it('fetches every branch with --git single-branch=false, only the one otherwise', async () => {
    const branches = async (git: Record<string, string>): Promise<string[]> =>
      withContext(openBuildContext({ context: url(), git }), async (c) =>
        execFileSync('git', ['branch', '-r', '--format=%(refname:short)'], { cwd: c.root, encoding: 'utf8' }).split('\n').filter(Boolean).sort(),
      );
    expect(await branches({ 'single-branch': 'false' })).toEqual(['origin/dev', 'origin/main']);
    expect(await branches({})).toEqual([]);
  });

  it('checks out a commit (Docker #sha and kaniko #ref#sha)', async () => {
    expect(await dockerfileOf(`${url()}#${first}`)).toBe('FROM one\n');
    expect(await dockerfileOf(`${url()}#refs/heads/main#${first}`)).toBe('FROM one\n');
    expect(second).not.toBe(first);
  });

  it('uses a subdirectory (Docker #ref:dir) and --context-sub-path', async () => {
    expect(await dockerfileOf(`${url()}#main:docker`)).toBe('FROM sub\n');
    expect(await dockerfileOf(url(), { contextSubPath: 'docker' })).toBe('FROM sub\n');
    await expect(openBuildContext({ context: `${url()}#main:nope` })).rejects.toThrow(/"nope" does not exist/);
  });

  it('reports a missing branch with git’s message and removes the clone', async () => {
    const scratch = join(base, 'scratch');
    await mkdir(scratch);
    await expect(openBuildContext({ context: `${url()}#no-such-branch`, tmpDir: scratch })).rejects.toThrow(/fetching no-such-branch failed/);
    expect(await readdir(scratch)).toEqual([]);
  });
});
