/**
 * Becoming root for what needs it: RUN isolation, and removing what a root build left behind.
 * Only passwordless sudo (`sudo -n`) is used: a CI job has no terminal to answer a prompt.
 */
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { constants } from 'node:os';

/** The argument that switches a CI bundle into the privileged child's role. */
export const privilegedBuildFlag = '--kiln-privileged-build';

/** sudo could not give us root without a password: say what the job needs. */
export class PrivilegeError extends Error {
  constructor(detail: string) {
    super(
      `kiln needs root to isolate RUN steps and the job runs as an ordinary user; passwordless sudo failed (${detail}). ` +
        'Run the job as root (a container job with `options: --user root`) or allow this user `NOPASSWD` sudo, as GitHub- and Microsoft-hosted runners do.',
    );
    this.name = 'PrivilegeError';
  }
}

export interface ProcessInvocation {
  command: string;
  args: string[];
}

/** How to run the build: in this process (undefined) when already root, else this same script under `sudo -n`. */
export function privilegedInvocation(uid: number, nodePath: string, script: string, requestFile: string): ProcessInvocation | undefined {
  if (uid === 0) return undefined;
  return { command: 'sudo', args: ['-n', '--', nodePath, script, privilegedBuildFlag, requestFile] };
}

/** Runs a command with inherited stdio; resolves with its exit code. Aborting sends it SIGTERM. */
export type InheritingRunner = (invocation: ProcessInvocation, options: { cwd: string; signal?: AbortSignal }) => Promise<number>;

export const spawnInheriting: InheritingRunner = (invocation, options) =>
  new Promise((resolve, reject) => {
    // stdout of the child goes to our stderr: a wrapper's stdout carries workflow commands only.
    const child = spawn(invocation.command, invocation.args, {
      cwd: options.cwd,
      stdio: ['ignore', process.stderr, process.stderr],
      ...(options.signal ? { signal: options.signal, killSignal: 'SIGTERM' as const } : {}),
    });
    child.once('error', (error) => {
      // An abort is not a failure to run: the child got SIGTERM and 'close' brings its exit code.
      if (error.name !== 'AbortError') reject(error);
    });
    // As a shell reports it: a child killed by SIGKILL (the OOM killer's) exits with 137.
    child.once('close', (code, signal) => resolve(code ?? 128 + (signal === null ? 0 : constants.signals[signal])));
  });

/**
 * Removes a directory the wrapper made. Files a privileged build left in it belong to root, so an
 * unprivileged runner removes them through the same passwordless sudo that made them.
 */
export async function removeDirectory(path: string, uid: number, run: InheritingRunner): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
    return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (uid === 0 || (code !== 'EACCES' && code !== 'EPERM')) throw error;
  }
  const exit = await run({ command: 'sudo', args: ['-n', '--', 'rm', '-rf', '--', path] }, { cwd: '/' });
  if (exit !== 0) throw new PrivilegeError(`sudo rm -rf ${path} exited with code ${exit}`);
}
