import { spawn } from 'node:child_process';
import { lstat, mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { chrootCommand, type ChrootStep } from './chroot-command.js';

export interface RunStepRequest extends Omit<ChrootStep, 'hostFiles' | 'tools'> {
  env: Record<string, string>;
  stdout: Writable;
  stderr: Writable;
  /** Aborting kills the step and everything it started. */
  signal?: AbortSignal;
  /** Host files to show inside the root, e.g. ['/etc/resolv.conf', '/etc/hosts']. */
  hostFiles: readonly string[];
}

export interface StepResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

export class SandboxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SandboxError';
  }
}

/** The mount points a step needs must be real directories of the root, never links that could lead out. */
async function ensureMountDirectory(root: string, name: string): Promise<void> {
  const path = join(root, name);
  const stats = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (stats === undefined) {
    await mkdir(path, { mode: 0o755 });
  } else if (!stats.isDirectory()) {
    throw new SandboxError(`/${name} in the root filesystem is not a directory; a RUN step cannot mount it`);
  }
}

/**
 * Host files (resolv.conf, hosts) are mounted over a regular file of the root. A missing one is created
 * empty for the step and removed afterwards (returned), so it never reaches a snapshot; a symlink is
 * not mounted over, since the mount would follow it on the host side.
 */
async function prepareHostFiles(root: string, files: readonly string[]): Promise<{ mounts: { source: string; target: string }[]; created: string[] }> {
  const mounts: { source: string; target: string }[] = [];
  const created: string[] = [];
  for (const source of files) {
    const hostStats = await lstat(source).catch(() => undefined);
    if (!hostStats) continue;
    const target = join(root, source);
    const parent = await lstat(dirname(target)).catch(() => undefined);
    if (!parent?.isDirectory()) continue;
    const stats = await lstat(target).catch(() => undefined);
    if (stats === undefined) {
      await writeFile(target, '', { mode: 0o644, flag: 'wx' });
      created.push(target);
    } else if (!stats.isFile()) {
      continue;
    }
    mounts.push({ source, target });
  }
  return { mounts, created };
}

export interface SandboxTools {
  setpriv: string;
  unshare: string;
}

/** Runs one RUN step chrooted in fresh namespaces and waits for it and everything it started. */
export async function runChrootStep(request: RunStepRequest, tools: SandboxTools): Promise<StepResult> {
  for (const name of ['proc', 'dev', 'sys']) await ensureMountDirectory(request.root, name);
  const { mounts, created } = await prepareHostFiles(request.root, request.hostFiles);
  const argv = chrootCommand({ ...request, hostFiles: mounts, tools });
  try {
    return await new Promise<StepResult>((resolve, reject) => {
      const child = spawn(argv[0] ?? tools.unshare, argv.slice(1), {
        env: request.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        signal: request.signal,
        killSignal: 'SIGKILL',
      });
      child.stdout.pipe(request.stdout, { end: false });
      child.stderr.pipe(request.stderr, { end: false });
      child.once('error', (error) => {
        if (error.name === 'AbortError') return;
        reject(new SandboxError(`could not start the RUN sandbox (${tools.unshare}): ${error.message}`));
      });
      child.once('close', (exitCode, signal) => resolve({ exitCode, signal }));
    });
  } finally {
    await Promise.all(created.map((path) => rm(path, { force: true })));
  }
}

/** Finds util-linux's setpriv and unshare on the host PATH (they run before the chroot). */
export async function locateSandboxTools(hostPath: string): Promise<SandboxTools> {
  const find = async (name: string): Promise<string> => {
    for (const dir of hostPath.split(':').filter(Boolean)) {
      const candidate = join(dir, name);
      const stats = await lstat(candidate).catch(() => undefined);
      if (stats && !stats.isDirectory()) return candidate;
    }
    throw new SandboxError(`RUN steps need util-linux's ${name} on the PATH (Debian/Ubuntu: apt-get install util-linux)`);
  };
  return { setpriv: await find('setpriv'), unshare: await find('unshare') };
}
