/**
 * `RUN --mount` with `--isolation in-place`, where nothing can be mounted: each mount is emulated by
 * putting its content at the target before the step and taking it away after, before the snapshot
 * walks the root, so no layer ever holds it. What the image has at a target is moved aside into
 * kiln's work directory meanwhile and put back; mount points missing from the image are created and
 * removed as in the chroot sandbox (mount-points.ts), and the directories kiln added to or removed
 * from get their modification time back. As the step sees them, the mounts keep BuildKit's meaning,
 * except where only a real mount could hold:
 * - bind: a copy of the source. Its writes are discarded after the step, and a read-only bind cannot
 *   refuse them.
 * - cache: its directory under the cache root is renamed into the target and back (copied where the
 *   two lie on different filesystems). Whatever its sharing (shared, private, locked), one step at a
 *   time holds a cache: while a step has it, it is not in the cache root. A step of another build
 *   sharing the cache root meanwhile starts a fresh one, and the one returned last is dropped.
 *   A readonly cache is a copy whose writes are discarded.
 * - tmpfs: an empty directory (1777) on the root's own filesystem; `size=` is not enforced.
 * - secret: a file written at the target for the step (it is on disk meanwhile, in the root) and
 *   removed after it, failed or not; `env=` secrets go into the step's environment.
 * - ssh: refused, as in chroot.
 * - A mount point is a plain entry: the step can remove or rename it, where a real one is busy. The
 *   directory holding it is then the step's change and goes into the layer.
 * Only node's fs calls are used: the host's programs may be gone once "/" holds an image.
 */
