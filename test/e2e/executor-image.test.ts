/**
 * The executor image (images/executor/Dockerfile) built by kiln itself (test/harness/executor-image.ts),
 * pushed to a real registry, then read back with skopeo and umoci. The unpacked image is run under
 * chroot with nothing but its own files: kiln's runtime must not need anything outside /kiln.
 * Builds inside the image under podman are in executor-in-place.test.ts; here, one from a git context.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import packageJson from '../../package.json' with { type: 'json' };
import type { ImageConfig } from '../../src/image/types.js';
import { buildExecutorImages, executorEntrypoint as entrypoint, type ExecutorImages } from '../harness/executor-image.js';
import { commitFiles, startGitHttpServer } from '../harness/git-http-server.js';
import { jobEnvironment, readComponent, renderComponent } from '../harness/gitlab-component.js';
import { Podman } from '../harness/podman.js';
import { runTool } from '../harness/process.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';

const execFileAsync = promisify(execFile);
const templatePath = path.resolve(import.meta.dirname, '../../gitlab/templates/kiln.yml');

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
  let images: ExecutorImages;
  let busyboxImage: string;
  let podman: Podman | undefined;

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'kiln-executor-image-'));
    registry = await startRegistry('plain');
    images = await buildExecutorImages({ registry, work });
    busyboxImage = images.busyboxImage;
  }, 300_000);
  afterAll(async () => {
    await podman?.dispose();
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

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
    expect(image.digest).toBe(images.executor.digest);
    expect(image.config.config?.Entrypoint).toEqual(entrypoint);
    expect(image.config.config?.Env).toEqual(
      expect.arrayContaining([
        'PATH=/kiln/bin',
        'DOCKER_CONFIG=/kiln/.docker/',
        'NODE_EXTRA_CA_CERTS=/kiln/ssl/certs/ca-certificates.crt',
        // kiln's work directory must outlive an in-place build too.
        'KILN_DIR=/kiln/work',
        // git reads its helpers, templates, CAs and (no) system config from /kiln alone.
        'GIT_EXEC_PATH=/kiln/libexec/git-core',
        'GIT_TEMPLATE_DIR=/kiln/share/git-core/templates',
        'GIT_CONFIG_NOSYSTEM=1',
        'GIT_SSL_CAINFO=/kiln/ssl/certs/ca-certificates.crt',
      ]),
    );
    expect(image.config.config?.WorkingDir).toBe('/workspace');

    const { rootfs } = image;
    expect(await readFile(path.join(rootfs, 'kiln/ssl/certs/ca-certificates.crt'), 'utf8')).toBe(await readFile('/etc/ssl/certs/ca-certificates.crt', 'utf8'));
    expect((await stat(path.join(rootfs, 'kiln/.docker'))).isDirectory()).toBe(true);
    expect((await stat(path.join(rootfs, 'kiln/dist/gitlab-main.js'))).isFile()).toBe(true);
    // No shell, no busybox: the plain image is kiln's runtime and nothing else.
    await expect(stat(path.join(rootfs, 'kiln/busybox'))).rejects.toThrow(/ENOENT/);
    await expect(stat(path.join(rootfs, 'bin'))).rejects.toThrow(/ENOENT/);

    // chroot isolation's util-linux tools are on the PATH, started directly (the usual library paths).
    const tools = await run('/usr/sbin/chroot', [rootfs, '/kiln/bin/setpriv', '--dump'], { PATH: '/kiln/bin' });
    expect(tools, tools.stderr).toMatchObject({ code: 0 });
    expect(tools.stdout).toContain('Capability bounding set');
    // git is on the PATH too, with the helper it runs for http(s) remotes and an empty template
    // directory (it needs a /dev/null to run: the git context test below runs it under podman).
    expect((await stat(path.join(rootfs, 'kiln/bin/git'))).isFile()).toBe(true);
    expect((await stat(path.join(rootfs, 'kiln/libexec/git-core/git-remote-https'))).isFile()).toBe(true);
    expect(await readdir(path.join(rootfs, 'kiln/share/git-core/templates'))).toEqual([]);

    // An in-place build replaces everything but /kiln: kiln must still start, and so must the tools,
    // through kiln's loader as in-place isolation launches them.
    for (const dir of ['lib', 'lib64', 'usr']) await rm(path.join(rootfs, dir), { recursive: true, force: true });
    expect((await readdir(rootfs)).sort()).toEqual(['kiln', 'workspace']);
    const version = await run('/usr/sbin/chroot', [rootfs, ...entrypoint, '--version'], { PATH: '/kiln/bin' });
    expect(version, version.stderr).toMatchObject({ code: 0 });
    expect(version.stdout.trim()).toBe(packageJson.version);
    for (const [tool, args, output] of [
      ['setpriv', ['--dump'], /Capability bounding set/],
      ['unshare', ['--version'], /util-linux/],
      ['flock', ['--version'], /util-linux/],
      ['getfattr', ['--version'], /getfattr/],
      ['setfattr', ['--version'], /setfattr/],
    ] as const) {
      const ran = await run('/usr/sbin/chroot', [rootfs, '/kiln/lib/ld.so', '--library-path', '/kiln/lib', `/kiln/bin/${tool}`, ...args], { PATH: '/kiln/bin' });
      expect(ran, `${tool}: ${ran.stderr}`).toMatchObject({ code: 0 });
      expect(ran.stdout).toMatch(output);
    }
  }, 300_000);

  it('has a debug variant with a busybox shell and kiln, kiln-gitlab on its PATH', async () => {
    const image = await readBack('kiln/executor:debug');
    expect(image.digest).toBe(images.debug.digest);
    expect(image.config.config?.Entrypoint).toEqual(entrypoint);
    expect(image.config.config?.Env).toEqual(expect.arrayContaining(['PATH=/kiln/bin:/kiln/busybox', 'DOCKER_CONFIG=/kiln/.docker/', 'KILN_DIR=/kiln/work']));
    // The shell lives under /kiln, which an in-place build leaves alone: nothing at the old /busybox.
    await expect(stat(path.join(image.rootfs, 'busybox'))).rejects.toThrow(/ENOENT/);

    // As GitLab runs `script:`: a shell found on the image's PATH, the component's command on it,
    // with nothing but /kiln left (as after an in-place build).
    for (const dir of ['lib', 'lib64', 'usr']) await rm(path.join(image.rootfs, dir), { recursive: true, force: true });
    expect((await readdir(image.rootfs)).sort()).toEqual(['kiln', 'workspace']);
    const env = { PATH: '/kiln/bin:/kiln/busybox', HOME: '/root' };
    const version = await run('/usr/sbin/chroot', [image.rootfs, '/kiln/busybox/sh', '-c', 'kiln --version'], env);
    expect(version, version.stderr).toMatchObject({ code: 0 });
    expect(version.stdout.trim()).toBe(packageJson.version);
    const job = await run('/usr/sbin/chroot', [image.rootfs, '/kiln/busybox/sh', '-c', 'cd /workspace && kiln-gitlab'], env);
    expect(job.code).toBe(2);
    expect(job.stderr).toMatch(/no destination/);
  }, 300_000);

  it('runs under podman (runc, default capabilities): kiln copies an image between registries', async () => {
    podman = await Podman.create();
    const target = `${registry.host}/copied/busybox:1`;
    const copied = await podman.runOk(images.executor.reference, {
      registry,
      network: 'host',
      command: ['copy', busyboxImage, target],
    });
    const srcArgs = registry.skopeoSrcArgs().map((arg) => arg.replace(/^--src-/, '--'));
    const { stdout } = await runTool('skopeo', ['inspect', '--format', '{{.Digest}}', ...srcArgs, `docker://${target}`]);
    expect(copied.stdout.trim().split('\n').at(-1)).toBe(stdout.trim());

    // The debug image as GitLab's docker executor starts it: entrypoint cleared, the script in its shell.
    const script = await podman.runOk(images.debug.reference, {
      registry,
      entrypoint: [''],
      command: ['sh', '-c', 'kiln --version && echo "$DOCKER_CONFIG"'],
    });
    expect(script.stdout).toBe(`${packageJson.version}\n/kiln/.docker/\n`);
  }, 300_000);

  it('runs the GitLab component\'s job (its defaults) in the debug image under podman, as the docker executor would', async () => {
    podman ??= await Podman.create();
    const project = path.join(work, 'gitlab-project');
    await mkdir(project, { recursive: true });
    // A RUN step: in an unprivileged job container the component's default isolation (auto) must
    // pick in-place, with no input set for it.
    await writeFile(
      path.join(project, 'Dockerfile'),
      `FROM ${busyboxImage}\nCOPY app.txt /app.txt\nRUN echo "ran as $(id -u) with $(ls /proc/self/fd | wc -l) fds" > /ran\nCMD ["cat", "/app.txt", "/ran"]\n`,
    );
    await writeFile(path.join(project, 'app.txt'), 'built in GitLab\n');
    const projectDir = '/builds/group/project';
    const [job] = Object.values(renderComponent(await readComponent(templatePath), { image: images.debug.reference }));
    if (job?.image === undefined) throw new Error('the template renders no job with an image');
    expect(job.image.name).toBe(images.debug.reference);
    const env = jobEnvironment(job, {
      CI: 'true',
      GITLAB_CI: 'true',
      CI_PROJECT_DIR: projectDir,
      CI_REGISTRY_IMAGE: `${registry.host}/group/project`,
      CI_COMMIT_REF_SLUG: 'main',
    });
    const run = await podman.run(job.image.name, {
      registry,
      network: 'host',
      ...(job.image.entrypoint !== undefined ? { entrypoint: job.image.entrypoint } : {}),
      workdir: projectDir,
      extraArgs: ['--volume', `${project}:${projectDir}`],
      env,
      // The runner feeds the script to the image's shell, which stops at the first failing line.
      command: ['sh', '-c', ['set -e', ...job.script].join('\n')],
      timeoutMs: 240_000,
    });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/isolation: in-place/);
    const srcArgs = registry.skopeoSrcArgs().map((arg) => arg.replace(/^--src-/, '--'));
    const { stdout } = await runTool('skopeo', ['inspect', '--format', '{{.Digest}}', ...srcArgs, `docker://${registry.host}/group/project:main`]);
    const digest = stdout.trim();
    expect(await readFile(path.join(project, 'kiln.env'), 'utf8')).toContain(`KILN_DIGEST=${digest}\nKILN_IMAGE=${registry.host}/group/project@${digest}\n`);
    const ran = await podman.runOk(`${registry.host}/group/project:main`, { registry });
    // Standard input, output and error, and the one ls opened: nothing of kiln's leaks into the step.
    expect(ran.stdout).toBe('built in GitLab\nran as 0 with 4 fds\n');
  }, 300_000);

  it('builds from a git context over http in the executor image under podman (default capabilities), as a Kubernetes Job would', async () => {
    podman ??= await Podman.create();
    const repositories = path.join(work, 'git-repositories');
    const repository = path.join(repositories, 'app.git');
    await commitFiles(repository, 'main', {
      Dockerfile: `FROM ${busyboxImage}\nCOPY app.txt /app.txt\nRUN echo "built from $(cat /app.txt)" > /ran\nCMD ["cat", "/app.txt", "/ran"]\n`,
      'app.txt': 'main\n',
    });
    // The build must take the branch it is given, not the repository's HEAD.
    await commitFiles(repository, 'release', { 'app.txt': 'release\n' });
    const server = await startGitHttpServer({ projectRoot: repositories });
    try {
      const destination = `${registry.host}/git/app:release`;
      // kaniko's form, as in examples/kubernetes/kiln-job.yaml; GIT_PULL_METHOD=http since the server has no TLS.
      const built = await podman.run(images.executor.reference, {
        registry,
        network: 'host',
        env: { GIT_PULL_METHOD: 'http' },
        command: ['--context', `git://${server.host}/app.git#refs/heads/release`, '--destination', destination],
        timeoutMs: 240_000,
      });
      expect(built.exitCode, built.stderr).toBe(0);
      expect(built.stderr).toMatch(/isolation: in-place/);
      const ran = await podman.runOk(destination, { registry });
      expect(ran.stdout).toBe('release\nbuilt from release\n');
    } finally {
      await server.stop();
    }
  }, 300_000);
});
