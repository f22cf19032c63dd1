import { lstat, readlink } from 'node:fs/promises';
import path from 'node:path';

/**
 * Resolving paths inside a root directory as a process chrooted into it would see them: the one
 * place in kiln that knows how to stay inside a root. Everything that writes into an unpacked image
 * (layers, COPY, WORKDIR, VOLUME) goes through here, because a path inside an image may cross
 * symlinks the image itself planted (`/etc -> /host/etc`, `lib -> ../../..`).
 *
 * Semantics (those of the kernel under chroot, which is what BuildKit and containerd emulate):
 * - `..` at the root stays at the root;
 * - an absolute symlink target starts again from the root, a relative one from the link's directory;
 * - more than {@link maxSymlinks} links on one walk is a loop (ELOOP), like the kernel's limit of 40;
 * - components that do not exist (yet) are appended lexically: nothing past them can be a link.
 * Nothing outside the root is ever stat-ed or read: the walk never leaves the root's own tree.
 */

/** The kernel's own limit on symlinks followed in one path lookup. */
export const maxSymlinks = 40;

export class SymlinkLoopError extends Error {
  readonly code = 'ELOOP';
  constructor(
    readonly root: string,
    readonly requested: string,
  ) {
    super(`too many levels of symbolic links resolving ${requested} inside ${root}`);
    this.name = 'SymlinkLoopError';
  }
}

export interface ResolveOptions {
  /**
   * Follow a symlink in the last component too (default true, like open(2)). False is lstat(2)'s
   * view: the link itself is the result, as needed to replace, chown or hard-link a link.
   */
  followFinal?: boolean;
}

/** Splits an image path into its components, ignoring empty and `.` ones; `..` is kept. */
export function pathComponents(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * Resolves `p` (absolute or relative, both taken from the root) inside `root` and returns the host
 * path. `root` itself must be a trusted host path; it is not resolved.
 */
export async function resolveInRoot(root: string, p: string, options: ResolveOptions = {}): Promise<string> {
  const resolved = await walk(root, [], pathComponents(p), options.followFinal ?? true, p);
  return hostPath(root, resolved);
}

/** Like {@link resolveInRoot} but returns the path relative to the root (`''` for the root itself). */
export async function resolveRelativeInRoot(root: string, p: string, options: ResolveOptions = {}): Promise<string> {
  return (await walk(root, [], pathComponents(p), options.followFinal ?? true, p)).join('/');
}

function hostPath(root: string, resolved: readonly string[]): string {
  return resolved.length === 0 ? root : path.join(root, ...resolved);
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  // ENOTDIR: a regular file in the middle of the path; what follows cannot exist either.
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * The walk itself: `resolved` holds components already known to be real (non-link) directories or
 * missing, `pending` the components still to look at.
 */
async function walk(
  root: string,
  start: readonly string[],
  components: readonly string[],
  followFinal: boolean,
  requested: string,
): Promise<string[]> {
  const resolved = [...start];
  const pending = [...components];
  let linksFollowed = 0;
  let missingFrom = -1; // once a component is missing, the rest is lexical
  while (pending.length > 0) {
    const component = pending.shift() as string;
    if (component === '..') {
      resolved.pop();
      if (missingFrom >= resolved.length) missingFrom = -1;
      continue;
    }
    const isLast = pending.length === 0;
    if ((isLast && !followFinal) || missingFrom >= 0) {
      resolved.push(component);
      continue;
    }
    const candidate = hostPath(root, [...resolved, component]);
    let target: string | undefined;
    try {
      const stat = await lstat(candidate);
      if (stat.isSymbolicLink()) target = await readlink(candidate);
    } catch (error) {
      if (!isMissing(error)) throw error;
      missingFrom = resolved.length;
    }
    if (target === undefined) {
      resolved.push(component);
      continue;
    }
    linksFollowed += 1;
    if (linksFollowed > maxSymlinks) throw new SymlinkLoopError(root, requested);
    if (target.startsWith('/')) resolved.length = 0;
    pending.unshift(...pathComponents(target));
  }
  return resolved;
}

/**
 * A resolver for many lookups in one root while the caller alone changes it (unpacking a layer,
 * writing a layer): resolved parent directories are remembered, so a tar of 10k files under
 * `usr/lib/x` does not lstat `usr` 10k times. The caller must call {@link invalidate} whenever it
 * removes or replaces a directory or symlink, or creates a symlink: those are the only changes that
 * can alter where an already-resolved path leads.
 */
export class RootResolver {
  private readonly directories = new Map<string, readonly string[]>();

  constructor(readonly root: string) {}

  invalidate(): void {
    this.directories.clear();
  }

  /** The host path of `p`'s directory (followed fully) and the last component, not followed. */
  async resolveEntry(p: string): Promise<{ relative: string; host: string }> {
    const components = pathComponents(p);
    const last = components[components.length - 1];
    let resolved: readonly string[];
    if (last === undefined || last === '..') {
      resolved = await walk(this.root, [], components, false, p);
    } else {
      resolved = [...(await this.resolveDirectoryComponents(components.slice(0, -1), p)), last];
    }
    return { relative: resolved.join('/'), host: hostPath(this.root, resolved) };
  }

  /** Resolves `p` fully (following the last component too). */
  async resolve(p: string, options: ResolveOptions = {}): Promise<{ relative: string; host: string }> {
    const resolved = await walk(this.root, [], pathComponents(p), options.followFinal ?? true, p);
    return { relative: resolved.join('/'), host: hostPath(this.root, resolved) };
  }

  /** Resolves `p` fully as a directory path, using and filling the cache. */
  async resolveDirectory(p: string): Promise<{ relative: string; host: string }> {
    const resolved = await this.resolveDirectoryComponents(pathComponents(p), p);
    return { relative: resolved.join('/'), host: hostPath(this.root, resolved) };
  }

  private async resolveDirectoryComponents(components: readonly string[], requested: string): Promise<readonly string[]> {
    if (components.length === 0) return [];
    const key = components.join('/');
    const cached = this.directories.get(key);
    if (cached !== undefined) return cached;
    const parent = await this.resolveDirectoryComponents(components.slice(0, -1), requested);
    const resolved = await walk(this.root, parent, components.slice(-1), true, requested);
    this.directories.set(key, resolved);
    return resolved;
  }
}
