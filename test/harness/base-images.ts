/**
 * Test base images made without pulling anything: a busybox root filesystem from Debian's
 * busybox-static, packed by umoci and pushed by skopeo (as ../shared/tools/make-busybox-image.sh
 * does). umoci writes manifests without `mediaType` and a `/` entry in the layer: real-world
 * quirks that kiln must read.
 */
import { chmod, lutimes, mkdir, mkdtemp, rm, symlink, writeFile, copyFile, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runTool } from './process.js';

export interface BusyboxImageOptions {
  /** `host:port` of the registry. */
  registry: string;
  /** `repository:tag` (default `busybox:latest`). */
  image?: string;
  /** skopeo destination flags (TLS trust, credentials): TestRegistry.skopeoDestArgs(). */
  skopeoDestArgs: readonly string[];
  /** `oci` keeps umoci's OCI manifest; `v2s2` has skopeo convert it to Docker schema 2. */
  format?: 'oci' | 'v2s2';
  busybox?: string;
  architecture?: string;
}

export interface PushedBaseImage {
  /** `host:port/repository:tag` */
  reference: string;
  /** The manifest as the registry serves it (from `skopeo inspect --raw`). */
  rawManifest: string;
}

export async function pushBusyboxImage(options: BusyboxImageOptions): Promise<PushedBaseImage> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'kiln-busybox-'));
  try {
    const rootfs = path.join(work, 'rootfs');
    await makeBusyboxRootfs(rootfs, options.busybox ?? '/bin/busybox');
    const layout = path.join(work, 'oci');
    const image = `${layout}:latest`;
    await runTool('umoci', ['init', '--layout', layout]);
    await runTool('umoci', ['new', '--image', image]);
    await runTool('umoci', ['insert', '--rootless=false', '--image', image, rootfs, '/']);
    await runTool('umoci', [
      'config', '--image', image,
      `--architecture=${options.architecture ?? goArchitecture()}`, '--os=linux',
      '--config.cmd=sh',
      '--config.env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      '--author=local', '--created=1970-01-01T00:00:00Z',
    ]);
    await runTool('umoci', ['gc', '--layout', layout]);
    const reference = `${options.registry}/${options.image ?? 'busybox:latest'}`;
    const format = options.format === 'v2s2' ? ['--format', 'v2s2'] : [];
    await runTool('skopeo', ['copy', ...format, ...options.skopeoDestArgs, `oci:${image}`, `docker://${reference}`]);
    const srcArgs = options.skopeoDestArgs.map((arg) => arg.replace(/^--dest-/, '--'));
    const { stdout } = await runTool('skopeo', ['inspect', '--raw', ...srcArgs, `docker://${reference}`]);
    return { reference, rawManifest: stdout };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The root filesystem of make-busybox-image.sh: busybox, its applet links, passwd/group/shadow. */
export async function makeBusyboxRootfs(rootfs: string, busybox: string): Promise<void> {
  for (const dir of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'tmp', 'root', 'home', 'var', 'proc', 'sys', 'dev']) {
    await mkdir(path.join(rootfs, dir), { recursive: true });
  }
  await chmod(path.join(rootfs, 'tmp'), 0o1777);
  await chmod(path.join(rootfs, 'root'), 0o700);
  await copyFile(busybox, path.join(rootfs, 'bin/busybox'));
  await chmod(path.join(rootfs, 'bin/busybox'), 0o755);
  const { stdout } = await runTool(busybox, ['--list-full']);
  for (const applet of stdout.split('\n').map((line) => line.trim()).filter(Boolean)) {
    if (applet === 'bin/busybox') continue;
    const target = path.join(rootfs, applet);
    await mkdir(path.dirname(target), { recursive: true });
    await rm(target, { force: true });
    await symlink('/bin/busybox', target);
  }
  await writeFile(
    path.join(rootfs, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n',
  );
  await writeFile(path.join(rootfs, 'etc/group'), 'root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n');
  await writeFile(path.join(rootfs, 'etc/shadow'), 'root:*:19000:0:99999:7:::\n');
  await chmod(path.join(rootfs, 'etc/shadow'), 0o640);
  await clampTimes(rootfs);
}

/** mtime 0 everywhere (links included), so repeated builds give the same layer. */
async function clampTimes(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) await clampTimes(full);
    await lutimes(full, 0, 0);
  }
  await lutimes(dir, 0, 0);
}

function goArchitecture(): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' };
  return map[process.arch] ?? process.arch;
}
