import path from 'node:path';
import { RootPaths } from '../rootfs/root-paths.js';
import { InvalidIgnorePathError } from './errors.js';
import { parseMountInfo } from './mountinfo.js';

export interface IgnoreOptions {
  /** kiln's own work directory (kaniko's --kaniko-dir), a host path; ignored when it lies inside the root. */
  kilnDir?: string;
  /** `--ignore-path` entries: paths inside the image (`/var/cache/apt`). */
  ignorePaths?: readonly string[];
  /** kaniko's `--ignore-var-run` (default true): leave `/var/run` out of every snapshot. */
  ignoreVarRun?: boolean;
}

/** Paths the image never gets from a snapshot, whatever a step did there (kaniko's default ignore list). */
const alwaysIgnored = ['proc', 'sys', 'dev'];

/** The root-relative paths (`var/run`) that snapshots skip together with everything below them. */
export class IgnoreList extends RootPaths {
  /**
   * Builds the list for a root directory. `root` must be a real path (no symlinks) so that it compares
   * with mount points; `mountInfo` is the text of /proc/self/mountinfo, read by the caller.
   */
  static forRoot(root: string, options: IgnoreOptions, mountInfo: string): IgnoreList {
    const paths = new Set(alwaysIgnored);
    if (options.ignoreVarRun ?? true) paths.add('var/run');
    for (const entry of options.ignorePaths ?? []) {
      const rel = imagePathToRelative(entry);
      if (rel === '') throw new InvalidIgnorePathError(entry);
      paths.add(rel);
    }
    const kilnRel = options.kilnDir === undefined ? undefined : hostPathInsideRoot(root, options.kilnDir);
    if (kilnRel !== undefined && kilnRel !== '') paths.add(kilnRel);
    for (const mount of parseMountInfo(mountInfo)) {
      const rel = hostPathInsideRoot(root, mount.mountPoint);
      // The root itself may be a mount point (an overlay's merged dir); only mounts strictly inside it are foreign.
      if (rel !== undefined && rel !== '') paths.add(rel);
    }
    return new IgnoreList(paths);
  }
}

/** `/var//cache/` → `var/cache`; `..` cannot climb above the image root. */
export function imagePathToRelative(imagePath: string): string {
  const normalized = path.posix.normalize(`/${imagePath}`);
  return normalized.replace(/^\/+/, '').replace(/\/+$/, '');
}

/** The root-relative form of a host path, or undefined when it lies outside the root. */
export function hostPathInsideRoot(root: string, hostPath: string): string | undefined {
  const rel = path.posix.relative(root, path.posix.resolve(hostPath));
  if (rel === '') return '';
  if (rel === '..' || rel.startsWith('../') || path.posix.isAbsolute(rel)) return undefined;
  return rel;
}
