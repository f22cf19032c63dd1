import { lstat, mkdir, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { CommandRunner } from '../rootfs/command-runner.js';
import { pathComponents, resolveRelativeInRoot } from '../rootfs/resolve-in-root.js';

export type MountPointKind = 'directory' | 'file';

export class MountPointError extends Error {
  constructor(
    readonly target: string,
    message: string,
  ) {
    super(message);
    this.name = 'MountPointError';
  }
}

interface Stub {
  /** Host paths kiln created, outermost first; the last one is the mount point itself. */
  created: string[];
}

/** Gives a directory back its modification time, to the nanosecond where the means allow. */
export type MtimeRestorer = (path: string, mtimeNs: bigint) => Promise<void>;

/** Node's utimes goes through a double and loses nanoseconds; touch(1) takes them exactly. */
export function touchMtime(runCommand: CommandRunner): MtimeRestorer {
  return async (path, mtimeNs) => {
    const seconds = mtimeNs / 1_000_000_000n;
    const nanos = (mtimeNs % 1_000_000_000n).toString().padStart(9, '0');
    const result = await runCommand('touch', ['-m', '-c', '-d', `@${seconds}.${nanos}`, path]);
    if (result.exitCode !== 0) throw new MountPointError(path, `could not restore the modification time of ${path}: ${result.stderr.trim()}`);
  };
}

interface ParentTimes {
  /** mtime (ns) before kiln created anything in it. */
  original: bigint;
  /** mtime (ns) once every stub of the step was made: anything else means the step changed it. */
  afterCreation?: bigint;
}

/**
 * The mount points of one step's `RUN --mount`s inside its root. BuildKit leaves no trace of a mount
 * point in the layer, so a target that is missing is created for the step and removed afterwards:
 * the mount point itself, then each directory kiln created for it while it is empty (one the step
 * wrote into is the step's own change and stays). The directory that held the first created entry
 * gets its mtime back when the step left it alone, so a time-based snapshot sees nothing either.
 * What cannot be undone: its ctime, and on an overlay root the copy-up of that directory into the
 * upper layer (same content and metadata as below, so it adds an entry but no change).
 */
export class MountPointStubs {
  private readonly stubs: Stub[] = [];
  private readonly parents = new Map<string, ParentTimes>();
  /** Parents the step left alone, as found when it ended ({@link stepEnded}). */
  private untouched: [string, bigint][] | undefined;

  constructor(
    readonly root: string,
    private readonly restoreMtime: MtimeRestorer,
  ) {}

  /**
   * The host path of `target` inside the root, resolved as the step will see it (symlinks the image
   * planted stay inside the root) and made to exist as `kind`; `created` says whether kiln made the
   * mount point itself or found it in the image.
   */
  async prepare(target: string, kind: MountPointKind): Promise<{ host: string; relative: string; created: boolean }> {
    const relative = await resolveRelativeInRoot(this.root, target);
    if (relative === '') throw new MountPointError(target, `cannot mount over the root directory (target ${target})`);
    const components = pathComponents(relative);
    const created: string[] = [];
    for (let index = 0; index < components.length; index++) {
      const host = join(this.root, ...components.slice(0, index + 1));
      const isLast = index === components.length - 1;
      const stats = created.length > 0 ? undefined : await lstat(host).catch(missingAsUndefined);
      if (stats !== undefined) {
        const wanted = isLast ? kind : 'directory';
        if (wanted === 'directory' && !stats.isDirectory()) {
          const where = isLast ? 'but the mount is a directory' : `/${components.slice(0, index + 1).join('/')} is in the way`;
          throw new MountPointError(target, `mount target ${target} is not a directory in the image (${where})`);
        }
        if (wanted === 'file' && stats.isDirectory()) {
          throw new MountPointError(target, `mount target ${target} is a directory in the image, but the mount is a file`);
        }
        continue;
      }
      if (created.length === 0) await this.holdTimeOf(dirname(host));
      if (isLast && kind === 'file') await writeFile(host, '', { mode: 0o644, flag: 'wx' });
      else await mkdir(host, { mode: 0o755 });
      created.push(host);
    }
    if (created.length > 0) this.stubs.push({ created });
    return { host: join(this.root, ...components), relative, created: created.length > 0 };
  }

  /** Call once every mount point exists, before the step starts. */
  async seal(): Promise<void> {
    for (const [path, times] of this.parents) times.afterCreation = (await stat(path, { bigint: true })).mtimeNs;
  }

  /**
   * Call when the step has ended, before kiln itself adds or removes anything in the parents again
   * (in-place mounts, taken away): which of them the step left alone is read now.
   */
  async stepEnded(): Promise<void> {
    this.untouched = await this.untouchedParents();
  }

  /**
   * Removes what {@link prepare} created, once the step's mounts are gone. Returns the host paths
   * left in place because the step wrote into them.
   */
  async remove(): Promise<string[]> {
    const untouched = this.untouched ?? (await this.untouchedParents());
    const kept: string[] = [];
    for (const stub of [...this.stubs].reverse()) {
      for (const path of [...stub.created].reverse()) {
        const removed = await removeIfEmpty(path);
        if (!removed) {
          kept.push(path);
          break;
        }
      }
    }
    for (const [path, mtime] of untouched) {
      if ((await lstat(path).catch(missingAsUndefined)) === undefined) continue;
      await this.restoreMtime(path, mtime);
    }
    this.stubs.length = 0;
    this.parents.clear();
    this.untouched = undefined;
    return kept;
  }

  /**
   * Call before kiln adds or removes an entry of `dir` for a mount (a stub, or what the image has
   * at a target moved aside): its modification time is given back by {@link remove} unless the
   * step changed it too.
   */
  async holdTimeOf(dir: string): Promise<void> {
    if (this.parents.has(dir)) return;
    this.parents.set(dir, { original: (await stat(dir, { bigint: true })).mtimeNs });
  }

  private async untouchedParents(): Promise<[string, bigint][]> {
    const untouched: [string, bigint][] = [];
    for (const [path, times] of this.parents) {
      const now = await stat(path, { bigint: true }).catch(missingAsUndefined);
      if (now !== undefined && now.mtimeNs === times.afterCreation) untouched.push([path, times.original]);
    }
    return untouched;
  }
}

function missingAsUndefined(error: NodeJS.ErrnoException): undefined {
  if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
  throw error;
}

/** False when the step left something in it (it is then the step's change, kept in the layer). */
async function removeIfEmpty(path: string): Promise<boolean> {
  const stats = await lstat(path).catch(missingAsUndefined);
  if (stats === undefined) return true;
  try {
    if (stats.isDirectory()) await rmdir(path);
    else if (stats.isFile() && stats.size === 0) await unlink(path);
    else return false;
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'EBUSY') return false;
    throw error;
  }
}
