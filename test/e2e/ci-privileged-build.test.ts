/**
 * The non-root path of the CI wrappers without sudo: runBuild as uid 1001 hands the build to the
 * bundled action re-run in its privileged role; the runner runs what sudo would run (the words
 * after `sudo -n --`), so the request/result round trip through the real bundle is what is tested.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
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
      const [nodePath = '', ...rest] = invocation.args.slice(invocation.args.indexOf('--') + 1);
      return spawnInheriting({ command: nodePath, args: rest }, options);
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
});
