/**
 * Finding what a COPY/ADD source names inside a source tree (the build context after
 * `.dockerignore`, another stage's root, or an image's unpacked root), as BuildKit's copy does:
 *
 * - the source is cleaned as if rooted, so `..` and a leading `/` never leave the tree;
 * - it is split at its first segment holding a wildcard (`*`, `?`, `[`, with `\` escaping):
 *   the literal part is resolved (symlinks followed inside the tree), the rest is a Go
 *   `filepath.Match` pattern matched against paths below it, walked without following links;
 * - a match (or a plain source) that is a symlink is followed, inside the tree, to what it
 *   points at: that is what gets copied.
 * Paths excluded by `.dockerignore` do not exist here, as they never reach BuildKit.
 */
import type { Stats } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { cleanPath, compileGoMatch, GlobSyntaxError } from '../../context/go-path.js';
import type { IgnoreMatcher } from '../../context/dockerignore.js';
import { walkContext } from '../../context/walk.js';
import { resolveRelativeInRoot } from '../../rootfs/resolve-in-root.js';
import { lstatOrUndefined } from '../../rootfs/lstat.js';

/** A directory tree COPY/ADD reads from; never written to. */
export interface SourceTree {
  /** Host path of the tree's root (trusted, not resolved). */
  root: string;
  /** False for a path `.dockerignore` removed from the context. */
  visible(relative: string): boolean;
  /**
   * Whether copied files keep their owners. BuildKit sends the context with owners reset to
   * 0:0, but `COPY --from` a stage or image keeps the owners it finds there.
   */
  preserveOwners: boolean;
}

/** The build context as COPY sees it: what `.dockerignore` keeps, owned by root. */
export async function contextSourceTree(root: string, ignore?: IgnoreMatcher): Promise<SourceTree> {
  if (ignore === undefined || ignore.isEmpty) return { root, visible: () => true, preserveOwners: false };
  const kept = new Set((await walkContext(root, ignore, { stat: false, readLinks: false })).map((e) => e.path));
  return { root, visible: (rel) => rel === '' || kept.has(rel), preserveOwners: false };
}

/** Another stage's root or an image's unpacked root (`COPY --from`): everything, owners kept. */
export function rootSourceTree(root: string): SourceTree {
  return { root, visible: () => true, preserveOwners: true };
}

/** One thing a source names, with the symlink at its end (if any) already followed. */
export interface SourceMatch {
  /** The path as matched, relative to the tree root (`''` is the root). */
  relative: string;
  /** Where it leads after following symlinks inside the tree, relative to the root. */
  resolved: string;
  /** Host path of `resolved`. */
  host: string;
  stat: Stats;
  /** The part of the source before its first wildcard segment, relative to the root. */
  base: string;
}

/** Does this path segment hold an unescaped wildcard (fsutil's rule: `\` escapes the next character)? */
export function containsWildcards(segment: string): boolean {
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i];
    if (c === '\\') i++;
    else if (c === '*' || c === '?' || c === '[') return true;
  }
  return false;
}

/** A source as a tree-relative path (`''` for the root): cleaned as if rooted. */
export function normalizeSource(source: string): string {
  const cleaned = cleanPath('/' + source);
  return cleaned === '/' ? '' : cleaned.slice(1);
}

/** Splits at the first wildcard segment: `a/b?/c` gives base `a` and pattern `b?/c`. */
export function splitWildcards(relative: string): { base: string; pattern: string } {
  const segments = relative === '' ? [] : relative.split('/');
  const first = segments.findIndex(containsWildcards);
  if (first < 0) return { base: relative, pattern: '' };
  return { base: segments.slice(0, first).join('/'), pattern: segments.slice(first).join('/') };
}


function hostOf(tree: SourceTree, relative: string): string {
  return relative === '' ? tree.root : path.join(tree.root, relative);
}

/** Follows `relative` (symlinks included) inside the tree; undefined when it does not exist or is ignored. */
export async function followSource(tree: SourceTree, relative: string, base: string): Promise<SourceMatch | undefined> {
  if (!tree.visible(relative)) return undefined;
  const resolved = await resolveRelativeInRoot(tree.root, relative);
  if (!tree.visible(resolved)) return undefined;
  const host = hostOf(tree, resolved);
  const stat = await lstatOrUndefined(host);
  if (stat === undefined) return undefined;
  return { relative, resolved, host, stat, base };
}

/**
 * Everything one source names, in path order. A plain path gives at most one match; a pattern
 * gives every path below its literal base with as many segments that matches it. Throws
 * {@link GlobSyntaxError} for a malformed pattern.
 */
export async function matchSource(tree: SourceTree, source: string): Promise<SourceMatch[]> {
  const { base, pattern } = splitWildcards(normalizeSource(source));
  if (pattern === '') {
    const match = await followSource(tree, base, base);
    return match === undefined ? [] : [match];
  }
  const matcher = compileGoMatch(pattern);
  const depth = pattern.split('/').length;
  const baseDir = await followSource(tree, base, base);
  if (baseDir === undefined || !baseDir.stat.isDirectory()) return [];
  const out: SourceMatch[] = [];
  // Walked like Go's filepath.Walk: lexical order, links not followed while walking.
  const walk = async (dirResolved: string, dirRelative: string, prefix: string, level: number): Promise<void> => {
    const names = (await readdir(hostOf(tree, dirResolved))).sort();
    for (const name of names) {
      const rel = prefix === '' ? name : `${prefix}/${name}`;
      const childResolved = dirResolved === '' ? name : `${dirResolved}/${name}`;
      const childRelative = dirRelative === '' ? name : `${dirRelative}/${name}`;
      if (!tree.visible(childResolved)) continue;
      if (level === depth) {
        if (!matcher(rel)) continue;
        const match = await followSource(tree, childResolved, base);
        if (match !== undefined) out.push({ ...match, relative: childRelative });
        continue;
      }
      const stat = await lstatOrUndefined(hostOf(tree, childResolved));
      if (stat?.isDirectory() === true) await walk(childResolved, childRelative, rel, level + 1);
    }
  };
  await walk(baseDir.resolved, base, '', 1);
  return out;
}

export { GlobSyntaxError };
