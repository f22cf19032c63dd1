/**
 * Selecting COPY/ADD sources from a walked context.
 *
 * Docker's rules: a source is a path relative to the context root (a leading `/` and `..` cannot
 * leave it: the path is cleaned as if rooted); with wildcards, each path segment is matched with
 * Go's `filepath.Match` (`*` and `?` stay within a segment, `[...]` classes, `\` escapes, and
 * `[[]` for a literal `[`). `COPY --exclude` patterns use the `.dockerignore` matcher.
 */
import { IgnoreMatcher } from './dockerignore.js';
import { cleanPath, compileGoMatch, hasGlobMeta } from './go-path.js';
import type { ContextEntry } from './walk.js';

/** A COPY/ADD source as a context-relative path: `''` is the context root itself. */
export function normalizeCopySource(source: string): string {
  const cleaned = cleanPath('/' + source);
  return cleaned === '/' ? '' : cleaned.slice(1);
}

/** Binary search in entries sorted by path (as {@link walkContext} returns them). */
function indexOf(entries: readonly ContextEntry[], path: string): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((entries[mid] as ContextEntry).path < path) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The entries a COPY/ADD source names: for a plain path, that entry (empty when it is missing
 * or ignored); for a glob, every entry whose path has as many segments and matches segment by
 * segment, in path order. Directories are returned as themselves; use {@link entriesBelow}
 * for their contents. An empty result is the builder's "no source files" error.
 */
export function selectCopySources(entries: readonly ContextEntry[], source: string): ContextEntry[] {
  const path = normalizeCopySource(source);
  if (path === '') return [{ path: '', type: 'directory' }];
  if (!hasGlobMeta(path)) {
    const i = indexOf(entries, path);
    const entry = entries[i];
    return entry !== undefined && entry.path === path ? [entry] : [];
  }
  const segments = path.split('/');
  const matchers = segments.map((seg) => (hasGlobMeta(seg) ? compileGoMatch(seg) : null));
  // Everything before the first glob segment is a literal prefix: only that range can match.
  const firstGlob = matchers.findIndex((m) => m !== null);
  const literalPrefix = firstGlob > 0 ? segments.slice(0, firstGlob).join('/') + '/' : '';
  const out: ContextEntry[] = [];
  for (let i = literalPrefix === '' ? 0 : indexOf(entries, literalPrefix); i < entries.length; i++) {
    const entry = entries[i] as ContextEntry;
    if (!entry.path.startsWith(literalPrefix)) break;
    const parts = entry.path.split('/');
    if (parts.length !== segments.length) continue;
    let ok = true;
    for (let s = firstGlob; s < parts.length && ok; s++) {
      const m = matchers[s];
      ok = m === null || m === undefined ? parts[s] === segments[s] : m(parts[s] as string);
    }
    if (ok) out.push(entry);
  }
  return out;
}

/** Everything below a directory entry (`''` for the whole context), in path order. */
export function entriesBelow(entries: readonly ContextEntry[], dir: string): ContextEntry[] {
  if (dir === '') return [...entries];
  const prefix = dir + '/';
  const out: ContextEntry[] = [];
  for (let i = indexOf(entries, prefix); i < entries.length; i++) {
    const entry = entries[i] as ContextEntry;
    if (!entry.path.startsWith(prefix)) break;
    out.push(entry);
  }
  return out;
}

/** `COPY --exclude=…` patterns, matched like `.dockerignore` against paths relative to the source. */
export function compileCopyExcludes(patterns: readonly string[]): IgnoreMatcher {
  return new IgnoreMatcher(patterns, '--exclude');
}