import { chmod, lstat, lutimes, mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { lstatOrUndefined } from '../rootfs/lstat.js';
import { resolveRelativeInRoot } from '../rootfs/resolve-in-root.js';
import { RootPaths } from '../rootfs/root-paths.js';
import { copyEntryTree, moveEntry, type TreeCopyOptions } from '../rootfs/tree-copy.js';
import { cacheHome, createCacheDirectory } from './cache-mounts.js';
import { MountPointStubs, type MountPointKind } from './mount-points.js';
import { checkMountRequests, findMountSecret, resolveBindSource, resolveCacheSeed, RunMountError, type RunMountContext, type RunMountRequest } from './run-mounts.js';

/** What a build gives every in-place step's mounts. */
export interface InPlaceMountContext extends Pick<RunMountContext, 'cacheRoot' | 'secrets' | 'hostEnv' | 'scratchDir'> {
  /** What in the root belongs to kiln or the container (in-place.ts): no mount may cover or hold it. */
  protect: RootPaths;
  /** Entries a copy leaves out (device nodes, sockets). */
  warn(message: string): void;
}

/** The mounts put in place for one step; {@link release} must run once the step is over, failed or not. */
export interface InPlaceMounts {
  /** `env=` secrets, added to the step's environment. */
  env: Record<string, string>;
  /** Takes every mount's content away and puts back what the image had, before the snapshot. */
  release(): Promise<void>;
}

/**
 * Node sets times through libuv, which keeps whole microseconds: the seconds to give it so that a
 * time in whole microseconds (every time kiln unpacked) comes back exactly. Half a microsecond is
 * added because the nearest double may lie just below, and libuv truncates.
 */
export function utimesSeconds(mtimeNs: bigint): number {
  const micros = mtimeNs / 1000n;
  return Number(micros / 1_000_000n) + (Number(micros % 1_000_000n) + 0.5) / 1e6;
}

/**
 * With node, since touch(1) may be gone with the host's programs. A finer time than a microsecond
 * (a directory a step wrote into) comes back within one, and a walking snapshot then lists that
 * directory: an entry with the metadata it had (layers keep whole seconds), and no content.
 */
async function restoreMtimeWithNode(path: string, mtimeNs: bigint): Promise<void> {
  const seconds = utimesSeconds(mtimeNs);
  await lutimes(path, (await lstat(path)).atime, seconds);
}

/**
 * Puts the step's mounts in place inside `root`. Failing half way, it undoes what it did before
 * throwing.
 */
export async function prepareInPlaceMounts(root: string, requests: readonly RunMountRequest[], context: InPlaceMountContext): Promise<InPlaceMounts> {
  // No descriptors are involved: a step may have as many secret files as it asks for.
  checkMountRequests(requests, Number.POSITIVE_INFINITY);
  const emulation = new MountEmulation(root, context);
  try {
    for (const request of requests) await emulation.add(request);
    await emulation.seal();
  } catch (error) {
    await emulation.release();
    throw error;
  }
  return { env: emulation.env, release: () => emulation.release() };
}

class MountEmulation {
  readonly env: Record<string, string> = {};
  private readonly stubs: MountPointStubs;
  /** Run in reverse by release: for each mount, its content is taken away before the image's comes back. */
  private readonly undo: { what: string; run: () => Promise<void> }[] = [];
  private readonly copy: TreeCopyOptions;
  private stagingDir: string | undefined;
  private asides = 0;

  constructor(
    private readonly root: string,
    private readonly context: InPlaceMountContext,
  ) {
    this.stubs = new MountPointStubs(root, restoreMtimeWithNode);
    this.copy = { skip: new RootPaths([]), warn: context.warn };
  }

  async add(request: RunMountRequest): Promise<void> {
    switch (request.type) {
      case 'bind': {
        const { source, kind } = await resolveBindSource(request.source);
        const target = await this.clearTarget(request.target, kind);
        this.onRelease(`bind ${request.target}`, () => rm(target, { recursive: true, force: true }));
        await copyEntryTree(source, target, this.copy);
        return;
      }
      case 'cache':
        return this.addCache(request);
      case 'tmpfs': {
        const target = await this.clearTarget(request.target, 'directory');
        this.onRelease(`tmpfs ${request.target}`, () => rm(target, { recursive: true, force: true }));
        await mkdir(target, { recursive: true });
        // As BuildKit's tmpfs: any user of the step may write there.
        await chmod(target, 0o1777);
        return;
      }
      case 'secret': {
        const secret = await findMountSecret(request, this.context);
        if (secret === undefined) return;
        if (request.env !== undefined) this.env[request.env] = (await secret.read()).toString('utf8');
        if (request.target === undefined) return;
        const target = await this.clearTarget(request.target, 'file');
        this.onRelease(`secret ${request.target}`, () => rm(target, { force: true }));
        await writeSecretFile(target, await secret.read(), { mode: request.mode ?? 0o400, uid: request.uid ?? 0, gid: request.gid ?? 0 });
        return;
      }
      case 'ssh':
        // checkMountRequests refused it already.
        return;
    }
  }

  /** Call once every mount is in place, before the step starts. */
  async seal(): Promise<void> {
    await this.stubs.seal();
  }

  async release(): Promise<void> {
    await this.stubs.stepEnded();
    const failures: string[] = [];
    for (const action of this.undo.splice(0).reverse()) {
      try {
        await action.run();
      } catch (error) {
        failures.push(`${action.what}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    try {
      await this.stubs.remove();
    } catch (error) {
      failures.push(`mount points: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (failures.length > 0) {
      // What could not be put back is still in the staging directory: it is kept for the user.
      throw new RunMountError(`RUN --mount: could not undo every mount after the step (${failures.join('; ')})${this.stagingDir === undefined ? '' : `; kept ${this.stagingDir}`}`);
    }
    if (this.stagingDir !== undefined) await rm(this.stagingDir, { recursive: true, force: true });
  }

  private async addCache(request: Extract<RunMountRequest, { type: 'cache' }>): Promise<void> {
    if (this.context.cacheRoot === undefined) throw new RunMountError('RUN --mount=type=cache needs a cache directory, and the build gave none');
    const seed = await resolveCacheSeed(request.seed);
    // Only `data`, never a private copy: one step at a time holds the cache here (see the top).
    const data = join(await cacheHome(this.context.cacheRoot, request.id), 'data');
    await createCacheDirectory(data, { id: request.id, sharing: request.sharing, mode: request.mode, uid: request.uid, gid: request.gid, seed }, (from, into) =>
      copyEntryTree(from, into, this.copy),
    );
    const target = await this.clearTarget(request.target, 'directory');
    if (request.readonly) {
      this.onRelease(`cache ${request.target}`, () => rm(target, { recursive: true, force: true }));
      await copyEntryTree(data, target, this.copy);
      return;
    }
    this.onRelease(`cache ${request.target}`, () => this.returnCache(target, data));
    await moveEntry(data, target, this.copy);
  }

  /**
   * Back to the cache root, as the step left it. Nothing comes back when the step removed the cache
   * or put something else than a directory there, or when another build made a new one meanwhile.
   */
  private async returnCache(target: string, data: string): Promise<void> {
    const stats = await lstatOrUndefined(target);
    if (stats === undefined) return;
    if (!stats.isDirectory() || (await lstatOrUndefined(data)) !== undefined) {
      await rm(target, { recursive: true, force: true });
      return;
    }
    await moveEntry(target, data, this.copy);
  }

  /**
   * The host path of a mount target with nothing at it but an empty stub kiln made: what the image
   * has there is moved aside until release.
   */
  private async clearTarget(target: string, kind: MountPointKind): Promise<string> {
    const relative = await resolveRelativeInRoot(this.root, target);
    const protect = this.context.protect;
    if (relative !== '' && (protect.covers(relative) || protect.holdsBelow(relative))) {
      throw new RunMountError(`mount target ${target} is, or holds, a path in-place isolation must leave alone (kiln's own files, the build context, a mount point of the container)`);
    }
    const point = await this.stubs.prepare(target, kind);
    if (point.created) return point.host;
    await this.stubs.holdTimeOf(dirname(point.host));
    this.stagingDir ??= await mkdtemp(join(this.context.scratchDir, 'kiln-mounts-'));
    const aside = join(this.stagingDir, String(this.asides++));
    await moveEntry(point.host, aside, this.copy);
    this.onRelease(`putting back ${target}`, async () => {
      // A step may have removed the directory holding the target, which a real mount would have kept.
      await mkdir(dirname(point.host), { recursive: true });
      await moveEntry(aside, point.host, this.copy);
    });
    return point.host;
  }

  private onRelease(what: string, run: () => Promise<void>): void {
    this.undo.push({ what, run });
  }
}

/** Written while only its owner can read it, then given the mount's owner and mode. */
async function writeSecretFile(path: string, bytes: Buffer, owner: { mode: number; uid: number; gid: number }): Promise<void> {
  const handle = await open(path, 'w', 0o600);
  try {
    await handle.chmod(0o600);
    await handle.writeFile(bytes);
    // chown before chmod: chown clears setuid/setgid.
    await handle.chown(owner.uid, owner.gid);
    await handle.chmod(owner.mode);
  } finally {
    await handle.close();
  }
}
