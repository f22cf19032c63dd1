/**
 * An ordinary user made for one test file (the tests run as root), optionally with passwordless
 * sudo as GitHub- and Microsoft-hosted runners give their job user. remove() deletes the sudoers
 * drop-in and the user, and tries both even when one fails.
 */
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runTool } from './process.js';

export interface ThrowawayUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  /** `/etc/sudoers.d/kiln-test-NAME`, when the user was given sudo. */
  sudoersFile: string | undefined;
  remove(): Promise<void>;
}

export interface ThrowawayUserOptions {
  /** The home directory to create (its parent must exist and let the user through). */
  home: string;
  /** Give the user `NOPASSWD: ALL` through a sudoers drop-in. */
  passwordlessSudo: boolean;
  /** Where to write the drop-in before `visudo -cf` has checked it: never a broken file in sudoers.d. */
  scratchDir: string;
}

async function numericId(flag: '-u' | '-g', name: string): Promise<number> {
  return Number((await runTool('id', [flag, name])).stdout.trim());
}

async function removeAll(steps: readonly (() => Promise<unknown>)[]): Promise<void> {
  const failures: unknown[] = [];
  for (const step of steps) await step().catch((error: unknown) => failures.push(error));
  if (failures.length > 0) throw new AggregateError(failures, 'removing the throw-away user failed');
}

export async function createThrowawayUser(options: ThrowawayUserOptions): Promise<ThrowawayUser> {
  // useradd allows 32 characters; a random suffix keeps parallel or leftover runs apart.
  const name = `kiln-t-${randomBytes(5).toString('hex')}`;
  await runTool('useradd', ['--home-dir', options.home, '--create-home', '--user-group', '--shell', '/bin/sh', name]);
  const sudoersFile = options.passwordlessSudo ? `/etc/sudoers.d/kiln-test-${name}` : undefined;
  // Removing a drop-in that was never written is harmless (force), so remove() needs no bookkeeping.
  const remove = (): Promise<void> =>
    removeAll([...(sudoersFile !== undefined ? [() => rm(sudoersFile, { force: true })] : []), () => runTool('userdel', [name])]);
  try {
    if (sudoersFile !== undefined) {
      const rule = `${name} ALL=(ALL:ALL) NOPASSWD: ALL\n`;
      const draft = path.join(options.scratchDir, `sudoers-${name}`);
      await writeFile(draft, rule, { mode: 0o440 });
      await runTool('visudo', ['-cf', draft]);
      await writeFile(sudoersFile, rule, { mode: 0o440, flag: 'wx' });
    }
    return { name, uid: await numericId('-u', name), gid: await numericId('-g', name), home: options.home, sudoersFile, remove };
  } catch (error) {
    await remove();
    throw error;
  }
}
