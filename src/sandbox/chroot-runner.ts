import { spawn } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { runCommand } from '../rootfs/command-runner.js';
import { chrootCommand, type ChrootStep } from './chroot-command.js';
import { MountPointStubs, touchMtime } from './mount-points.js';
import { prepareRunMounts, type RunMountContext, type RunMountRequest } from './run-mounts.js';

export interface RunStepRequest extends Omit<ChrootStep, 'hostFiles' | 'tools' | 'mounts' | 'stagingDir'> {
  env: Record<string, string>;
  stdout: Writable;
  stderr: Writable;
  /** Aborting kills the step and everything it started. */
  signal?: AbortSignal;
  /** Files the step sees over the image's own (/etc/resolv.conf, /etc/hosts, /etc/hostname). */
  hostFiles: readonly StepFile[];
  /** `RUN --mount`s, and what the build gives them (cache root, secrets, scratch directory). */
  runMounts?: { requests: readonly RunMountRequest[]; context: RunMountContext };
}

/** A file shown to one step at `path` with `content`; what the step writes to it is discarded. */
export interface StepFile {
  path: string;
  content: string | Buffer;
}

export interface StepResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Mount points (host paths) left in the root because the step wrote into directories kiln made for them. */
  keptMountPoints: string[];
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
 * Files a step sees in place of the image's own (resolv.conf, hosts, hostname), as a runtime gives a
 * container: private writable copies, so a step may change them but nothing it does reaches the
 * root. Each is mounted over a regular file of the root; a missing one is created empty for the
 * step and removed afterwards, its directory's mtime given back (as BuildKit does), so it never
 * reaches a snapshot; a symlink is never mounted over, since the mount would follow it on the host side.
 */
async function prepareStepFiles(
  root: string,
  files: readonly StepFile[],
  copies: string,
  stubs: MountPointStubs,
): Promise<{ source: string; target: string }[]> {
  const mounts: { source: string; target: string }[] = [];
  for (const [index, file] of files.entries()) {
    const target = join(root, file.path);
    const parent = await lstat(dirname(target)).catch(() => undefined);
    if (!parent?.isDirectory()) continue;
    const stats = await lstat(target).catch(() => undefined);
    if (stats === undefined) await stubs.prepare(file.path, 'file');
    else if (!stats.isFile()) continue;
    const source = join(copies, String(index));
    await writeFile(source, file.content, { mode: 0o644 });
    mounts.push({ source, target });
  }
  await stubs.seal();
  return mounts;
}

export interface SandboxTools {
  setpriv: string;
  unshare: string;
  /** util-linux's flock, for cache mount locks. */
  flock: string;
}

/** Runs one RUN step chrooted in fresh namespaces and waits for it and everything it started. */
export async function runChrootStep(request: RunStepRequest, tools: SandboxTools): Promise<StepResult> {
  for (const name of ['proc', 'dev', 'sys']) await ensureMountDirectory(request.root, name);
  const copies = await mkdtemp(join(tmpdir(), 'kiln-step-files-'));
  const stubs = new MountPointStubs(request.root, touchMtime(runCommand));
  const hostFiles = await prepareStepFiles(request.root, request.hostFiles, copies, stubs);
  try {
    const prepared = request.runMounts
      ? await prepareRunMounts(request.root, request.runMounts.requests, request.runMounts.context, { flock: tools.flock, signal: request.signal })
      : undefined;
    let outcome: Omit<StepResult, 'keptMountPoints'>;
    try {
      const argv = chrootCommand({ ...request, hostFiles, tools, mounts: prepared?.mounts, stagingDir: prepared?.stagingDir });
      const env = { ...request.env, ...prepared?.env };
      outcome = await spawnStep(argv, env, request, prepared?.secretInputs ?? [], tools);
    } catch (error) {
      await prepared?.release();
      throw error;
    }
    // What the step wrote next to a mount point is its own change and stays in the layer.
    const released = await prepared?.release();
    return { ...outcome, keptMountPoints: released?.kept ?? [] };
  } finally {
    await Promise.all([stubs.remove(), rm(copies, { recursive: true, force: true })]);
  }
}

/**
 * Spawns the step; secrets go down file descriptors 3-9 (never argv, env or disk) and are read by the
 * setup script into the step's private tmpfs.
 */
async function spawnStep(
  argv: string[],
  env: Record<string, string>,
  request: RunStepRequest,
  secretInputs: readonly { fd: number; open: () => NodeJS.ReadableStream }[],
  tools: SandboxTools,
): Promise<Omit<StepResult, 'keptMountPoints'>> {
  const highest = Math.max(2, ...secretInputs.map((input) => input.fd));
  const stdio: ('ignore' | 'pipe')[] = ['ignore', 'pipe', 'pipe'];
  for (let fd = 3; fd <= highest; fd++) stdio.push(secretInputs.some((input) => input.fd === fd) ? 'pipe' : 'ignore');
  const inputErrors: Error[] = [];
  const result = await new Promise<Omit<StepResult, 'keptMountPoints'>>((resolve, reject) => {
    const child = spawn(argv[0] ?? tools.unshare, argv.slice(1), {
      env,
      stdio,
      signal: request.signal,
      killSignal: 'SIGKILL',
    });
    child.stdout?.pipe(request.stdout, { end: false });
    child.stderr?.pipe(request.stderr, { end: false });
    for (const input of secretInputs) {
      const sink = child.stdio[input.fd];
      if (!(sink instanceof Writable)) {
        child.kill('SIGKILL');
        reject(new SandboxError(`no pipe for secret descriptor ${input.fd}`));
        return;
      }
      // A setup script that failed before reading closes the pipe (EPIPE): the step's exit status says so.
      sink.on('error', (error) => inputErrors.push(error));
      const source = input.open();
      source.on('error', (error: Error) => {
        inputErrors.push(error);
        sink.destroy();
      });
      source.pipe(sink);
    }
    child.once('error', (error) => {
      if (error.name === 'AbortError') return;
      reject(new SandboxError(`could not start the RUN sandbox (${tools.unshare}): ${error.message}`));
    });
    child.once('close', (exitCode, signal) => resolve({ exitCode, signal }));
  });
  if (result.exitCode === 0 && inputErrors.length > 0) {
    throw new SandboxError(`a secret could not be handed to the RUN step: ${inputErrors.map((error) => error.message).join('; ')}`);
  }
  return result;
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
  return { setpriv: await find('setpriv'), unshare: await find('unshare'), flock: await find('flock') };
}

/**
 * What a runtime gives every container: the host's DNS settings, and hosts and hostname files of its
 * own (the step's hostname on loopback), as BuildKit generates them for RUN.
 */
export async function defaultStepFiles(hostname: string, readHostFile: (path: string) => Promise<Buffer> = (path) => readFile(path)): Promise<StepFile[]> {
  const resolvConf = await readHostFile('/etc/resolv.conf').catch(() => Buffer.from(''));
  return [
    { path: '/etc/resolv.conf', content: resolvConf },
    { path: '/etc/hosts', content: `127.0.0.1\tlocalhost ${hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n` },
    { path: '/etc/hostname', content: `${hostname}\n` },
  ];
}
