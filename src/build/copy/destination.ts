/**
 * Where a COPY/ADD writes, in the destination root: the destination is taken relative to WORKDIR,
 * a trailing `/` (or `.`) makes it a directory, and symlinks along it are followed inside the root
 * (rootfs/resolve-in-root), never out of it.
 */
import { chmod, chown, lstat, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { resolveRelativeInRoot } from '../../rootfs/resolve-in-root.js';
import type { ChangeRecorder } from './change-recorder.js';
import type { Owner } from './copy-tree.js';
import { CopyError, type InstructionSite } from './errors.js';

export interface Destination {
  /** Absolute image path as the user meant it (WORKDIR applied, cleaned). */
  imagePath: string;
  /** Ended in `/` (or was `.`): it must be a directory. */
  isDirectory: boolean;
}

/** BuildKit's rule: relative to WORKDIR; `dest/`, `.` and `` name a directory. */
export function destinationOf(destination: string, workdir: string): Destination {
  const joined = destination.startsWith('/') ? destination : path.posix.join(workdir === '' ? '/' : workdir, destination);
  const imagePath = path.posix.normalize('/' + joined);
  const isDirectory = destination === '' || destination === '.' || destination.endsWith('/');
  return { imagePath, isDirectory };
}

/** What is at an image path (after following links inside the root). */
export interface ResolvedPath {
  /** Root-relative, with every symlink followed. */
  relative: string;
  kind: 'directory' | 'other' | 'missing';
}

export async function resolveDestinationPath(root: string, imagePath: string): Promise<ResolvedPath> {
  const relative = await resolveRelativeInRoot(root, imagePath);
  try {
    const stat = await lstat(relative === '' ? root : path.join(root, relative));
    return { relative, kind: stat.isDirectory() ? 'directory' : 'other' };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { relative, kind: 'missing' };
    throw error;
  }
}

/**
 * `mkdir -p` inside the root: follows links inside it, creates what is missing as 0755 owned by
 * `owner` (BuildKit chowns the directories a `--chown` copy creates, and only those), records
 * every directory on the way. Returns the directory's root-relative path.
 */
export async function ensureDirectory(
  recorder: ChangeRecorder,
  site: InstructionSite,
  imagePath: string,
  owner: Owner,
): Promise<string> {
  const resolved = await resolveRelativeInRoot(recorder.root, imagePath);
  const parts = resolved.split('/').filter(Boolean);
  let current = '';
  for (const part of parts) {
    current = current === '' ? part : `${current}/${part}`;
    const host = recorder.host(current);
    let isDir: boolean | undefined;
    try {
      isDir = (await lstat(host)).isDirectory();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (isDir === false) throw new CopyError(site, `cannot create directory ${imagePath}: /${current} is not a directory`);
    if (isDir === undefined) {
      await mkdir(host);
      await chown(host, owner.uid, owner.gid);
      // Explicitly, so the process umask cannot change it.
      await chmod(host, 0o755);
    }
    recorder.record(current);
  }
  return resolved;
}
