/**
 * The bundled Azure Pipelines task run as the agent runs it: `node dist/azure-main.js` with the
 * INPUT_* and ENDPOINT_* environment of a Docker registry service connection, against a real
 * htpasswd registry; the digest variable is checked with skopeo.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBusyboxImage } from '../harness/base-images.js';
import { runTool } from '../harness/process.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';

const task = path.resolve(import.meta.dirname, '../../dist/azure-main.js');
const connection = '3f2a9c1e-7b4d-4e0a-9d55-0c1b2a3d4e5f';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function runTask(env: NodeJS.ProcessEnv, cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [task], { env, cwd, maxBuffer: 64 << 20, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

describe('the Azure Pipelines task against an htpasswd registry', () => {
  let registry: TestRegistry;
  let work: string;
  let base: string;
  let counter = 0;

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'kiln-azure-e2e-'));
    registry = await startRegistry('basic');
    base = (await pushBusyboxImage({ registry: registry.host, skopeoDestArgs: registry.skopeoDestArgs() })).reference;
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  async function agent(dockerfile: string, inputs: Record<string, string>): Promise<{ env: NodeJS.ProcessEnv; sources: string; temp: string }> {
    const root = path.join(work, `job-${++counter}`);
    const sources = path.join(root, 's');
    const temp = path.join(root, '_temp');
    for (const dir of [path.join(sources, 'service'), temp, path.join(root, 'home')]) await mkdir(dir, { recursive: true });
    await writeFile(path.join(sources, 'service', 'Dockerfile'), dockerfile.replaceAll('BASE_IMAGE', base));
    const id = connection.toUpperCase();
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: path.join(root, 'home'),
      TF_BUILD: 'True',
      SYSTEM_DEFAULTWORKINGDIRECTORY: sources,
      AGENT_TEMPDIRECTORY: temp,
      INPUT_CONTAINERREGISTRY: connection,
      [`ENDPOINT_URL_${id}`]: `http://${registry.host}/`,
      [`ENDPOINT_AUTH_PARAMETER_${id}_USERNAME`]: registry.username,
      [`ENDPOINT_AUTH_PARAMETER_${id}_PASSWORD`]: registry.password,
      INPUT_DOCKERFILE: 'service/Dockerfile',
      INPUT_BUILDCONTEXT: '**',
    };
    for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.toUpperCase()}`] = value;
    return { env, sources, temp };
  }

  it('builds and pushes each tag, sets the digest output variable and never prints the password', async () => {
    const job = await agent('FROM BASE_IMAGE\nRUN echo built > /built\n', { repository: 'azure/app', tags: '42\nlatest', arguments: '--label "ci=azure pipelines"' });
    const run = await runTask(job.env, job.sources);
    expect(run.stdout).not.toContain('result=Failed');
    expect(run.code).toBe(0);
    const lines = run.stdout.split('\n');
    expect(lines[0]).toBe(`##vso[task.setsecret]${registry.password}`);
    expect(lines.slice(1).join('\n') + run.stderr).not.toContain(registry.password);
    const inspectArgs = registry.skopeoSrcArgs().map((arg) => arg.replace(/^--src-/, '--'));
    const { stdout } = await runTool('skopeo', ['inspect', ...inspectArgs, `docker://${registry.host}/azure/app:42`]);
    const remote = JSON.parse(stdout) as { Digest: string; Labels: Record<string, string> };
    expect(remote.Labels).toMatchObject({ ci: 'azure pipelines' });
    expect(lines).toContain(`##vso[task.setvariable variable=digest;isOutput=true;]${remote.Digest}`);
    const { stdout: latest } = await runTool('skopeo', ['inspect', ...inspectArgs, `docker://${registry.host}/azure/app:latest`]);
    expect((JSON.parse(latest) as { Digest: string }).Digest).toBe(remote.Digest);
    // The work directory with the Docker config is gone when the task ends.
    expect(await readdir(job.temp)).toEqual([]);
  });

  it('fails with an error issue at the Dockerfile line', async () => {
    const job = await agent('FROM BASE_IMAGE\nRUN exit 3\n', { repository: 'azure/fails', tags: '1' });
    const run = await runTask(job.env, job.sources);
    expect(run.code).toBe(1);
    const dockerfile = path.join(job.sources, 'service', 'Dockerfile');
    expect(run.stdout).toContain(`##vso[task.logissue type=error;sourcepath=${dockerfile};linenumber=2;]RUN exit 3 failed: exit code 3`);
    expect(run.stdout).toMatch(/^##vso\[task.complete result=Failed;\].*RUN exit 3 failed/m);
    expect(await readdir(job.temp)).toEqual([]);
  });
});
