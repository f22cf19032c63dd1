/**
 * Emptying a root filesystem and copying one into another with node's own fs calls, for in-place
 * builds: once the container's "/" holds an image, the host's cp, tar and rm are the image's (or
 * gone), so nothing here may start a program.
 */
import { chmod, copyFile, constants as fsConstants, lchown, link, lstat, lutimes, mkdir, readdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { errorCode, lstatOrUndefined } from './lstat.js';
import type { RootPaths } from './root-paths.js';

/**
 * Removes everything below `root` except the kept paths; their ancestors stay as directories,
 * emptied of everything else.
 */
export async function clearRoot(root: string, keep: RootPaths, relative = ''): Promise<void> {
  const dir = relative === '' ? root : path.join(root, relative);
  for (const name of await readdir(dir)) {
    const child = relative === '' ? name : `${relative}/${name}`;
    if (keep.covers(child)) continue;
    const host = path.join(root, child);
    if (keep.holdsBelow(child) && (await lstatOrUndefined(host))?.isDirectory()) {
      await clearRoot(root, keep, child);
      continue;
    }
    await rm(host, { recursive: true, force: true });
  }
}

export interface TreeCopyOptions {
  /** Source paths not copied, and target paths not written (an in-place root's mount points). */
  skip: RootPaths;
  /** Entries a plain process cannot recreate (device nodes, sockets) are reported here and left out. */
  warn: (message: string) => void;
}

interface PendingDirectory {
  target: string;
  stats: Stats;
}

/**
 * Copies the tree at `from` into `to` (created if missing), keeping types, owners, modes, times and
 * hard links; directories already at the target are merged into. Extended attributes are not
 * copied: node has no API for them.
 */
export async function copyTree(from: string, to: string, options: TreeCopyOptions): Promise<void> {
  await mkdir(to, { recursive: true });
  const linked = new Map<string, string>();
  const directories: PendingDirectory[] = [];
  await copyChildren(from, to, '', options, linked, directories);
  // Modes and times last, deepest first: writing a child changes its parent's mtime.
  for (let i = directories.length - 1; i >= 0; i -= 1) {
    const { target, stats } = directories[i] as PendingDirectory;
    await chmod(target, stats.mode & 0o7777);
    await lutimes(target, stats.atime, stats.mtime);
  }
}

/**
 * Copies one entry of any type to `to`: a directory with everything below it (merged into one
 * already there) and its own owner, mode and times, which {@link copyTree} leaves to the caller.
 */
export async function copyEntryTree(from: string, to: string, options: TreeCopyOptions): Promise<void> {
  const stats = await lstat(from);
  if (!stats.isDirectory()) {
    await copyEntry(from, to, path.basename(from), stats, options, new Map());
    return;
  }
  await copyTree(from, to, options);
  await lchown(to, stats.uid, stats.gid);
  await chmod(to, stats.mode & 0o7777);
  await lutimes(to, stats.atime, stats.mtime);
}

/**
 * rename(2), or where `from` and `to` lie on different filesystems (EXDEV; also overlayfs renaming
 * a directory of a lower layer) a copy and a removal. A copy is new inodes with times to the
 * millisecond: a snapshot may see what came back that way as changed.
 */
export async function moveEntry(from: string, to: string, options: TreeCopyOptions): Promise<void> {
  try {
    await rename(from, to);
    return;
  } catch (error) {
    if (errorCode(error) !== 'EXDEV') throw error;
  }
  await copyEntryTree(from, to, options);
  await rm(from, { recursive: true, force: true });
}

async function copyChildren(
  from: string,
  to: string,
  relative: string,
  options: TreeCopyOptions,
  linked: Map<string, string>,
  directories: PendingDirectory[],
): Promise<void> {
  const sourceDir = relative === '' ? from : path.join(from, relative);
  for (const name of (await readdir(sourceDir)).sort()) {
    const child = relative === '' ? name : `${relative}/${name}`;
    if (options.skip.covers(child)) continue;
    const source = path.join(from, child);
    const target = path.join(to, child);
    const stats = await lstatOrUndefined(source);
    if (stats === undefined) continue;
    const existing = await lstatOrUndefined(target);
    if (stats.isDirectory()) {
      if (existing !== undefined && !existing.isDirectory()) await rm(target, { force: true });
      if (existing === undefined || !existing.isDirectory()) await mkdir(target, { mode: 0o700 });
      await lchown(target, stats.uid, stats.gid);
      directories.push({ target, stats });
      await copyChildren(from, to, child, options, linked, directories);
      continue;
    }
    if (existing !== undefined) {
      if (existing.isDirectory() && options.skip.holdsBelow(child)) {
        options.warn(`/${child}: a directory holding mount points or kiln's own files cannot be replaced: skipped`);
        continue;
      }
      await rm(target, { recursive: true, force: true });
    }
    await copyEntry(source, target, child, stats, options, linked);
  }
}

async function copyEntry(source: string, target: string, child: string, stats: Stats, options: TreeCopyOptions, linked: Map<string, string>): Promise<void> {
  if (stats.isSymbolicLink()) {
    await symlink(await readlink(source), target);
  } else if (stats.isFile()) {
    const inode = `${stats.dev}:${stats.ino}`;
    const first = stats.nlink > 1 ? linked.get(inode) : undefined;
    if (first !== undefined) {
      await link(first, target);
      return;
    }
    if (stats.nlink > 1) linked.set(inode, target);
    await copyFile(source, target, fsConstants.COPYFILE_FICLONE);
  } else {
    options.warn(`/${child}: a device node, fifo or socket cannot be copied without mknod: skipped`);
    return;
  }
  // chown before chmod: chown clears setuid/setgid.
  await lchown(target, stats.uid, stats.gid);
  if (!stats.isSymbolicLink()) await chmod(target, stats.mode & 0o7777);
  await lutimes(target, stats.atime, stats.mtime);
}
