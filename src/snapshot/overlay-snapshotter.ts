import fs from 'node:fs';
import { mkdir, mkdtemp, realpath, rm } from 'node:fs/promises';
import path from 'node:path';
import { setXattr, type CommandRunner } from '../rootfs/command-runner.js';
import type { Change, ChangeSet } from './change.js';
import { OverlayError, SnapshotStateError } from './errors.js';
import { hostPathInsideRoot, IgnoreList } from './ignore.js';
import { findOpaqueDirs } from './opaque-dirs.js';
import { readProcMountInfo, type CommonSnapshotOptions, type Snapshotter } from './snapshotter.js';
import { listUpperDir, type UpperEntry } from './upper-dir.js';
import { dumpXattrs } from './xattrs.js';

export interface OverlayOptions extends CommonSnapshotOptions {
  /**
   * Where the upper, work and merged directories go (inside kiln's work dir). It must lie outside the
   * root; on the root's filesystem, commit() moves files with rename(2) instead of copying them.
   */
  scratchDir: string;
  /** Runs mount, umount, getfattr (and cp when scratch and root are on different filesystems). */
  run: CommandRunner;
}

interface Mounted {
  root: string;
  dir: string;
  merged: string;
  upper: string;
  work: string;
  isMounted: boolean;
}

/**
 * Each step runs on an overlayfs: lower = the root as the last commit left it, upper = an empty
 * directory. The upper directory is then exactly what the step changed, so a diff costs what changed,
 * not what the root holds.
 *
 * Design choice: commit() merges the upper directory down into the root (unmount, rename each changed
 * entry into place, apply whiteouts and opaque directories, remount on a fresh upper) rather than stacking
 * uppers as extra lowers. With one lower, "what was at this path before the step" is one lstat in the
 * root (needed to emit a delete when a file replaced a directory or the reverse), with no whiteout and
 * opaque resolution across a stack; there is no lowerdir length or stack-depth limit to manage; and the
 * root always holds the committed state, which later stages (COPY --from) and the cache read directly.
 * The price is a rename per changed entry and an unmount/mount per step: milliseconds.
 */
export class OverlaySnapshotter implements Snapshotter {
  readonly mode = 'overlay' as const;
  private state: Mounted | undefined;

  constructor(private readonly options: OverlayOptions) {}

  async prepare(root: string): Promise<string> {
    if (this.state !== undefined) throw new SnapshotStateError('prepare', 'twice without release()');
    const realRoot = await realpath(root);
    await mkdir(this.options.scratchDir, { recursive: true });
    const scratch = await realpath(this.options.scratchDir);
    if (hostPathInsideRoot(realRoot, scratch) !== undefined || hostPathInsideRoot(scratch, realRoot) !== undefined) {
      throw new OverlayError(`overlay scratch directory ${scratch} and root ${realRoot} must not contain each other`);
    }
    for (const p of [realRoot, scratch]) {
      // mount(8) and the kernel split overlay options on "," and lowerdir on ":"; escaping differs between
      // util-linux versions, so such paths are refused with a clear message rather than mis-mounted.
      if (/[,:\\\n]/.test(p)) throw new OverlayError(`overlay cannot mount a path containing ",", ":" or "\\": ${p}`);
    }
    const dir = await mkdtemp(path.join(scratch, 'ovl-'));
    const state: Mounted = {
      root: realRoot,
      dir,
      merged: path.join(dir, 'merged'),
      upper: path.join(dir, 'upper'),
      work: path.join(dir, 'work'),
      isMounted: false,
    };
    await Promise.all([mkdir(state.merged), mkdir(state.upper), mkdir(state.work)]);
    this.state = state;
    await this.mount(state);
    return state.merged;
  }

  async diff(): Promise<ChangeSet> {
    const s = this.requireState('diff');
    const [entries, ignore] = await Promise.all([listUpperDir(s.upper), this.ignoreFor(s)]);
    const opaque = await this.opaqueDirs(s, entries);
    return { root: s.merged, changes: changesFromUpper(s.root, entries, opaque, ignore) };
  }

