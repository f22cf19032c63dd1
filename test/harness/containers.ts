/**
 * What podman and buildah need to run on this machine kind, per test run: a private copy of
 * containers.conf (runc, cgroupfs, rlimits within the hard limit, no network by default; see the
 * comments in containers.conf beside this file) whose tmp_dir points into a fresh temporary
 * directory, and containers/storage root and runroot in that same directory. Nothing is shared
 * with another run or with the machine's own /var/lib/containers.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runTool } from './process.js';

const templatePath = fileURLToPath(new URL('./containers.conf', import.meta.url));

export type StorageDriver = 'overlay' | 'vfs';

/** How to reach a registry: the fields of a TestRegistry that podman/buildah/skopeo need. */
export interface RegistryAccess {
  /** Directory with the registry's CA as `ca.crt` (TLS registries); plain HTTP when absent. */
  certDir?: string;
  /** Both set: send these credentials. */
  username?: string;
  password?: string;
  /** A TestRegistry's mode: credentials are sent only in `basic` and `token` modes. */
  mode?: string;
}

export class ContainerToolError extends Error {
  constructor(
    message: string,
    readonly command: string,
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'ContainerToolError';
  }
}

export interface ContainersSandbox {
  /** The temporary directory holding everything below (removed by dispose()). */
  dir: string;
  /** The containers.conf copy (CONTAINERS_CONF). */
  confPath: string;
  storageDriver: StorageDriver;
  /** `--root … --runroot … --storage-driver …`: global flags for podman and buildah. */
  storageArgs: readonly string[];
  /** The process environment for podman/buildah (CONTAINERS_CONF set). */
  env: NodeJS.ProcessEnv;
  dispose(): Promise<void>;
}

export async function createContainersSandbox(prefix: string, storageDriver: StorageDriver = 'overlay'): Promise<ContainersSandbox> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `kiln-${prefix}-`));
  try {
    const tmpDir = path.join(dir, 'libpod-tmp');
    await mkdir(tmpDir, { recursive: true });
    const confPath = path.join(dir, 'containers.conf');
    await writeFile(confPath, withTmpDir(await readFile(templatePath, 'utf8'), tmpDir));
    const storageArgs = ['--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'runroot'), '--storage-driver', storageDriver];
    return {
      dir,
      confPath,
      storageDriver,
      storageArgs,
      env: { ...process.env, CONTAINERS_CONF: confPath },
      dispose: () => removeWithMounts(dir),
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** The containers.conf text with its `tmp_dir` (podman's runtime state) moved to `tmpDir`. */
export function withTmpDir(conf: string, tmpDir: string): string {
  const line = /^tmp_dir\s*=.*$/m;
  if (!line.test(conf)) throw new Error('test/harness/containers.conf has no tmp_dir line to rewrite');
  return conf.replace(line, `tmp_dir = ${JSON.stringify(tmpDir)}`);
}

/** `--tls-verify=false` / `--cert-dir`, and `--creds` when the registry wants them (podman pull, buildah build/push). */
export function registryFlags(access: RegistryAccess | undefined): string[] {
  const flags = access?.certDir !== undefined ? [`--cert-dir=${access.certDir}`] : ['--tls-verify=false'];
  const credentialsWanted = access?.mode === undefined || access.mode === 'basic' || access.mode === 'token';
  if (credentialsWanted && access?.username !== undefined && access.password !== undefined) {
    flags.push(`--creds=${access.username}:${access.password}`);
  }
  return flags;
}

/**
 * Removes a directory tree. A container left behind by a failed build or run (or a failed
 * debootstrap's /proc) can keep something mounted under it, and rm would then fail with EBUSY:
 * such mounts are detached first.
 */
export async function removeWithMounts(dir: string): Promise<void> {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  const mounts = mountinfo
    .split('\n')
    .map((line) => unescapeMountPath(line.split(' ')[4] ?? ''))
    .filter((mountPoint) => mountPoint.startsWith(dir + path.sep))
    .sort((a, b) => b.length - a.length);
  for (const mountPoint of mounts) await runTool('umount', ['-l', mountPoint]);
  await rm(dir, { recursive: true, force: true });
}

function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}
