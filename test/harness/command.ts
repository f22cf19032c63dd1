/**
 * Runs a tool and reports its exit code instead of throwing: podman's exit code is the container's,
 * which tests assert on. (process.ts's runTool is for tools that must succeed.)
 */
import { spawn } from 'node:child_process';

export interface CommandResult {
  stdout: string;
  stderr: string;
  /** The exit code, or 128 + signal number when a signal ended it (as a shell reports it). */
  exitCode: number;
}

export interface CommandOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Written to the command's standard input, which is then closed. */
  input?: string;
  /** SIGTERM after this long, SIGKILL 5 s later (default: no limit). */
  timeoutMs?: number;
}

const signalNumbers: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

export function runCommand(command: string, args: readonly string[], options: CommandOptions = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
    if (options.input !== undefined) child.stdin?.end(options.input);
    let killTimer: NodeJS.Timeout | undefined;
    const termTimer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            child.kill('SIGTERM');
            killTimer = setTimeout(() => child.kill('SIGKILL'), 5_000);
          }, options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(termTimer);
      clearTimeout(killTimer);
      reject(new Error(`${command} could not be started: ${error.message}`, { cause: error }));
    });
    child.once('close', (code, signal) => {
      clearTimeout(termTimer);
      clearTimeout(killTimer);
      resolve({
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
        exitCode: code ?? 128 + (signal !== null ? (signalNumbers[signal] ?? 0) : 0),
      });
    });
  });
}