  async commit(): Promise<void> {
    const s = this.requireState('commit');
    await this.unmount(s);
    await this.mergeDown(s);
    await rm(s.work, { recursive: true, force: true });
    await Promise.all([mkdir(s.upper), mkdir(s.work)]);
    await this.mount(s);
  }

  /** Unmounts and merges what the last commit did not take, so the root holds the final state. */
  async release(): Promise<void> {
    const s = this.state;
    if (s === undefined) return;
    if (s.isMounted) await this.unmount(s);
    // The upper dir is missing only when a commit failed between merging it and making a fresh one.
    if (fs.existsSync(s.upper)) await this.mergeDown(s);
    await rm(s.dir, { recursive: true, force: true });
    this.state = undefined;
  }

  private async mount(s: Mounted): Promise<void> {
    const options = `lowerdir=${s.root},upperdir=${s.upper},workdir=${s.work},${overlayFeatureOptions}`;
    const result = await this.options.run('mount', ['-t', 'overlay', 'overlay', '-o', options, s.merged]);
    if (result.exitCode !== 0) throw new OverlayError(`cannot mount an overlay on ${s.merged} over ${s.root}`, 'mount', result.stderr);
    s.isMounted = true;
  }

  private async unmount(s: Mounted): Promise<void> {
    const result = await this.options.run('umount', [s.merged]);
    if (result.exitCode !== 0) {
      throw new OverlayError(`cannot unmount ${s.merged} (is a step's process still running in it?)`, 'umount', result.stderr);
    }
    s.isMounted = false;
  }

  private async ignoreFor(s: Mounted): Promise<IgnoreList> {
    const mountInfo = await (this.options.readMountInfo ?? readProcMountInfo)();
    // Mounts inside the merged dir (left by a step) and inside the root (hidden under the overlay) both count.
    const byMerged = IgnoreList.forRoot(s.merged, this.options, mountInfo);
    const byRoot = IgnoreList.forRoot(s.root, this.options, mountInfo);
    return new IgnoreList([...byMerged.list(), ...byRoot.list()]);
  }

  private async opaqueDirs(s: Mounted, entries: readonly UpperEntry[]): Promise<Set<string>> {
    const dirs = entries.filter((e) => e.kind === 'dir').map((e) => `${s.upper}/${e.path}`);
    const found = await findOpaqueDirs(this.options.run, dirs);
    return new Set([...found].map((abs) => abs.slice(s.upper.length + 1)));
  }

  /** Applies the upper directory to the root: whiteouts delete, opaque dirs replace, the rest moves in. */
  private async mergeDown(s: Mounted): Promise<void> {
    const entries = await listUpperDir(s.upper);
    const opaque = await this.opaqueDirs(s, entries);
    const dirs: string[] = [];
    for (const entry of entries) {
      const target = `${s.root}/${entry.path}`;
      const existing = fs.lstatSync(target, { throwIfNoEntry: false });
      if (entry.kind === 'whiteout') {
        fs.rmSync(target, { recursive: true, force: true });
      } else if (entry.kind === 'dir') {
        if (existing !== undefined && (!existing.isDirectory() || opaque.has(entry.path))) {
          fs.rmSync(target, { recursive: true, force: true });
        }
        if (existing === undefined || !existing.isDirectory() || opaque.has(entry.path)) fs.mkdirSync(target);
        dirs.push(entry.path);
      } else {
        if (existing?.isDirectory()) fs.rmSync(target, { recursive: true, force: true });
        await this.moveInto(`${s.upper}/${entry.path}`, target);
      }
    }
    // Files moved in keep their extended attributes; directories made anew get their upper copy's.
    const dirXattrs = await dumpXattrs(this.options.run, dirs.map((rel) => `${s.upper}/${rel}`), '.');
    // Children first: adding them moved the directories' mtimes.
    for (const rel of dirs.reverse()) {
      const stats = fs.lstatSync(`${s.upper}/${rel}`, { bigint: true });
      const target = `${s.root}/${rel}`;
      fs.lchownSync(target, Number(stats.uid), Number(stats.gid));
      fs.chmodSync(target, Number(stats.mode & 0o7777n));
      for (const xattr of dirXattrs.byPath.get(`${s.upper}/${rel}`) ?? []) {
        if (overlayOwnXattr.test(xattr.name)) continue;
        const result = await setXattr(this.options.run, target, xattr.name, xattr.value);
        if (result.exitCode !== 0) throw new OverlayError(`cannot keep ${xattr.name} of ${target}`, 'setfattr', result.stderr);
      }
      fs.utimesSync(target, nsToSeconds(stats.atimeNs), nsToSeconds(stats.mtimeNs));
    }
    await rm(s.upper, { recursive: true, force: true });
  }

