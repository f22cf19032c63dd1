/**
 * Builds with the bundled CLI (dist/cli.js) as a kaniko user runs it, on a busybox base pushed to a
 * real registry; every image is read back with skopeo and unpacked with umoci, never with kiln.
 */
import { execFile, spawn } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageConfig } from '../../src/image/types.js';
import { pushBusyboxImage } from '../harness/base-images.js';
import { findInImage } from '../harness/image-tree.js';
import { runTool } from '../harness/process.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';

const cli = path.resolve(import.meta.dirname, '../../dist/cli.js');
const execFileAsync = promisify(execFile);

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

describe('kiln builds (busybox base, real registry, real chroot)', () => {
  let registry: TestRegistry;
  let work: string;
  let base: string;
  let kilnDir: string;
  let counter = 0;

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'kiln-build-e2e-'));
    kilnDir = path.join(work, 'kiln-dir');
    registry = await startRegistry('plain');
    base = (await pushBusyboxImage({ registry: registry.host, skopeoDestArgs: registry.skopeoDestArgs() })).reference;
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  /** A fresh context directory holding `files` and the Dockerfile. */
  async function context(dockerfile: string, files: Record<string, string> = {}): Promise<string> {
    const dir = path.join(work, `ctx-${++counter}`);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'Dockerfile'), dockerfile.replaceAll('BASE_IMAGE', base));
    for (const [name, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
      await writeFile(path.join(dir, name), content);
    }
    return dir;
  }

  async function kiln(args: string[]): Promise<Outcome> {
    try {
      const { stdout, stderr } = await execFileAsync(process.execPath, [cli, '--kaniko-dir', kilnDir, ...args], { maxBuffer: 64 << 20 });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failure = error as { code: number; stdout: string; stderr: string };
      return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
    }
  }

  async function build(dir: string, destination: string, extra: string[] = []): Promise<string> {
    const result = await kiln(['--context', dir, '--destination', `${registry.host}/${destination}`, ...extra]);
    if (result.code !== 0) throw new Error(`kiln failed (${result.code}):\n${result.stderr}`);
    const digest = result.stdout.trim().split('\n').at(-1) ?? '';
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    return digest;
  }

  /** The image as skopeo and umoci see it: its config and its unpacked root filesystem. */
  async function readBack(destination: string): Promise<{ config: ImageConfig; rootfs: string }> {
    const ref = `docker://${registry.host}/${destination}`;
    const { stdout } = await runTool('skopeo', ['inspect', '--config', '--raw', '--tls-verify=false', ref]);
    const layout = path.join(work, `layout-${++counter}`);
    await runTool('skopeo', ['copy', '--src-tls-verify=false', ref, `oci:${layout}:img`]);
    const rootfs = path.join(work, `rootfs-${counter}`);
    await runTool('umoci', ['raw', 'unpack', '--image', `${layout}:img`, rootfs]);
    return { config: JSON.parse(stdout) as ImageConfig, rootfs };
  }

  it('builds config and files like BuildKit: ENV, WORKDIR, COPY, RUN, USER, CMD, ENTRYPOINT and the rest', async () => {
    const dir = await context(
      [
        'FROM BASE_IMAGE',
        'ENV GREETING="hello world" TARGET=/opt/app',
        'WORKDIR $TARGET',
        'COPY app.sh ./bin/',
        'RUN chmod 755 bin/app.sh && echo "$GREETING" > greeting.txt && echo builder:x:1234:1234::/home/builder:/bin/sh >> /etc/passwd && echo builder:x:1234: >> /etc/group',
        'RUN rm /etc/shadow',
        'RUN --network=none echo no network needed',
        'USER builder',
        'RUN touch /tmp/made-by-builder',
        'EXPOSE 8080 53/udp',
        'LABEL org.example.team=kiln',
        'VOLUME /data',
        'STOPSIGNAL SIGINT',
        'HEALTHCHECK --interval=30s CMD ["/opt/app/bin/app.sh"]',
        'ENTRYPOINT ["/opt/app/bin/app.sh"]',
        'CMD ["--serve"]',
        '',
      ].join('\n'),
      { 'app.sh': '#!/bin/sh\necho app "$@"\n' },
    );
    await build(dir, 'app:1', ['--label', 'extra=yes']);
    const { config, rootfs } = await readBack('app:1');
    const c = config.config ?? {};
    expect(c.Env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'GREETING=hello world', 'TARGET=/opt/app']);
    expect(c.WorkingDir).toBe('/opt/app');
    expect(c.User).toBe('builder');
    expect(c.Entrypoint).toEqual(['/opt/app/bin/app.sh']);
    expect(c.Cmd).toEqual(['--serve']);
    expect(Object.keys(c.ExposedPorts ?? {}).sort()).toEqual(['53/udp', '8080/tcp']);
    expect(c.Labels).toEqual({ 'org.example.team': 'kiln', extra: 'yes' });
    expect(Object.keys(c.Volumes ?? {})).toEqual(['/data']);
    expect(c.StopSignal).toBe('SIGINT');
    expect(c.Healthcheck).toEqual({ Test: ['CMD', '/opt/app/bin/app.sh'], Interval: 30e9 });
    expect(await readFile(path.join(rootfs, 'opt/app/greeting.txt'), 'utf8')).toBe('hello world\n');
    expect((await stat(path.join(rootfs, 'opt/app/bin/app.sh'))).mode & 0o777).toBe(0o755);
    const made = await stat(path.join(rootfs, 'tmp/made-by-builder'));
    expect([made.uid, made.gid]).toEqual([1234, 1234]);
    await expect(lstat(path.join(rootfs, 'etc/shadow'))).rejects.toThrow(/ENOENT/);
    expect(await readFile(path.join(rootfs, 'etc/passwd'), 'utf8')).toContain('builder:x:1234:1234');
    const history = (config.history ?? []).map((h) => h.created_by ?? '');
    expect(history).toContain('ENV GREETING="hello world" TARGET=/opt/app');
    expect(history.some((h) => h.startsWith('RUN /bin/sh -c chmod 755 bin/app.sh') && h.endsWith('# buildkit'))).toBe(true);
    expect(history).toContain('CMD ["--serve"]');
    expect((config.history ?? []).filter((h) => h.empty_layer !== true)).toHaveLength(config.rootfs.diff_ids.length);
  });

  it('builds only what the target needs, copies between stages, and follows a symlinked source', async () => {
    const dir = await context(
      [
        'FROM BASE_IMAGE AS compile',
        'RUN mkdir -p /out && echo compiled > /out/artifact && ln -s artifact /out/latest',
        'FROM BASE_IMAGE AS broken',
        'RUN exit 3',
        'FROM BASE_IMAGE AS final',
        'COPY --from=compile /out/latest /app/artifact',
        'COPY --from=0 /out /app/tree/',
        'FROM BASE_IMAGE AS other',
        'RUN exit 4',
        '',
      ].join('\n'),
    );
    await build(dir, 'multi:1', ['--target', 'final']);
    const { rootfs } = await readBack('multi:1');
    expect((await lstat(path.join(rootfs, 'app/artifact'))).isFile()).toBe(true);
    expect(await readFile(path.join(rootfs, 'app/artifact'), 'utf8')).toBe('compiled\n');
    expect((await lstat(path.join(rootfs, 'app/tree/latest'))).isSymbolicLink()).toBe(true);
  });

  it('fails a build whose RUN fails, naming the line and exit code, and leaves the tag as it was', async () => {
    const good = await build(await context('FROM BASE_IMAGE\nRUN echo ok > /ok\n'), 'fail:1');
    const result = await kiln(['--context', await context('FROM BASE_IMAGE\nRUN echo before\nRUN false\n'), '--destination', `${registry.host}/fail:1`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/Dockerfile:3: RUN false failed: exit code 1/);
    const { stdout } = await runTool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/fail:1`]);
    expect(`sha256:${(await import('node:crypto')).createHash('sha256').update(stdout).digest('hex')}`).toBe(good);
  });

  it("gives RUN Docker's default capabilities, and SYS_PTRACE only with --cap-add", async () => {
    const dockerfile = 'FROM BASE_IMAGE\nRUN grep CapEff /proc/self/status > /capeff\n';
    await build(await context(dockerfile), 'caps:default');
    await build(await context(dockerfile), 'caps:ptrace', ['--cap-add', 'SYS_PTRACE']);
    const mask = async (tag: string): Promise<bigint> => {
      const { rootfs } = await readBack(tag);
      return BigInt(`0x${(await readFile(path.join(rootfs, 'capeff'), 'utf8')).split(':')[1]?.trim()}`);
    };
    const ptrace = 1n << 19n;
    expect(await mask('caps:default')).toBe(0xa80425fbn);
    expect((await mask('caps:ptrace')) & ptrace).toBe(ptrace);
  });

  it('runs ONBUILD triggers of a base image in the child build', async () => {
    await build(await context('FROM BASE_IMAGE\nONBUILD RUN echo triggered > /onbuild\n'), 'parent:1');
    const dir = await context(`FROM ${registry.host}/parent:1\nRUN cat /onbuild\n`);
    await build(dir, 'child:1');
    const { rootfs, config } = await readBack('child:1');
    expect(await readFile(path.join(rootfs, 'onbuild'), 'utf8')).toBe('triggered\n');
    expect(config.config?.OnBuild ?? null).toBeNull();
  });

  it('writes --tar-path, --oci-layout-path and the digest files with --no-push; --reproducible gives the same digest twice', async () => {
    const dir = await context('FROM BASE_IMAGE\nCOPY a.txt /a.txt\nRUN echo x > /x\n', { 'a.txt': 'a' });
    const outputs = path.join(work, 'outputs');
    await mkdir(outputs, { recursive: true });
    const args = (n: number): string[] => [
      '--context', dir, '--destination', `${registry.host}/local:1`, '--no-push', '--reproducible',
      '--tar-path', path.join(outputs, `image-${n}.tar`), '--oci-layout-path', path.join(outputs, `layout-${n}`),
      '--digest-file', path.join(outputs, `digest-${n}`), '--image-name-with-digest-file', path.join(outputs, `name-${n}`),
      '--image-name-tag-with-digest-file', path.join(outputs, `tag-${n}`),
    ];
    const first = await kiln(args(1));
    const second = await kiln(args(2));
    expect(first.code).toBe(0);
    const digest = first.stdout.trim().split('\n').at(-1);
    expect(second.stdout.trim().split('\n').at(-1)).toBe(digest);
    expect(await readFile(path.join(outputs, 'digest-1'), 'utf8')).toBe(digest);
    expect(await readFile(path.join(outputs, 'name-1'), 'utf8')).toBe(`${registry.host}/local@${digest}\n`);
    expect(await readFile(path.join(outputs, 'tag-1'), 'utf8')).toBe(`${registry.host}/local:1@${digest}\n`);
    const { stdout } = await runTool('skopeo', ['inspect', '--raw', `oci:${path.join(outputs, 'layout-1')}`]);
    expect(JSON.parse(stdout).layers).toHaveLength(3);
    await runTool('skopeo', ['inspect', `docker-archive:${path.join(outputs, 'image-1.tar')}`]);
    await expect(runTool('skopeo', ['inspect', '--tls-verify=false', `docker://${registry.host}/local:1`])).rejects.toThrow();
  });

  it('gives files a RUN makes as an unknown numeric USER group 0 (BuildKit)', async () => {
    await build(await context('FROM BASE_IMAGE\nUSER 1001\nRUN touch /tmp/by-1001\n'), 'numeric:1');
    const { rootfs } = await readBack('numeric:1');
    const made = await stat(path.join(rootfs, 'tmp/by-1001'));
    expect([made.uid, made.gid]).toEqual([1001, 0]);
  });

  it('keeps cache mounts across builds, out of the image; secrets reach RUN and nothing else', async () => {
    const secretFile = path.join(work, 'token.txt');
    const secret = `s3cr3t-${process.pid}-${Date.now()}`;
    await writeFile(secretFile, secret);
    const dockerfile = [
      'FROM BASE_IMAGE',
      'RUN --mount=type=cache,target=/cache sh -c "echo run >> /cache/runs; wc -l < /cache/runs > /runs-seen"',
      'RUN --mount=type=secret,id=token sh -c "sha256sum /run/secrets/token | cut -d\\" \\" -f1 > /secret-check"',
      'RUN --mount=type=secret,id=token,env=TOKEN sh -c "test -n \"$TOKEN\" && echo env-ok > /env-check"',
      '',
    ].join('\n');
    const args = ['--secret', `id=token,src=${secretFile}`];
    const dir = await context(dockerfile);
    await build(dir, 'cache:1', args);
    const second = await kiln(['--context', dir, '--destination', `${registry.host}/cache:2`, ...args]);
    expect(second.code).toBe(0);
    expect(second.stdout + second.stderr).not.toContain(secret);
    const first = await readBack('cache:1');
    const again = await readBack('cache:2');
    expect((await readFile(path.join(first.rootfs, 'runs-seen'), 'utf8')).trim()).toBe('1');
    expect((await readFile(path.join(again.rootfs, 'runs-seen'), 'utf8')).trim()).toBe('2');
    await expect(lstat(path.join(again.rootfs, 'cache/runs'))).rejects.toThrow(/ENOENT/);
    const secretDigest = (await import('node:crypto')).createHash('sha256').update(secret).digest('hex');
    expect(await readFile(path.join(again.rootfs, 'secret-check'), 'utf8')).toBe(`${secretDigest}\n`);
    expect(await readFile(path.join(again.rootfs, 'env-check'), 'utf8')).toBe('env-ok\n');
    await expect(lstat(path.join(again.rootfs, 'run/secrets/token'))).rejects.toThrow(/ENOENT/);
    // Every layer (deleted files included), the config and the manifest.
    expect(await findInImage(`${registry.host}/cache:2`, secret, { registry })).toEqual([]);
  });

  it('takes the COPY-only fast path with exact results: base symlinks followed, --chown by name, base files intact', async () => {
    await build(
      await context('FROM BASE_IMAGE\nRUN mkdir -p /opt/real && ln -s /opt/real /opt/link && echo app:x:4321:4321::/:/bin/sh >> /etc/passwd && echo app:x:4321: >> /etc/group\n'),
      'linked-base:1',
    );
    const dir = await context(`FROM ${registry.host}/linked-base:1\nCOPY --chown=app:app f.txt /opt/link/f.txt\nCOPY f.txt /copied/\n`, { 'f.txt': 'payload' });
    const result = await kiln(['--context', dir, '--destination', `${registry.host}/copy-only:1`]);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/without file contents \(COPY-only stage\)/);
    const { rootfs } = await readBack('copy-only:1');
    const copied = await stat(path.join(rootfs, 'opt/real/f.txt'));
    expect([copied.uid, copied.gid]).toEqual([4321, 4321]);
    expect((await lstat(path.join(rootfs, 'opt/link'))).isSymbolicLink()).toBe(true);
    expect(await readFile(path.join(rootfs, 'copied/f.txt'), 'utf8')).toBe('payload');
    expect((await stat(path.join(rootfs, 'bin/busybox'))).size).toBeGreaterThan(100_000);
  });

  it('pushes to every destination, in Docker format with --image-format docker, and annotates OCI manifests', async () => {
    const dir = await context('FROM BASE_IMAGE\nRUN echo two > /two\n');
    const digest = await build(dir, 'formats:docker', ['--destination', `${registry.host}/formats-copy:docker`, '--image-format', 'docker']);
    for (const ref of ['formats:docker', 'formats-copy:docker']) {
      const { stdout } = await runTool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/${ref}`]);
      const manifest = JSON.parse(stdout) as { mediaType: string; layers: { mediaType: string }[] };
      expect(manifest.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
      expect(manifest.layers.every((layer) => layer.mediaType === 'application/vnd.docker.image.rootfs.diff.tar.gzip')).toBe(true);
      expect(`sha256:${(await import('node:crypto')).createHash('sha256').update(stdout).digest('hex')}`).toBe(digest);
    }
    await build(dir, 'formats:oci', ['--annotation', 'org.opencontainers.image.source=https://example.invalid/repo']);
    const { stdout } = await runTool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/formats:oci`]);
    expect(JSON.parse(stdout).annotations).toEqual({ 'org.opencontainers.image.source': 'https://example.invalid/repo' });
  });

  it('refuses, before building, a capability kiln itself does not have (CAP_SYS_RESOURCE is missing here)', async () => {
    const result = await kiln(['--context', await context('FROM BASE_IMAGE\nRUN echo never > /never\n'), '--destination', `${registry.host}/nocap:1`, '--cap-add', 'SYS_RESOURCE']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/CAP_SYS_RESOURCE.*docker run --cap-add SYS_RESOURCE/);
    expect(result.stderr).not.toMatch(/RUN echo never/);
  });

  it('probes push permission before building: a registry that refuses the push fails the build at once', async () => {
    const guarded = await startRegistry('basic');
    try {
      const result = await kiln(['--context', await context('FROM BASE_IMAGE\nRUN echo built > /built\n'), '--destination', `${guarded.host}/nope:1`]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/401|unauthori[sz]ed|authentication required/i);
      expect(result.stderr).not.toMatch(/RUN echo built/);
      const skipped = await kiln(['--context', await context('FROM BASE_IMAGE\nRUN echo built > /built\n'), '--destination', `${guarded.host}/nope:1`, '--skip-push-permission-check']);
      expect(skipped.code).toBe(1);
      expect(skipped.stderr).toMatch(/RUN echo built/);
    } finally {
      await guarded.stop();
    }
  });

  it('runs two builds side by side', async () => {
    const [a, b] = await Promise.all([
      build(await context('FROM BASE_IMAGE\nRUN echo a > /who && sleep 1\n'), 'side:a'),
      build(await context('FROM BASE_IMAGE\nRUN echo b > /who && sleep 1\n'), 'side:b'),
    ]);
    expect(a).not.toBe(b);
    expect(await readFile(path.join((await readBack('side:a')).rootfs, 'who'), 'utf8')).toBe('a\n');
    expect(await readFile(path.join((await readBack('side:b')).rootfs, 'who'), 'utf8')).toBe('b\n');
  });

  it('stops cleanly on SIGTERM: the step is killed and the work directory removed', async () => {
    const dir = await context('FROM BASE_IMAGE\nRUN sleep 300\n');
    const child = spawn(process.execPath, [cli, '--kaniko-dir', kilnDir, '--context', dir, '--destination', `${registry.host}/slow:1`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (stderr.includes('RUN sleep 300')) {
          clearInterval(check);
          resolve();
        }
      }, 50);
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code).not.toBe(0);
    expect((await readdir(kilnDir)).filter((name) => name.startsWith('build-'))).toEqual([]);
    const { stdout } = await runTool('ps', ['-eo', 'args']);
    expect(stdout).not.toMatch(/^sleep 300$/m);
  });
});
