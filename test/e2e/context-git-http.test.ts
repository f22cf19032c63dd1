// A git context over smart HTTP with credentials: a local server in front of `git http-backend`
// demands Basic auth. The token must reach the server, and appear in no process argument, no
// error message and no file of the cloned context.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSpawnRunner, type ProcessRunner } from '../../src/context/process.js';
import { openBuildContext } from '../../src/context/source.js';
import { GitContextError } from '../../src/context/types.js';
import { walkContext } from '../../src/context/walk.js';
import { commitFiles, startGitHttpServer, type GitHttpServer } from '../harness/git-http-server.js';

const token = 'glpat-VerySecretToken-4242';
let base = '';
let server: GitHttpServer;
let origin = '';
const seenAuth: string[] = [];

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'kiln-git-http-'));
  await commitFiles(join(base, 'repos', 'app.git'), 'main', { Dockerfile: 'FROM http\n' });

  const expected = `Basic ${Buffer.from(`${token}:`).toString('base64')}`;
  server = await startGitHttpServer({
    projectRoot: join(base, 'repos'),
    authorize(request) {
      const auth = request.headers.authorization ?? '';
      seenAuth.push(auth);
      return auth === expected;
    },
  });
  origin = server.origin;
});

afterAll(async () => {
  await server.stop();
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
