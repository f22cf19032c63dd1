import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, chown, lstat, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CommandRunner } from '../rootfs/command-runner.js';

export type CacheSharing = 'shared' | 'private' | 'locked';

export class CacheMountError extends Error {
  constructor(
    readonly cacheId: string,
    message: string,
  ) {
    super(message);
    this.name = 'CacheMountError';
  }
}

/** A held lock; releasing it lets the next build or step in. */
export interface HeldLock {
  release(): Promise<void>;
}

/**
 * Takes a flock(2) on `path` through util-linux's flock, which holds it for as long as its helper
 * shell waits on stdin. Node has no flock of its own; this way the lock is shared with every other
 * kiln process on the host, and dies with kiln: if kiln is killed, the pipe closes and the lock goes.
 * Resolves undefined when `wait` is false and someone else holds it.
 */
export function takeLock(flock: string, path: string, mode: 'shared' | 'exclusive', wait: boolean, signal?: AbortSignal): Promise<HeldLock | undefined> {
  const busy = 75;
  const args = [mode === 'shared' ? '--shared' : '--exclusive', ...(wait ? [] : ['--nonblock', `--conflict-exit-code=${busy}`]), path, '/bin/sh', '-c', 'echo locked; read -r _ || :'];
  return new Promise((resolve, reject) => {
    const holder = spawn(flock, args, { stdio: ['pipe', 'pipe', 'pipe'], signal, killSignal: 'SIGKILL' });
    let errorText = '';
    let held = false;
    const closed = new Promise<void>((done) => holder.once('close', () => done()));
    holder.stderr.on('data', (chunk: Buffer) => (errorText += chunk.toString()));
    holder.stdout.on('data', (chunk: Buffer) => {
      if (held || !chunk.toString().includes('locked')) return;
      held = true;
      resolve({
        release: async () => {
          holder.stdin.end();
          await closed;
        },
      });
    });
    holder.once('error', (error) => {
      if (!held) reject(new Error(`could not lock ${path} with ${flock}: ${error.message}`));
    });
    holder.once('close', (code) => {
      if (held) return;
      if (code === busy) resolve(undefined);
      else reject(new Error(`could not lock ${path} with ${flock} (exit ${code ?? 'by signal'}): ${errorText.trim()}`));
    });
  });
}

/** Cache ids are free text (`/root/.cache/go-build`, `npm`): hashed into one safe directory name. */
export function cacheDirectoryName(id: string): string {
  return createHash('sha256').update(id).digest('hex').slice(0, 32);
}

export interface CacheMountRequest {
  id: string;
  sharing: CacheSharing;
  /** Applied to the cache directory when it is first created (BuildKit: 0755, 0, 0). */
  mode?: number;
  uid?: number;
  gid?: number;
  /** A host directory whose content fills the cache when it is first created (`from=`/`source=`). */
  seed?: string;
}

export interface AcquiredCache {
  /** The host directory to mount. */
  directory: string;
  lock: HeldLock;
}

/** The most private copies of one cache id used at the same time before kiln gives up. */
const maxPrivateCopies = 64;

/** Fills a new cache directory (`into`, empty) with the content of its `from=` source. */
export type CacheSeeder = (seed: string, into: string) => Promise<void>;

/** The directory all copies of one cache id live in, `<cacheRoot>/<sha256(id)>`, made ready. */
export async function cacheHome(cacheRoot: string, id: string): Promise<string> {
  const home = join(cacheRoot, cacheDirectoryName(id));
  await mkdir(home, { recursive: true, mode: 0o700 });
  await writeFile(join(home, 'id'), `${id}\n`);
  return home;
}

/**
 * The directory of a cache mount under `cacheRoot`, kept across builds:
 * `<cacheRoot>/<sha256(id)>/data` (and `data-N` for private copies), each with a `.lock` beside it.
 * Every user holds that lock for the step: shared users a shared lock, `locked` an exclusive one
 * (so it waits for every other user), `private` an exclusive one taken without waiting, moving on to
 * the next copy when it is busy: a fresh directory per concurrent user, kept for later ones.
 */
export async function acquireCacheDirectory(
  cacheRoot: string,
  request: CacheMountRequest,
  tools: { flock: string; runCommand: CommandRunner },
  signal?: AbortSignal,
): Promise<AcquiredCache> {
  const home = await cacheHome(cacheRoot, request.id);
  let chosen: { directory: string; lock: HeldLock } | undefined;
  if (request.sharing === 'private') {
    for (let copy = 0; copy < maxPrivateCopies && chosen === undefined; copy++) {
      const name = copy === 0 ? 'data' : `data-${copy}`;
      const lock = await takeLock(tools.flock, join(home, `${name}.lock`), 'exclusive', false, signal);
      if (lock !== undefined) chosen = { directory: join(home, name), lock };
    }
    if (chosen === undefined) throw new CacheMountError(request.id, `cache ${request.id}: all ${maxPrivateCopies} private copies are in use`);
  } else {
    const mode = request.sharing === 'locked' ? 'exclusive' : 'shared';
    const lock = await takeLock(tools.flock, join(home, 'data.lock'), mode, true, signal);
    if (lock === undefined) throw new CacheMountError(request.id, `cache ${request.id}: lock not taken`);
    chosen = { directory: join(home, 'data'), lock };
  }
  try {
    await createCacheDirectory(chosen.directory, request, seedWithCp(tools.runCommand, request.id));
  } catch (error) {
    await chosen.lock.release();
    throw error;
  }
  return chosen;
}

/** `cp -a`, which keeps owners, modes, links and times. */
function seedWithCp(runCommand: CommandRunner, id: string): CacheSeeder {
  return async (seed, into) => {
    const copied = await runCommand('cp', ['-a', '--', `${seed}/.`, `${into}/`]);
    if (copied.exitCode !== 0) throw new CacheMountError(id, `cache ${id}: could not seed it from its from= source: ${copied.stderr.trim()}`);
  };
}

/**
 * Creates the cache directory when it does not exist yet (BuildKit's mode, owner and seed apply to
 * a new cache only). Made aside and renamed into place, so a concurrent shared user never sees it
 * half seeded. Two shared users creating the same new cache at once both build one; the second
 * rename fails and its copy is dropped (unless the first is still empty, in which case the second
 * replaces it).
 */
export async function createCacheDirectory(directory: string, request: CacheMountRequest, seedWith: CacheSeeder): Promise<void> {
  const existing = await lstat(directory).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (existing !== undefined) {
    if (!existing.isDirectory()) throw new CacheMountError(request.id, `cache ${request.id}: ${directory} is not a directory`);
    return;
  }
  const fresh = `${directory}.new-${randomBytes(6).toString('hex')}`;
  try {
    await mkdir(fresh, { mode: 0o755 });
    if (request.seed !== undefined) await seedWith(request.seed, fresh);
    await chmod(fresh, request.mode ?? 0o755);
    await chown(fresh, request.uid ?? 0, request.gid ?? 0);
    await rename(fresh, directory).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
    });
  } finally {
    await rm(fresh, { recursive: true, force: true });
  }
}
