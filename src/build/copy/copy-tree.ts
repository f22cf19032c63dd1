/**
 * Writing copied entries into the destination root with BuildKit's (fsutil's) rules:
 * - a directory is merged into an existing directory; one that must be created gets the source
 *   directory's metadata, and so does every directory below the copied one (existing or not);
 * - a file, link or special file replaces a non-directory at its target (never writing through a
 *   symlink there); a directory in its way is an error, as is a non-directory where a directory goes;
 * - symlinks are copied as links with the target as stored; hard links between copied files stay
 *   hard links; owners become `--chown`, or 0:0 from the context, or stay as found (`--from`);
 *   `--chmod` edits every copied file and directory (not symlinks); mtimes and atimes are kept.
 *
 * The walk below the resolved destination joins names itself: every directory it descends into
 * was lstat-ed (or created) as a real directory just before, so no component can be a symlink.
 */
import type { Stats } from 'node:fs';
import { chmod, copyFile, lchown, link, lstat, lutimes, mkdir, readdir, readlink, symlink, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { IgnoreMatcher } from '../../context/dockerignore.js';
import type { CommandRunner } from '../../rootfs/command-runner.js';
import type { ChangeRecorder } from './change-recorder.js';
import { joinRelative } from './change-recorder.js';
import type { ModeEditor } from './chmod.js';
import type { XattrCopy } from './copy-xattrs.js';
import type { InstructionSite } from './errors.js';
import { CopyError } from './errors.js';
import type { SourceTree } from './select-sources.js';
import { lstatOrUndefined } from '../../rootfs/lstat.js';

export interface Owner {
  uid: number;
  gid: number;
}

/** What stays the same for every entry of one COPY/ADD. */
export interface CopyContext {
  site: InstructionSite;
  recorder: ChangeRecorder;
  /** `--chown`, resolved in the destination image. */
  chown?: Owner;
  /** `--chmod`, compiled. */
  mode?: ModeEditor;
  /** `--exclude`, matched against paths relative to the source's literal base. */
  excludes?: IgnoreMatcher;
  /** Source `dev:ino` of a multiply-linked file → host path of its first copy, once written. */
  hardlinks: Map<string, Promise<string>>;
  limiter: Limiter;
  /** Makes device nodes and FIFOs (`mknod`). */
  runner: CommandRunner;
  /** Present when the sources' extended attributes are kept (`--from`): every file and directory written with a source's metadata. */
  xattrCopies?: XattrCopy[];
}

/** One entry to copy: where it is in the source tree and where it goes in the destination. */
export interface CopyEntry {
  tree: SourceTree;
  /** Tree-relative path of the entry (symlinks already followed for a top-level source). */
  source: string;
  stat: Stats;
  /** Root-relative destination path; its parent exists and is a real directory. */
  target: string;
  /** Path relative to the source's literal base, for `--exclude` (`''`: never excluded). */
  excludePath: string;
  /** Apply the source directory's metadata even when the target directory already exists. */
  overwriteMetadata: boolean;
}



function sourceHost(tree: SourceTree, relative: string): string {
  return relative === '' ? tree.root : path.join(tree.root, relative);
}

/** Whom a copied entry belongs to. */
export function ownerOf(ctx: CopyContext, tree: SourceTree, stat: Stats): Owner {
  if (ctx.chown !== undefined) return ctx.chown;
  return tree.preserveOwners ? { uid: stat.uid, gid: stat.gid } : { uid: 0, gid: 0 };
}

function permissionsOf(ctx: CopyContext, stat: Stats): number {
  return ctx.mode === undefined ? stat.mode & 0o7777 : ctx.mode(stat.mode, stat.isDirectory());
}

/**
 * Owner, then mode (chown clears set-id bits), then times: the order that keeps all three. Extended
 * attributes are only noted: they are set once the whole copy is written (copy-xattrs.ts).
 */
export async function applyMetadata(ctx: CopyContext, tree: SourceTree, stat: Stats, host: string, source: string): Promise<void> {
  const owner = ownerOf(ctx, tree, stat);
  await lchown(host, owner.uid, owner.gid);
  if (!stat.isSymbolicLink()) await chmod(host, permissionsOf(ctx, stat));
  await lutimes(host, stat.atimeMs / 1000, stat.mtimeMs / 1000);
  if (stat.isFile() || stat.isDirectory()) ctx.xattrCopies?.push({ source, target: host });
}

/** Clears the way for a non-directory at `host`: an existing non-directory is removed. */
async function replaceableTarget(ctx: CopyContext, host: string, target: string): Promise<void> {
  const existing = await lstatOrUndefined(host);
  if (existing === undefined) return;
  if (existing.isDirectory()) throw new CopyError(ctx.site, `cannot replace to directory /${target} with file`);
  await unlink(host);
}

function isExcluded(ctx: CopyContext, excludePath: string): boolean {
  return ctx.excludes !== undefined && excludePath !== '' && ctx.excludes.isExcluded(excludePath);
}

/**
 * Bounds how many file copies run at once. The copies of one directory's files overlap (the
 * syscalls go to libuv's thread pool): sequentially, 10k small files took 4x longer than `cp -a`.
 */
export class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

/** Waits for every task, then throws the first failure (none is left running or unobserved). */
async function settle(tasks: readonly Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(tasks);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}

/** Copies one entry (recursively for a directory). Returns false when `--exclude` skipped it. */
export async function copyEntry(ctx: CopyContext, entry: CopyEntry): Promise<boolean> {
  const pending: Promise<void>[] = [];
  const copied = await startEntry(ctx, entry, pending);
  await settle(pending);
  return copied;
}

/**
 * Records the entry and starts writing it: a directory is walked to the end before this returns;
 * a non-directory's write is pushed onto `pending`. Recording happens here, in walk order, so the
 * change list is the same whatever order the writes finish in.
 */
async function startEntry(ctx: CopyContext, entry: CopyEntry, pending: Promise<void>[]): Promise<boolean> {
  const { tree, source, stat, target } = entry;
  const excluded = isExcluded(ctx, entry.excludePath);
  if (excluded && !(stat.isDirectory() && ctx.excludes?.mayReincludeBelow(entry.excludePath) === true)) return false;
  const host = ctx.recorder.host(target);
  if (stat.isDirectory()) {
    await copyDirectory(ctx, entry, host, excluded);
    return true;
  }
  ctx.recorder.record(target);
  if (stat.isFile() && stat.nlink > 1) {
    // Claimed now, before any await, so a second name of the same inode always links to the first.
    const key = `${stat.dev}:${stat.ino}`;
    const first = ctx.hardlinks.get(key);
    if (first !== undefined) {
      // The wait happens outside the limiter: a slot held while waiting could starve the first copy.
      pending.push(
        first.then((firstHost) =>
          ctx.limiter.run(async () => {
            await replaceableTarget(ctx, host, target);
            await link(firstHost, host);
          }),
        ),
      );
      return true;
    }
    const copying = ctx.limiter.run(async () => {
      await writeNonDirectory(ctx, tree, source, stat, host, target);
      return host;
    });
    ctx.hardlinks.set(key, copying);
    pending.push(copying.then(() => undefined));
    return true;
  }
  pending.push(ctx.limiter.run(() => writeNonDirectory(ctx, tree, source, stat, host, target)));
  return true;
}

async function writeNonDirectory(ctx: CopyContext, tree: SourceTree, source: string, stat: Stats, host: string, target: string): Promise<void> {
  await replaceableTarget(ctx, host, target);
  if (stat.isFile()) await copyFile(sourceHost(tree, source), host);
  else if (stat.isSymbolicLink()) await symlink(await readlink(sourceHost(tree, source)), host);
  else await makeSpecialFile(ctx, stat, host, target);
  await applyMetadata(ctx, tree, stat, host, sourceHost(tree, source));
}

async function copyDirectory(ctx: CopyContext, entry: CopyEntry, host: string, excluded: boolean): Promise<void> {
  const { tree, source, stat, target } = entry;
  const existing = await lstatOrUndefined(host);
  let created = false;
  if (existing === undefined) {
    // Private until its metadata is applied below, like fsutil's Mkdir with the source mode.
    await mkdir(host, { mode: 0o700 });
    created = true;
  } else if (!existing.isDirectory()) {
    throw new CopyError(ctx.site, `cannot copy to non-directory: /${target}`);
  }
  ctx.recorder.record(target);
  const names = (await readdir(sourceHost(tree, source))).sort().filter((name) => tree.visible(joinRelative(source, name)));
  const stats = await Promise.all(names.map((name) => ctx.limiter.run(() => lstat(sourceHost(tree, joinRelative(source, name))))));
  const pending: Promise<void>[] = [];
  try {
    for (let i = 0; i < names.length; i++) {
      const name = names[i] as string;
      await startEntry(
        ctx,
        {
          tree,
          source: joinRelative(source, name),
          stat: stats[i] as Stats,
          target: joinRelative(target, name),
          excludePath: entry.excludePath === '' ? name : `${entry.excludePath}/${name}`,
          overwriteMetadata: true,
        },
        pending,
      );
    }
  } finally {
    await settle(pending);
  }
  // An excluded directory walked only for a re-included child keeps what it had.
  if ((created || entry.overwriteMetadata) && !(excluded && !created)) await applyMetadata(ctx, tree, stat, host, sourceHost(tree, source));
}

async function makeSpecialFile(ctx: CopyContext, stat: Stats, host: string, target: string): Promise<void> {
  let args: string[];
  if (stat.isFIFO()) args = [host, 'p'];
  else if (stat.isCharacterDevice() || stat.isBlockDevice()) {
    const major = (stat.rdev >> 8) & 0xfff;
    const minor = (stat.rdev & 0xff) | ((stat.rdev >> 12) & 0xfff00);
    args = [host, stat.isCharacterDevice() ? 'c' : 'b', String(major), String(minor)];
  } else {
    throw new CopyError(ctx.site, `cannot copy /${target}: sockets cannot be copied`);
  }
  const result = await ctx.runner('mknod', args);
  if (result.exitCode !== 0) throw new CopyError(ctx.site, `cannot create /${target}: mknod failed: ${result.stderr.trim()}`);
}
