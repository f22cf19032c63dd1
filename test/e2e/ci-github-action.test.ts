/**
 * The bundled GitHub Action run as the runner runs it: `node dist/github-main.js` with INPUT_*,
 * GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_STATE and RUNNER_TEMP, then `dist/github-post.js` with
 * the saved state as STATE_*; against a real registry (plain and htpasswd), checked with skopeo.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBusyboxImage } from '../harness/base-images.js';
import { actionStepEnv as stepEnv, parseFileCommands, postStepEnv } from '../harness/github-action.js';
import { runTool } from '../harness/process.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';

const dist = path.resolve(import.meta.dirname, '../../dist');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function runNode(script: string, env: NodeJS.ProcessEnv, cwd: string, args: string[] = []): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [script, ...args], { env, cwd, maxBuffer: 64 << 20, encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

describe.each(['plain', 'basic'] as const)('the GitHub Action against a %s registry', (mode) => {
  let registry: TestRegistry;
  let work: string;
  let base: string;
  let counter = 0;

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'kiln-gha-e2e-'));
    registry = await startRegistry(mode);
    base = (await pushBusyboxImage({ registry: registry.host, skopeoDestArgs: registry.skopeoDestArgs() })).reference;
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  /** A fresh workspace, runner temp and step files; the Dockerfile goes in workspace/app. */
  async function step(dockerfile: string) {
    const root = path.join(work, `run-${++counter}`);
    const files = {
      workspace: path.join(root, 'workspace'),
      temp: path.join(root, 'runner-temp'),
      home: path.join(root, 'home'),
      output: path.join(root, 'output'),
      summary: path.join(root, 'summary'),
      state: path.join(root, 'state'),
    };
    for (const dir of [files.workspace, files.temp, files.home, path.join(files.workspace, 'app')]) await mkdir(dir, { recursive: true });
    for (const file of [files.output, files.summary, files.state]) await writeFile(file, '');
    await writeFile(path.join(files.workspace, 'app', 'Dockerfile'), dockerfile.replaceAll('BASE_IMAGE', base));
    await writeFile(path.join(files.workspace, 'app', 'message.txt'), 'from the context\n');
    return files;
  }

  /** skopeo inspect takes the copy flags without their `--src-` prefix. */
  const inspectArgs = (): string[] => registry.skopeoSrcArgs().map((arg) => arg.replace(/^--src-/, '--'));
  const credentials = (): Record<string, string> => (mode === 'basic' ? { username: registry.username, password: registry.password } : {});

  it('builds, pushes, sets outputs and a summary, never shows the password; post removes the credentials', async () => {
    // The RUN fails unless the secret reached it; its line names only the secret's md5.
    const md5 = createHash('md5').update('tok-value').digest('hex');
    const files = await step(
      ['FROM BASE_IMAGE', 'ARG GREETING', 'COPY message.txt /message.txt', `RUN --mount=type=secret,id=token test "$(md5sum < /run/secrets/token | cut -c1-32)" = ${md5} && echo "$GREETING" > /greeting`, ''].join('\n'),
    );
    const tags = [`${registry.host}/gha/app:1`, `${registry.host}/gha/app:latest`];
    const env = stepEnv(files, {
      context: 'app',
      tags: tags.join(','),
      'build-args': 'GREETING=hello, world',
      labels: 'org.example.ci=github',
      secrets: 'token=tok-value',
      push: 'true',
      ...credentials(),
    });
    const main = await runNode(path.join(dist, 'github-main.js'), env, files.workspace);
    expect(main.stderr + main.stdout).not.toMatch(/::error/);
    expect(main.code).toBe(0);

    const outputs = parseFileCommands(await readFile(files.output, 'utf8'));
    const { stdout: inspected } = await runTool('skopeo', ['inspect', ...inspectArgs(), `docker://${tags[0]}`]);
    const remote = JSON.parse(inspected) as { Digest: string; Labels: Record<string, string> };
    expect(outputs.digest).toBe(remote.Digest);
    expect(remote.Labels).toMatchObject({ 'org.example.ci': 'github' });
    expect(outputs.images?.split('\n')).toEqual(tags.map((tag) => `${tag}@${remote.Digest}`));
    const { stdout: rawConfig } = await runTool('skopeo', ['inspect', '--config', '--raw', ...inspectArgs(), `docker://${tags[1]}`]);
    const configDigest = `sha256:${createHash('sha256').update(rawConfig).digest('hex')}`;
    expect(outputs.imageid).toBe(configDigest);
    // The build argument kept its comma (build-args is a newline list).
    expect(rawConfig).toContain('GREETING=hello, world');
    const metadata = JSON.parse(outputs.metadata ?? '{}') as Record<string, unknown>;
    expect(metadata['containerimage.digest']).toBe(remote.Digest);
    expect((metadata['kiln.layers'] as unknown[]).length).toBe(3);

    const summary = await readFile(files.summary, 'utf8');
    expect(summary).toContain(remote.Digest);
    expect(summary).toContain(`${tags[0]}@${remote.Digest}`);
    expect(summary).toMatch(/COPY message.txt \/message.txt/);
    expect(summary).toMatch(/\d+\.\d\d s/);

    const state = parseFileCommands(await readFile(files.state, 'utf8'));
    const workDir = state['kiln-work-dir'] ?? '';
    expect(path.dirname(workDir)).toBe(files.temp);
    if (mode === 'basic') {
      // The credentials: a fresh DOCKER_CONFIG under RUNNER_TEMP, the masked password first on stdout.
      expect(state['kiln-docker-config']).toBe(path.join(workDir, 'docker-config'));
      expect(await readFile(path.join(workDir, 'docker-config', 'config.json'), 'utf8')).toContain(registry.host);
      expect(main.stdout.split('\n')[0]).toBe(`::add-mask::${registry.password}`);
    }
    const masked = main.stdout.split('\n').filter((line) => !line.startsWith('::add-mask::')).join('\n');
    for (const secret of [registry.password, 'tok-value']) {
      expect(masked).not.toContain(secret);
      expect(main.stderr).not.toContain(secret);
      expect(JSON.stringify(outputs)).not.toContain(secret);
      expect(summary).not.toContain(secret);
    }
    expect(main.stdout).toContain('::add-mask::tok-value');
    // The build runs in a group, with workflow commands off so RUN output cannot issue any.
    expect(main.stdout).toMatch(/^::group::Build\n::stop-commands::([0-9a-f-]+)\n::\1::\n::endgroup::$/m);

    const post = await runNode(path.join(dist, 'github-post.js'), postStepEnv(env, state), files.workspace);
    expect(post.code).toBe(0);
    expect(await readdir(files.temp)).toEqual([]);
  });

  it('reports a failing RUN as an error annotation at its Dockerfile line', async () => {
    const files = await step('FROM BASE_IMAGE\nRUN echo before\nRUN exit 7\n');
    const env = stepEnv(files, { context: 'app', tags: `${registry.host}/gha/fails:1`, ...credentials() });
    const main = await runNode(path.join(dist, 'github-main.js'), env, files.workspace);
    expect(main.code).toBe(1);
    expect(main.stdout).toMatch(/^::error title=kiln build failed,file=app\/Dockerfile,line=3::RUN exit 7 failed: exit code 7$/m);
    expect(parseFileCommands(await readFile(files.output, 'utf8'))).toEqual({});
    if (mode === 'basic') expect(main.stdout.split('\n').filter((line) => !line.startsWith('::add-mask::')).join('\n')).not.toContain(registry.password);
  });

  it('fails on an input error before building, naming the input', async () => {
    const files = await step('FROM BASE_IMAGE\n');
    const main = await runNode(path.join(dist, 'github-main.js'), stepEnv(files, { context: 'app', push: 'maybe' }), files.workspace);
    expect(main.code).toBe(1);
    expect(main.stdout).toMatch(/^::error::input "push": expected true or false, got "maybe"$/m);
  });
});
