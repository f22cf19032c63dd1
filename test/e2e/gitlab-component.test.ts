/**
 * The GitLab component as a pipeline would run it: gitlab/templates/kiln.yml rendered with inputs,
 * its job variables expanded against GitLab's predefined CI_* variables, and its script run by a
 * shell with `kiln-gitlab` (this tree's bundle) on the PATH, against a registry that wants the
 * job's credentials. The result is read back with skopeo, never with kiln.
 */
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBusyboxImage } from '../harness/base-images.js';
import { bundleEntries } from '../harness/bundle-entries.js';
import { jobEnvironment, readComponent, renderComponent, type InputValue } from '../harness/gitlab-component.js';
import { runTool } from '../harness/process.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';

const templatePath = path.resolve(import.meta.dirname, '../../gitlab/templates/kiln.yml');

interface ScriptOutcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one `script:` line as the runner does: `sh -c LINE` in the project directory. */
function runScriptLine(line: string, env: Record<string, string>, cwd: string): Promise<ScriptOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', line], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function parseDotenv(text: string): Record<string, string> {
  return Object.fromEntries(text.trim().split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
}

describe('GitLab component job (rendered template, real registry with htpasswd)', () => {
  let registry: TestRegistry;
  /** Stands in for GitLab's dependency proxy: another registry, other credentials. */
  let proxy: TestRegistry;
  let work: string;
  let bin: string;
  let base: string;

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'kiln-gitlab-e2e-'));
    registry = await startRegistry('basic');
    proxy = await startRegistry('basic', { username: 'proxy-user' });
    base = (await pushBusyboxImage({ registry: registry.host, skopeoDestArgs: registry.skopeoDestArgs() })).reference;
    const dist = path.join(work, 'dist');
    await bundleEntries(dist, { 'gitlab-main': 'src/ci/gitlab/main.ts' });
    // What the debug executor image puts on the PATH.
    bin = path.join(work, 'bin');
    await mkdir(bin);
    await writeFile(path.join(bin, 'kiln-gitlab'), `#!/bin/sh\nexec '${process.execPath}' '${path.join(dist, 'gitlab-main.js')}' "$@"\n`);
    await chmod(path.join(bin, 'kiln-gitlab'), 0o755);
  }, 120_000);
  afterAll(async () => {
    await registry?.stop();
    await proxy?.stop();
    await rm(work, { recursive: true, force: true });
  });

  async function runJob(name: string, inputs: Record<string, InputValue>, extraVariables: Record<string, string> = {}, baseImage = base) {
    const project = path.join(work, name, 'project');
    await mkdir(project, { recursive: true });
    await writeFile(
      path.join(project, 'Dockerfile'),
      `FROM ${baseImage}\nARG GREETING\nRUN echo "$GREETING" > /greeting && test -d /proc/self\nCOPY app.txt /app.txt\n`,
    );
    await writeFile(path.join(project, 'app.txt'), 'app\n');
    const dockerConfig = path.join(work, name, 'docker');
    const jobs = renderComponent(await readComponent(templatePath), inputs);
    const [jobName, job] = Object.entries(jobs)[0] ?? [];
    if (job === undefined || jobName === undefined) throw new Error('the template renders no job');
    const ci: Record<string, string> = {
      PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      HOME: path.join(work, name),
      CI: 'true',
      GITLAB_CI: 'true',
      CI_PROJECT_DIR: project,
      CI_REGISTRY: registry.host,
      CI_REGISTRY_USER: registry.username,
      CI_REGISTRY_PASSWORD: registry.password,
      CI_REGISTRY_IMAGE: `${registry.host}/group/project`,
      CI_COMMIT_REF_SLUG: 'feature-x',
      CI_COMMIT_SHORT_SHA: '1a2b3c4d',
      DOCKER_CONFIG: dockerConfig,
      KANIKO_DIR: path.join(work, name, 'kiln-dir'),
      ...extraVariables,
    };
    const env = jobEnvironment(job, ci);
    const outcomes: ScriptOutcome[] = [];
    for (const line of job.script) {
      const outcome = await runScriptLine(line, env, project);
      outcomes.push(outcome);
      if (outcome.code !== 0) break;
    }
    return { jobName, job, project, dockerConfig, outcomes };
  }

  /** `skopeo inspect` takes the source flags without their `--src-` prefix. */
  function inspectArgs(): string[] {
    return registry.skopeoSrcArgs().map((arg) => arg.replace(/^--src-/, '--'));
  }

  async function skopeoDigest(reference: string): Promise<string> {
    const { stdout } = await runTool('skopeo', ['inspect', '--format', '{{.Digest}}', ...inspectArgs(), `docker://${reference}`]);
    return stdout.trim();
  }

  it('logs in with CI_REGISTRY_*, keeps the runner’s Docker config, pushes to $CI_REGISTRY_IMAGE:$CI_COMMIT_REF_SLUG and reports the digest', async () => {
    // The Docker config a runner (DOCKER_AUTH_CONFIG) may already have written.
    const name = 'default-destination';
    const existing = {
      auths: { 'mirror.example:5000': { auth: Buffer.from('mirror:mirror-pw').toString('base64') } },
      credHelpers: { 'gcr.io': 'gcloud' },
      HttpHeaders: { 'User-Agent': 'runner' },
    };
    await mkdir(path.join(work, name, 'docker'), { recursive: true });
    await writeFile(path.join(work, name, 'docker', 'config.json'), JSON.stringify(existing));

    const { jobName, job, project, dockerConfig, outcomes } = await runJob(name, {
      'build-args': 'GREETING=hello from $CI_COMMIT_SHORT_SHA',
      'snapshot-mode': 'full',
    });
    expect(jobName).toBe('kiln-build');
    const last = outcomes.at(-1);
    expect(last?.code, last?.stderr).toBe(0);

    const reference = `${registry.host}/group/project:feature-x`;
    const digest = await skopeoDigest(reference);
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(last?.stdout.trim().split('\n').at(-1)).toBe(digest);

    const dotenv = parseDotenv(await readFile(path.join(project, job.artifacts?.reports?.dotenv ?? 'missing'), 'utf8'));
    expect(dotenv).toEqual({
      KILN_DIGEST: digest,
      KILN_IMAGE: `${registry.host}/group/project@${digest}`,
      KILN_IMAGES: `${registry.host}/group/project@${digest}`,
    });
    // A later job pulls by KILN_IMAGE.
    expect(await skopeoDigest(dotenv.KILN_IMAGE ?? '')).toBe(digest);

    const config = JSON.parse(await readFile(path.join(dockerConfig, 'config.json'), 'utf8')) as typeof existing;
    expect(config.auths).toEqual({
      ...existing.auths,
      [registry.host]: { auth: Buffer.from(`${registry.username}:${registry.password}`).toString('base64') },
    });
    expect(config.credHelpers).toEqual(existing.credHelpers);
    expect(config.HttpHeaders).toEqual(existing.HttpHeaders);

    // The build argument went through GitLab's variable expansion into the image.
    const { stdout: history } = await runTool('skopeo', ['inspect', '--config', '--raw', ...inspectArgs(), `docker://${reference}`]);
    expect(history).toContain('GREETING=hello from 1a2b3c4d');

    const printed = outcomes.map((outcome) => outcome.stdout + outcome.stderr).join('');
    expect(printed).not.toContain(registry.password);
    expect(printed).not.toContain(Buffer.from(`${registry.username}:${registry.password}`).toString('base64'));
  }, 180_000);

  it('pushes to the destinations input, under another job name, and fails cleanly without credentials', async () => {
    const { jobName, project, outcomes } = await runJob('named', {
      'job-name': 'image',
      destinations: `${registry.host}/group/app:$CI_COMMIT_SHORT_SHA, ${registry.host}/group/app:latest`,
    });
    expect(jobName).toBe('image');
    expect(outcomes.at(-1)?.code, outcomes.at(-1)?.stderr).toBe(0);
    const digest = await skopeoDigest(`${registry.host}/group/app:1a2b3c4d`);
    expect(await skopeoDigest(`${registry.host}/group/app:latest`)).toBe(digest);
    const dotenv = parseDotenv(await readFile(path.join(project, 'kiln.env'), 'utf8'));
    expect(dotenv.KILN_DIGEST).toBe(digest);
    expect(dotenv.KILN_IMAGE).toBe(`${registry.host}/group/app@${digest}`);

    const denied = await runJob('no-credentials', { destinations: `${registry.host}/group/denied:1` }, { CI_REGISTRY_PASSWORD: '' });
    const outcome = denied.outcomes.at(-1);
    expect(outcome?.code).not.toBe(0);
    expect(outcome?.stderr).toMatch(/401 Unauthorized/);
  }, 180_000);

  it('pulls the base image with the CI_DEPENDENCY_PROXY_* credentials', async () => {
    const proxied = (await pushBusyboxImage({ registry: proxy.host, image: 'group/dependency_proxy/containers/busybox:latest', skopeoDestArgs: proxy.skopeoDestArgs() })).reference;
    const proxyVariables = {
      CI_DEPENDENCY_PROXY_SERVER: proxy.host,
      CI_DEPENDENCY_PROXY_USER: proxy.username,
      CI_DEPENDENCY_PROXY_PASSWORD: proxy.password,
    };
    const { dockerConfig, outcomes } = await runJob('dependency-proxy', {}, proxyVariables, proxied);
    expect(outcomes.at(-1)?.code, outcomes.at(-1)?.stderr).toBe(0);
    const config = JSON.parse(await readFile(path.join(dockerConfig, 'config.json'), 'utf8')) as { auths: Record<string, unknown> };
    expect(Object.keys(config.auths).sort()).toEqual([proxy.host, registry.host].sort());
    const printed = outcomes.map((outcome) => outcome.stdout + outcome.stderr).join('');
    expect(printed).toContain('CI_DEPENDENCY_PROXY_SERVER');
    expect(printed).not.toContain(proxy.password);

    // Without them the proxy refuses the pull: the credentials above are what made it work.
    const refused = await runJob('no-dependency-proxy', {}, {}, proxied);
    expect(refused.outcomes.at(-1)?.code).not.toBe(0);
    expect(refused.outcomes.at(-1)?.stderr).toMatch(/401 Unauthorized/);
    expect(refused.outcomes.at(-1)?.stderr).toContain(proxy.host);
  }, 180_000);
});
