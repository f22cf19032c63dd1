/**
 * The non-root path of the CI wrappers without sudo: runBuild as uid 1001 hands the build to the
 * bundled action re-run in its privileged role; the runner runs what sudo would run (the words
 * after `sudo -n --`), so the request/result round trip through the real bundle is what is tested.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildFailedError, runBuild, type RunBuildContext } from '../../src/ci/build-runner.js';
import { buildOptionsFromArguments } from '../../src/ci/cli-options.js';
import { PrivilegeError, spawnInheriting, type ProcessInvocation } from '../../src/ci/privilege.js';
import { pushBusyboxImage } from '../harness/base-images.js';
import { runTool } from '../harness/process.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';

const bundle = path.resolve(import.meta.dirname, '../../dist/github-main.js');

/** The words after `sudo -n --`. */
function whatSudoRuns(invocation: ProcessInvocation): ProcessInvocation {
  const [command = '', ...args] = invocation.args.slice(invocation.args.indexOf('--') + 1);
  return { command, args };
}

describe('building through the privileged child (what sudo runs)', () => {
  let registry: TestRegistry;
  let work: string;
  let base: string;
  let counter = 0;

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'kiln-privileged-e2e-'));
    registry = await startRegistry('plain');
    base = (await pushBusyboxImage({ registry: registry.host, skopeoDestArgs: registry.skopeoDestArgs() })).reference;
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  async function setup(dockerfile: string, tag: string) {
    const dir = path.join(work, `case-${++counter}`);
    const workDir = path.join(dir, 'work');
    await mkdir(workDir, { recursive: true });
    await writeFile(path.join(dir, 'Dockerfile'), dockerfile.replaceAll('BASE_IMAGE', base));
    const options = buildOptionsFromArguments(['--context', dir, '--dockerfile', path.join(dir, 'Dockerfile'), '--destination', `${registry.host}/${tag}`, '--kaniko-dir', path.join(workDir, 'kiln')], {});
    const invocations: ProcessInvocation[] = [];
    const context = (run: RunBuildContext['run']): RunBuildContext => ({
      uid: 1001,
      nodePath: process.execPath,
      script: bundle,
      workDir,
      cwd: dir,
      env: { PATH: process.env.PATH, HOME: dir, SOME_VARIABLE: 'kept' },
      stderr: new PassThrough().resume(),
      run,
    });
    const asSudoWould: RunBuildContext['run'] = (invocation, options) => {
      invocations.push(invocation);
      return spawnInheriting(whatSudoRuns(invocation), options);
    };
    return { options, workDir, invocations, context, asSudoWould };
  }

  it('runs the bundle under sudo -n and brings the report back', async () => {
    const { options, workDir, invocations, context, asSudoWould } = await setup('FROM BASE_IMAGE\nRUN echo via-child > /child\n', 'child:1');
    const report = await runBuild(options, context(asSudoWould));
    expect(invocations).toHaveLength(1);
    expect(invocations[0]?.command).toBe('sudo');
    expect(invocations[0]?.args.slice(0, 4)).toEqual(['-n', '--', process.execPath, bundle]);
    const { stdout } = await runTool('skopeo', ['inspect', '--tls-verify=false', `docker://${registry.host}/child:1`]);
    expect(report.digest).toBe((JSON.parse(stdout) as { Digest: string }).Digest);
    expect(report.images).toEqual([`${registry.host}/child:1@${report.digest}`]);
    expect(report.steps.some((step) => step.label.includes('RUN echo via-child'))).toBe(true);
    // The request (which holds the environment) is removed once the child is done.
    expect((await readdir(workDir)).filter((name) => name.startsWith('build-request'))).toEqual([]);
  });

  it('passes the build error back with its Dockerfile line', async () => {
    const { options, context, asSudoWould } = await setup('FROM BASE_IMAGE\nRUN exit 5\n', 'child:2');
    const failure = runBuild(options, context(asSudoWould));
    await expect(failure).rejects.toThrow(BuildFailedError);
    await expect(failure).rejects.toThrow(/Dockerfile:2: RUN exit 5 failed: exit code 5/);
  });

  it('explains what is needed when sudo cannot run without a password, or is missing', async () => {
    const { options, context } = await setup('FROM BASE_IMAGE\n', 'child:3');
    await expect(runBuild(options, context(async () => 1))).rejects.toThrow(PrivilegeError);
    await expect(runBuild(options, context(async () => 1))).rejects.toThrow(/NOPASSWD/);
    const missing = Object.assign(new Error('spawn sudo ENOENT'), { code: 'ENOENT' });
    await expect(runBuild(options, context(() => Promise.reject(missing)))).rejects.toThrow(/sudo is not installed/);
  });
  it('says the build died, not that sudo failed, when the privileged child is killed mid-build', async () => {
    // A registry that accepts and never answers: once the child connects, it is surely building.
    const sockets: Socket[] = [];
    let connected: () => void = () => undefined;
    const firstConnection = new Promise<void>((resolve) => (connected = resolve));
    const stalling = createServer((socket) => {
      sockets.push(socket.resume());
      connected();
    });
    await new Promise<void>((resolve) => stalling.listen(0, '127.0.0.1', resolve));
    const address = stalling.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    try {
      const { options, context } = await setup(`FROM 127.0.0.1:${port}/never/answers\n`, 'child:4');
      // What the OOM killer does: SIGKILL, so the child never reports its outcome.
      const killedMidBuild: RunBuildContext['run'] = (invocation, runOptions) =>
        new Promise((resolve, reject) => {
          const { command, args } = whatSudoRuns(invocation);
          const child = spawn(command, args, { cwd: runOptions.cwd, stdio: 'ignore' });
          child.once('error', reject);
          child.once('close', (code, signal) => resolve(code ?? (signal === 'SIGKILL' ? 137 : 1)));
          void firstConnection.then(() => child.kill('SIGKILL'));
        });
      const failure = runBuild(options, context(killedMidBuild));
      await expect(failure).rejects.toThrow(BuildFailedError);
      await expect(failure).rejects.toThrow('the privileged build exited with code 137 before reporting its outcome');
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve, reject) => stalling.close((error) => (error ? reject(error) : resolve())));
    }
  });
});
