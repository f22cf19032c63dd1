/** Runs a test tool (openssl, htpasswd, skopeo, umoci) and fails with its stderr when it fails. */
import { execFile } from 'node:child_process';

export interface ToolResult {
  stdout: string;
  stderr: string;
}

export function runTool(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { ...options, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`${command} ${args.join(' ')} failed: ${error.message}\n${stderr}`, { cause: error }));
        return;
      }
      resolve({ stdout, stderr });
    });
  });
}
