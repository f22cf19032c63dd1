import { execFile } from 'node:child_process';

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a short helper command (mknod, setfattr) and reports how it ended. A non-zero exit resolves
 * (the caller decides whether that is a warning or an error); failing to start at all rejects.
 * Injected so tests can see and vary what would be run.
 */
export type CommandRunner = (command: string, args: readonly string[]) => Promise<CommandResult>;

export const runCommand: CommandRunner = (command, args) =>
  new Promise((resolve, reject) => {
    // A getfattr dump of thousands of files can pass execFile's 1 MiB default.
    execFile(command, [...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error === null) {
        resolve({ exitCode: 0, stdout, stderr });
        return;
      }
      const code = (error as NodeJS.ErrnoException).code;
      if (typeof code === 'number') {
        resolve({ exitCode: code, stdout, stderr });
        return;
      }
      reject(error);
    });
  });

/**
 * Sets one extended attribute, its value as raw bytes, on the path itself (a symlink is not
 * followed). Node has no xattr API, so this is setfattr(1), Debian's `attr` package.
 */
export function setXattr(run: CommandRunner, path: string, name: string, value: Buffer): Promise<CommandResult> {
  return run('setfattr', ['-h', '-n', name, '-v', `0x${value.toString('hex')}`, path]);
}
