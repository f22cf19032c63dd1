/** `kiln --dry-run` as a user runs it (the bundled CLI): the plan, the context files, located errors. */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const cli = path.resolve(import.meta.dirname, '../../dist/cli.js');
const run = promisify(execFile);

async function kiln(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { cwd });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code: number; stdout: string; stderr: string };
    return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
  }
}

describe('kiln --dry-run', () => {
  let context: string;

  beforeAll(async () => {
    context = await mkdtemp(path.join(os.tmpdir(), 'kiln-dry-run-'));
    await mkdir(path.join(context, 'src'));
    await writeFile(path.join(context, 'src/a.txt'), 'a');
    await writeFile(path.join(context, 'src/b.txt'), 'b');
    await writeFile(path.join(context, 'secret.key'), 'k');
    await writeFile(path.join(context, '.dockerignore'), '*.key\n');
    await writeFile(
      path.join(context, 'Dockerfile'),
      [
        'ARG BASE=registry.invalid/base:1',
        'FROM ${BASE} AS deps',
        'RUN echo deps',
        'FROM ${BASE} AS unused',
        'RUN echo never',
        'FROM deps',
        'ARG WHO=world',
        'ENV GREETING="hello ${WHO}"',
        'COPY src/ /app/',
        'COPY *.key /keys/',
        'LABEL who=$WHO',
        '',
      ].join('\n'),
    );
  });
  afterAll(async () => {
    await rm(context, { recursive: true, force: true });
  });

  it('prints stages in build order, skips unused ones, expands, and lists the context files each COPY takes', async () => {
    const result = await kiln(['--dry-run', '--context', context, '--build-arg', 'WHO=kiln'], context);
    expect(result.stderr).not.toMatch(/error/i);
    expect(result.code).toBe(0);
    const out = result.stdout;
    expect(out.indexOf('stage 0 deps')).toBeLessThan(out.indexOf('stage 2 stage-2'));
    expect(out.indexOf('stage 2 stage-2')).toBeLessThan(out.indexOf('stage 1 unused'));
    expect(out).toMatch(/stage 1 unused \(SKIPPED/);
    expect(out).toContain('ENV GREETING="hello kiln"');
    expect(out).toContain('LABEL who=kiln');
    expect(out).toMatch(/src\/: 2 file\(s\): src\/a\.txt, src\/b\.txt/);
    expect(out).toMatch(/\*\.key: no match/);
  });

  it('fails with the file and line of an invalid instruction, contacting nothing', async () => {
    await writeFile(path.join(context, 'Bad.Dockerfile'), 'FROM scratch\nCOPY --chmod=999 a /b\n');
    const result = await kiln(['--dry-run', '-c', context, '-f', 'Bad.Dockerfile'], context);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/Bad\.Dockerfile:2: invalid chmod parameter/);
  });

  it('names an unknown --target and the stages there are', async () => {
    const result = await kiln(['--dry-run', '-c', context, '--target', 'nope'], context);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/nope/);
    expect(result.stderr).toMatch(/deps/);
  });
});