  private async moveInto(source: string, target: string): Promise<void> {
    try {
      fs.renameSync(source, target);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    }
    // Scratch on another filesystem than the root: cp -a keeps devices, ownership, modes and times,
    // which Node's fs.cp does not do for device nodes.
    const result = await this.options.run('cp', ['-a', '--remove-destination', '--', source, target]);
    if (result.exitCode !== 0) throw new OverlayError(`cannot copy ${source} into the root`, 'cp', result.stderr);
  }

  private requireState(operation: string): Mounted {
    if (this.state === undefined || !this.state.isMounted) throw new SnapshotStateError(operation, 'before prepare() or after a failed mount');
    return this.state;
  }
}

/**
 * redirect_dir and metacopy off: a renamed lower directory or a chmod'ed lower file would otherwise be
 * an xattr pointing into the lower layer, not a complete entry in the upper dir. index off: the root is
 * changed between mounts (merge-down), which an inode index would reject.
 */
export const overlayFeatureOptions = 'redirect_dir=off,metacopy=off,index=off';

/** overlayfs's own bookkeeping in an upper directory (opaque markers and the like), never the image's. */
const overlayOwnXattr = /^(trusted|user)\.overlay\./;

function nsToSeconds(ns: bigint): number {
  return Number(ns / 1000n) / 1e6;
}

/**
 * The upper dir's entries as changes. `root` is the lower (the tree before the step): where a path
 * had another file type there, its delete comes first so the layer replaces it exactly.
 */
export function changesFromUpper(
  root: string,
  entries: readonly UpperEntry[],
  opaque: ReadonlySet<string>,
  ignore: IgnoreList,
): Change[] {
  const changes: Change[] = [];
  // Directories whose lower counterpart is a directory: only below them can a lower path exist.
  const lowerDirs = new Set<string>(['']);
  for (const entry of entries) {
    if (ignore.covers(entry.path)) continue;
    if (entry.kind === 'whiteout') {
      changes.push({ kind: 'delete', path: entry.path });
      continue;
    }
    const slash = entry.path.lastIndexOf('/');
    const parent = slash < 0 ? '' : entry.path.slice(0, slash);
    const lower = lowerDirs.has(parent) ? fs.lstatSync(`${root}/${entry.path}`, { throwIfNoEntry: false }) : undefined;
    const lowerIsDir = lower?.isDirectory() ?? false;
    const isDir = entry.kind === 'dir';
    // A directory over a non-directory or the reverse; non-directories replace each other in any unpacker.
    if (lower !== undefined && lowerIsDir !== isDir) changes.push({ kind: 'delete', path: entry.path });
    changes.push({ kind: 'upsert', path: entry.path });
    if (isDir && lowerIsDir) {
      if (opaque.has(entry.path)) changes.push({ kind: 'opaque', path: entry.path });
      else lowerDirs.add(entry.path);
    }
  }
  return changes;
}
