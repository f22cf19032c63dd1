/**
 * The executor image (images/executor/Dockerfile) built by kiln itself (this tree's bundle) from a
 * context laid out like the repository, FROM a node image made of the host's node and libraries,
 * pushed to a real registry, then read back with skopeo and umoci. The unpacked image is run under
 * chroot with nothing but its own files: kiln's runtime must not need anything outside /kiln.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import packageJson from '../../package.json' with { type: 'json' };
import type { ImageConfig } from '../../src/image/types.js';
import { pushBusyboxImage } from '../harness/base-images.js';
import { bundleEntries } from '../harness/bundle-entries.js';
import { pushNodeRuntimeImage } from '../harness/node-runtime-image.js';
import { Podman } from '../harness/podman.js';
import { runTool } from '../harness/process.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';

const execFileAsync = promisify(execFile);
const repositoryRoot = path.resolve(import.meta.dirname, '../..');
const entrypoint = ['/kiln/lib/ld.so', '--library-path', '/kiln/lib', '/kiln/bin/node', '/kiln/dist/cli.js'];

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(command: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<Outcome> {
  try {
    const { stdout, stderr } = await execFileAsync(command, [...args], { maxBuffer: 64 << 20, ...(env ? { env } : {}) });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code: number; stdout: string; stderr: string };
    return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
  }
}

describe('the executor image, built by kiln', () => {
  let registry: TestRegistry;
  let work: string;
  let context: string;
  let nodeImage: string;
  let busyboxImage: string;
  let podman: Podman | undefined;
  const built: Record<'executor' | 'debug', string> = { executor: '', debug: '' };

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'kiln-executor-image-'));
    registry = await startRegistry('plain');
    nodeImage = await pushNodeRuntimeImage({ registry: registry.host, skopeoDestArgs: registry.skopeoDestArgs() });
    busyboxImage = (await pushBusyboxImage({ registry: registry.host, skopeoDestArgs: registry.skopeoDestArgs() })).reference;
    // The repository's layout, with a fresh bundle rather than whatever dist/ holds now.
    context = path.join(work, 'context');
    await cp(path.join(repositoryRoot, 'images/executor'), path.join(context, 'images/executor'), { recursive: true });
    await bundleEntries(path.join(context, 'dist'), { cli: 'src/cli/main.ts', 'gitlab-main': 'src/ci/gitlab/main.ts' });
    built.executor = await buildImage('kiln/executor:test', []);
    built.debug = await buildImage('kiln/executor:debug', ['--target', 'debug']);
  }, 300_000);
  afterAll(async () => {
    await podman?.dispose();
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  async function buildImage(destination: string, extra: string[]): Promise<string> {
    const result = await run(process.execPath, [
      path.join(context, 'dist/cli.js'),
      '--context', context,
      '--dockerfile', 'images/executor/Dockerfile',
      '--destination', `${registry.host}/${destination}`,
      '--build-arg', `NODE_IMAGE=${nodeImage}`,
      '--build-arg', `BUSYBOX_IMAGE=${busyboxImage}`,
      '--kaniko-dir', path.join(work, 'kiln-dir'),
      ...extra,
    ]);
    if (result.code !== 0) throw new Error(`kiln failed (${result.code}):\n${result.stderr}`);
    return result.stdout.trim().split('\n').at(-1) ?? '';
  }

  async function readBack(destination: string): Promise<{ config: ImageConfig; digest: string; rootfs: string }> {
    const ref = `docker://${registry.host}/${destination}`;
    const srcArgs = registry.skopeoSrcArgs().map((arg) => arg.replace(/^--src-/, '--'));
    const { stdout: configText } = await runTool('skopeo', ['inspect', '--config', '--raw', ...srcArgs, ref]);
    const { stdout: digest } = await runTool('skopeo', ['inspect', '--format', '{{.Digest}}', ...srcArgs, ref]);
    const name = destination.replace(/[^a-z0-9]+/g, '-');
    const layout = path.join(work, `layout-${name}`);
    await runTool('skopeo', ['copy', ...registry.skopeoSrcArgs(), ref, `oci:${layout}:img`]);
    const rootfs = path.join(work, `rootfs-${name}`);
    await runTool('umoci', ['raw', 'unpack', '--image', `${layout}:img`, rootfs]);
    return { config: JSON.parse(configText) as ImageConfig, digest: digest.trim(), rootfs };
  }

  it('holds node, its libraries, CA certificates and the bundle under /kiln, and runs kiln from there alone', async () => {
    const image = await readBack('kiln/executor:test');
    expect(image.digest).toBe(built.executor);
    expect(image.config.config?.Entrypoint).toEqual(entrypoint);
    expect(image.config.config?.Env).toEqual(
      expect.arrayContaining(['PATH=/kiln/bin', 'DOCKER_CONFIG=/kiln/.docker/', 'NODE_EXTRA_CA_CERTS=/kiln/ssl/certs/ca-certificates.crt']),
    );
    expect(image.config.config?.WorkingDir).toBe('/workspace');

    const { rootfs } = image;
    expect(await readFile(path.join(rootfs, 'kiln/ssl/certs/ca-certificates.crt'), 'utf8')).toBe(await readFile('/etc/ssl/certs/ca-certificates.crt', 'utf8'));
    expect((await stat(path.join(rootfs, 'kiln/.docker'))).isDirectory()).toBe(true);
    expect((await stat(path.join(rootfs, 'kiln/dist/gitlab-main.js'))).isFile()).toBe(true);
    // No shell, no busybox: the plain image is kiln's runtime and nothing else.
    await expect(stat(path.join(rootfs, 'busybox'))).rejects.toThrow(/ENOENT/);
    await expect(stat(path.join(rootfs, 'bin'))).rejects.toThrow(/ENOENT/);

    // chroot isolation's util-linux tools are on the PATH, started directly (the usual library paths).
    const tools = await run('/usr/sbin/chroot', [rootfs, '/kiln/bin/setpriv', '--dump'], { PATH: '/kiln/bin' });
    expect(tools, tools.stderr).toMatchObject({ code: 0 });
    expect(tools.stdout).toContain('Capability bounding set');

    // An in-place build replaces everything but /kiln: kiln must still start.
    for (const dir of ['lib', 'lib64', 'usr']) await rm(path.join(rootfs, dir), { recursive: true, force: true });
    expect((await readdir(rootfs)).sort()).toEqual(['kiln', 'workspace']);
    const version = await run('/usr/sbin/chroot', [rootfs, ...entrypoint, '--version'], { PATH: '/kiln/bin' });
    expect(version, version.stderr).toMatchObject({ code: 0 });
    expect(version.stdout.trim()).toBe(packageJson.version);
  }, 300_000);

  it('has a debug variant with a busybox shell and kiln, kiln-gitlab on its PATH', async () => {
    const image = await readBack('kiln/executor:debug');
    expect(image.digest).toBe(built.debug);
    expect(image.config.config?.Entrypoint).toEqual(entrypoint);
    expect(image.config.config?.Env).toEqual(expect.arrayContaining(['PATH=/kiln/bin:/busybox', 'DOCKER_CONFIG=/kiln/.docker/']));

    // As GitLab runs `script:`: a shell found on the image's PATH, the component's command on it.
    const env = { PATH: '/kiln/bin:/busybox', HOME: '/root' };
    const version = await run('/usr/sbin/chroot', [image.rootfs, '/busybox/sh', '-c', 'kiln --version'], env);
    expect(version, version.stderr).toMatchObject({ code: 0 });
    expect(version.stdout.trim()).toBe(packageJson.version);
    const job = await run('/usr/sbin/chroot', [image.rootfs, '/busybox/sh', '-c', 'cd /workspace && kiln-gitlab'], env);
    expect(job.code).toBe(2);
    expect(job.stderr).toMatch(/no destination/);
  }, 300_000);

  it('runs under podman (runc, default capabilities): kiln copies an image between registries', async () => {
    podman = await Podman.create();
    const target = `${registry.host}/copied/busybox:1`;
    const copied = await podman.runOk(`${registry.host}/kiln/executor:test`, {
      registry,
      network: 'host',
      command: ['copy', busyboxImage, target],
    });
    const srcArgs = registry.skopeoSrcArgs().map((arg) => arg.replace(/^--src-/, '--'));
    const { stdout } = await runTool('skopeo', ['inspect', '--format', '{{.Digest}}', ...srcArgs, `docker://${target}`]);
    expect(copied.stdout.trim().split('\n').at(-1)).toBe(stdout.trim());

    // The debug image as GitLab's docker executor starts it: entrypoint cleared, the script in its shell.
    const script = await podman.runOk(`${registry.host}/kiln/executor:debug`, {
      registry,
      entrypoint: [''],
      command: ['sh', '-c', 'kiln --version && echo "$DOCKER_CONFIG"'],
    });
    expect(script.stdout).toBe(`${packageJson.version}\n/kiln/.docker/\n`);
  }, 300_000);

  it('runs the GitLab job in the debug image under podman, as the docker executor would', async () => {
    podman ??= await Podman.create();
    const project = path.join(work, 'gitlab-project');
    await mkdir(project, { recursive: true });
    // No RUN step: building inside an unprivileged container needs in-place isolation (not yet there).
    await writeFile(path.join(project, 'Dockerfile'), `FROM ${busyboxImage}\nCOPY app.txt /app.txt\nCMD ["cat", "/app.txt"]\n`);
    await writeFile(path.join(project, 'app.txt'), 'built in GitLab\n');
    const projectDir = '/builds/group/project';
    const job = await podman.run(`${registry.host}/kiln/executor:debug`, {
      registry,
      network: 'host',
      entrypoint: [''],
      workdir: projectDir,
      extraArgs: ['--volume', `${project}:${projectDir}`],
      env: {
        CI_PROJECT_DIR: projectDir,
        CI_REGISTRY_IMAGE: `${registry.host}/group/project`,
        CI_COMMIT_REF_SLUG: 'main',
        KILN_DOCKERFILE: 'Dockerfile',
        KILN_DOTENV: 'kiln.env',
      },
      command: ['sh', '-c', 'kiln-gitlab --cache=false --snapshot-mode=full'],
    });
    expect(job.exitCode, job.stderr).toBe(0);
    const srcArgs = registry.skopeoSrcArgs().map((arg) => arg.replace(/^--src-/, '--'));
    const { stdout } = await runTool('skopeo', ['inspect', '--format', '{{.Digest}}', ...srcArgs, `docker://${registry.host}/group/project:main`]);
    const digest = stdout.trim();
    expect(await readFile(path.join(project, 'kiln.env'), 'utf8')).toContain(`KILN_DIGEST=${digest}\nKILN_IMAGE=${registry.host}/group/project@${digest}\n`);
    const ran = await podman.runOk(`${registry.host}/group/project:main`, { registry });
    expect(ran.stdout).toBe('built in GitLab\n');
  }, 300_000);
});
