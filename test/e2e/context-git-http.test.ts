// A git context over smart HTTP with credentials: a local server in front of `git http-backend`
// demands Basic auth. The token must reach the server, and appear in no process argument, no
// error message and no file of the cloned context.
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSpawnRunner, type ProcessRunner } from '../../src/context/process.js';
import { openBuildContext } from '../../src/context/source.js';
import { GitContextError } from '../../src/context/types.js';
import { walkContext } from '../../src/context/walk.js';

const token = 'glpat-VerySecretToken-4242';
let base = '';
let server: Server;
let origin = '';
const seenAuth: string[] = [];

/** Runs `git http-backend` as a CGI program for one request. */
function cgi(projectRoot: string, req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const child = spawn('git', ['http-backend'], {
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      GIT_PROJECT_ROOT: projectRoot,
      GIT_HTTP_EXPORT_ALL: '1',
      REQUEST_METHOD: req.method ?? 'GET',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      HTTP_CONTENT_ENCODING: req.headers['content-encoding'] ?? '',
      GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
      REMOTE_USER: 'kiln',
      REMOTE_ADDR: '127.0.0.1',
    },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  req.pipe(child.stdin);
  const out: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.on('close', () => {
    const all = Buffer.concat(out);
    const split = all.indexOf('\r\n\r\n');
    const head = all.subarray(0, split).toString('latin1');
    let status = 200;
    const headers: Record<string, string> = {};
    for (const line of head.split('\r\n')) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === 'status') status = Number(value.split(' ')[0]);
      else headers[name] = value;
    }
    res.writeHead(status, headers);
    res.end(all.subarray(split + 4));
  });
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'kiln-git-http-'));
  const repo = join(base, 'repos', 'app.git');
  await mkdir(repo, { recursive: true });
  const git = (...args: string[]): void => {
    execFileSync('git', ['-c', 'user.name=kiln', '-c', 'user.email=kiln@example.com', '-c', 'init.defaultBranch=main', ...args], { cwd: repo });
  };
  git('init', '--quiet', '.');
  await writeFile(join(repo, 'Dockerfile'), 'FROM http\n');
  git('add', '.');
  git('commit', '--quiet', '-m', 'one');

  const expected = `Basic ${Buffer.from(`${token}:`).toString('base64')}`;
  server = createServer((req, res) => {
    const auth = req.headers.authorization ?? '';
    seenAuth.push(auth);
    if (auth !== expected) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="kiln"' });
      res.end('auth required');
      return;
    }
    cgi(join(base, 'repos'), req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(base, { recursive: true, force: true });
});

describe('git context over authenticated HTTP', () => {
  it('sends GIT_TOKEN as a header, never as an argument or into the clone', async () => {
    const argv: string[][] = [];
    const real = createSpawnRunner();
    const runner: ProcessRunner = {
      run(program, args, options) {
        argv.push([program, ...args]);
        return real.run(program, args, options);
      },
    };
    const context = await openBuildContext({
      context: `${origin}/app.git#main`,
      env: { ...process.env, GIT_TOKEN: token },
      runner,
    });
    try {
      expect(context.dockerfile.contents).toBe('FROM http\n');
      expect(seenAuth.some((a) => a.startsWith('Basic '))).toBe(true);
      expect(argv.flat().join(' ')).not.toContain(token);
      expect(argv.flat().join(' ')).not.toContain(Buffer.from(`${token}:`).toString('base64'));
      for (const entry of await walkContext(context.root, context.ignore)) {
        if (entry.type !== 'file') continue;
        const text = await readFile(join(context.root, entry.path), 'latin1');
        expect(text, entry.path).not.toContain(token);
        expect(text, entry.path).not.toContain(Buffer.from(`${token}:`).toString('base64'));
      }
    } finally {
      await context.cleanup();
    }
  });

  it('fails without prompting when the credentials are wrong, without echoing them', async () => {
    const wrong = 'wrong-token-123456';
    const failure = openBuildContext({ context: `${origin}/app.git`, env: { ...process.env, GIT_TOKEN: wrong } });
    const err = await failure.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(GitContextError);
    expect((err as Error).message).not.toContain(wrong);
    expect((err as Error).message).toMatch(/fetching HEAD failed/);
  });
});
