/** Running an external program (git) for a context source; injected so tests can observe it. */
import { spawn } from 'node:child_process';

export interface ProcessResult {
  /** null when killed by a signal. */
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

export interface ProcessRunOptions {
  cwd?: string;
  /** The whole environment of the child (not merged with process.env). */
  env: NodeJS.ProcessEnv;
}

export interface ProcessRunner {
  run(program: string, args: readonly string[], options: ProcessRunOptions): Promise<ProcessResult>;
}

/** git's stderr beyond this is progress noise nobody reads. */
const maxOutput = 256 * 1024;

/** The real runner: spawns without a shell, stdin closed, output captured (bounded). */
export function createSpawnRunner(): ProcessRunner {
  return {
    run(program, args, { cwd, env }) {
      return new Promise((resolve, reject) => {
        const child = spawn(program, [...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        let kept = 0;
        const keep = (into: Buffer[]) => (chunk: Buffer) => {
          if (kept + chunk.length <= maxOutput) {
            into.push(chunk);
            kept += chunk.length;
          }
        };
        child.stdout.on('data', keep(out));
        child.stderr.on('data', keep(err));
        child.on('error', (error: NodeJS.ErrnoException) => {
          reject(error.code === 'ENOENT' ? new Error(`${program} is not installed here (it is not on the PATH ${env.PATH ?? '(unset)'})`, { cause: error }) : error);
        });
        child.on('close', (code) => {
          resolve({ exitCode: code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
        });
      });
    },
  };
}
