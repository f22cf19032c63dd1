/**
 * `.dockerignore` with the semantics of moby/patternmatcher, the matcher BuildKit, buildx and
 * kaniko use. Hand-written because no npm ignore library has these rules: gitignore-style
 * libraries (ignore, minimatch) differ on `**`, on parent-directory matches, on `!` ordering and
 * on anchoring (a .dockerignore pattern is always anchored at the context root).
 *
 * Rules, in short: each pattern is cleaned like Go's `filepath.Clean`; patterns are checked in
 * order and the last match wins; `!` re-includes; a pattern that matches a parent directory of a
 * path matches the path too.
 */
import { cleanPath, GlobSyntaxError, parseClass, validateGlob, type GlobClass } from './go-path.js';

/** A `.dockerignore` line that cannot be a pattern. */
export class DockerignoreSyntaxError extends Error {
  constructor(
    readonly pattern: string,
    readonly reason: string,
    readonly file?: string,
  ) {
    super(`${file === undefined ? '.dockerignore' : file}: invalid pattern ${JSON.stringify(pattern)}: ${reason}`);
    this.name = 'DockerignoreSyntaxError';
  }
}

/**
 * Turns the text of a `.dockerignore` into its pattern list (moby's `ignorefile.ReadAll`):
 * BOM stripped, `#` comments (only in the first column) and blank lines dropped, lines trimmed,
 * cleaned, a leading `/` removed, `!` kept in front.
 */
export function parseDockerignore(text: string): string[] {
  const patterns: string[] = [];
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    let line = lines[index] as string;
    if (index === 0 && line.startsWith('\uFEFF')) line = line.slice(1);
    if (line.startsWith('#')) continue;
    line = line.trim();
    if (line === '') continue;
    let exception = false;
    if (line.startsWith('!')) {
      exception = true;
      line = line.slice(1).trim();
    }
    if (line.length > 0) {
      line = cleanPath(line);
      if (line.length > 1 && line.startsWith('/')) line = line.slice(1);
    }
    patterns.push(exception ? '!' + line : line);
  }
  return patterns;
}

/** How one pattern is matched; mirrors patternmatcher's four strategies (they differ at edges). */
type MatchKind = 'exact' | 'prefix' | 'suffix' | 'regexp';

/** One compiled `.dockerignore` pattern. */
export class IgnorePattern {
  /** The cleaned pattern without its `!`. */
  readonly pattern: string;
  /** True for a `!` re-include. */
  readonly exception: boolean;
  readonly kind: MatchKind;
  private readonly regexp: RegExp | undefined;
  /** Per path segment: a matcher, or null for a segment containing `**` (any depth). */
  private readonly segments: ReadonlyArray<RegExp | null> | null;

  constructor(raw: string, file?: string) {
    let p = raw.trim();
    let exception = false;
    p = cleanPath(p);
    if (p.startsWith('!')) {
      if (p.length === 1) throw new DockerignoreSyntaxError(raw, 'illegal exclusion pattern: "!"', file);
      exception = true;
      p = p.slice(1);
    }
    try {
      validateGlob(p);
    } catch (err) {
      if (err instanceof GlobSyntaxError) throw new DockerignoreSyntaxError(raw, err.reason, file);
      throw err;
    }
    this.pattern = p;
    this.exception = exception;
    const compiled = compilePattern(p);
    this.kind = compiled.kind;
    this.regexp = compiled.kind === 'regexp' ? new RegExp(compiled.source, 'u') : undefined;
    this.segments = compileSegments(p);
  }

  /** Does the pattern match this exact path (no parent logic)? */
  matches(path: string): boolean {
    switch (this.kind) {
      case 'exact':
        return path === this.pattern;
      case 'prefix':
        return path.startsWith(this.pattern.slice(0, -2));
      case 'suffix': {
        const suffix = this.pattern.slice(2);
        if (path.endsWith(suffix)) return true;
        // `**/foo` also matches `foo` itself.
        return suffix.startsWith('/') && path === suffix.slice(1);
      }
      case 'regexp':
        return (this.regexp as RegExp).test(path);
    }
  }

  /**
   * Could this pattern match some path strictly below `dir` (or a directory between `dir` and
   * such a path)? Conservative: true when unsure. Used to decide whether an excluded directory
   * must still be walked because a `!` pattern may re-include something inside it.
   */
  mayMatchBelow(dir: string): boolean {
    if (this.segments === null) return true;
    const dirSegments = dir.split('/');
    for (let i = 0; i < dirSegments.length; i++) {
      if (i >= this.segments.length) return false;
      const seg = this.segments[i];
      if (seg === null || seg === undefined) return true;
      if (!seg.test(dirSegments[i] as string)) return false;
    }
    return this.segments.length > dirSegments.length;
  }

  toString(): string {
    return (this.exception ? '!' : '') + this.pattern;
  }
}

const REGEXP_SYNTAX = /[\\^$.*+?()[\]{}|/]/;

function literal(ch: string): string {
  return REGEXP_SYNTAX.test(ch) ? '\\' + ch : ch;
}

function classSource(cls: GlobClass): string {
  const hex = (cp: number): string => `\\u{${cp.toString(16)}}`;
  const members = cls.ranges.map((r) => (r.lo === r.hi ? hex(r.lo) : `${hex(r.lo)}-${hex(r.hi)}`)).join('');
  return `[${cls.negated ? '^' : ''}${members}]`;
}

/**
 * Translates a cleaned pattern into a match strategy and, when needed, a regular expression,
 * following patternmatcher's scanner: `**` (with a following `/` eaten) is "any number of
 * segments", a leading `**` makes a suffix match, a trailing `**` after a literal makes a prefix
 * match, `*` and `?` stay within one segment.
 *
 * Known differences from upstream, all in patterns no real .dockerignore uses: upstream hands
 * `\d`, `\w`, `\s`… to Go's regexp engine, which reads them as character classes; here `\x` is
 * always the literal `x` (as `filepath.Match` documents). Upstream also rewrites `*` inside a
 * bracket class; here a class is a class. A class range with lo > hi is refused here (upstream's
 * regexp compile fails at match time instead).
 */
function compilePattern(pattern: string): { kind: MatchKind; source: string } {
  const chars = Array.from(pattern);
  let kind: MatchKind = 'exact';
  let source = '^';
  for (let i = 0; i < chars.length; ) {
    const first = i === 0;
    const ch = chars[i] as string;
    i++;
    if (ch === '*') {
      if (chars[i] === '*') {
        i++;
        if (chars[i] === '/') i++;
        if (i >= chars.length) {
          if (kind === 'exact') kind = 'prefix';
          else {
            source += '[^\\n]*';
            kind = 'regexp';
          }
        } else {
          // Go's `.` stops at newlines only; JS's `.` also stops at \r and U+2028/9.
          source += '(?:[^\\n]*/)?';
          kind = 'regexp';
        }
        if (first) kind = 'suffix';
      } else {
        source += '[^/]*';
        kind = 'regexp';
      }
    } else if (ch === '?') {
      source += '[^/]';
      kind = 'regexp';
    } else if (ch === '\\') {
      const next = chars[i];
      if (next === undefined) throw new DockerignoreSyntaxError(pattern, 'trailing backslash');
      i++;
      source += literal(next);
      kind = 'regexp';
    } else if (ch === '[') {
      const { cls, next } = parseClass(chars, i, pattern);
      for (const r of cls.ranges) {
        if (r.lo > r.hi) throw new DockerignoreSyntaxError(pattern, 'character class range out of order');
      }
      i = next;
      source += classSource(cls);
      kind = 'regexp';
    } else {
      source += literal(ch);
    }
  }
  return { kind, source: source + '$' };
}

/**
 * Splits a pattern into per-segment matchers for {@link IgnorePattern.mayMatchBelow}. Returns
 * null (meaning "could match anywhere") when a segment boundary is not a plain `/`, e.g. an
 * escaped slash or one inside a bracket class.
 */
function compileSegments(pattern: string): Array<RegExp | null> | null {
  // A negated class matches `/` too, so it can span segments.
  if (pattern.includes('\\/') || pattern.includes('[^') || /\[[^\]]*\//.test(pattern)) return null;
  return pattern.split('/').map((seg) => {
    if (seg.includes('**')) return null;
    return new RegExp(compilePattern(seg).source, 'u');
  });
}

/**
 * Per-pattern "this pattern matched the directory or one of its ancestors" flags, carried from a
 * directory to its children while walking so each path is matched once, not once per ancestor.
 */
export type ParentMatches = Uint8Array;

/** A compiled `.dockerignore`. */
export class IgnoreMatcher {
  readonly patterns: readonly IgnorePattern[];
  /** True when some pattern is a `!` exception. */
  readonly hasExceptions: boolean;
  private readonly exceptions: readonly IgnorePattern[];

  constructor(patterns: readonly string[], file?: string) {
    const compiled: IgnorePattern[] = [];
    for (const raw of patterns) {
      if (raw.trim() === '') continue;
      compiled.push(new IgnorePattern(raw, file));
    }
    this.patterns = compiled;
    this.exceptions = compiled.filter((p) => p.exception);
    this.hasExceptions = this.exceptions.length > 0;
  }

  /** A matcher built from the text of a `.dockerignore` file. */
  static fromText(text: string, file?: string): IgnoreMatcher {
    return new IgnoreMatcher(parseDockerignore(text), file);
  }

  /** A matcher that excludes nothing. */
  static empty(): IgnoreMatcher {
    return new IgnoreMatcher([]);
  }

  get isEmpty(): boolean {
    return this.patterns.length === 0;
  }

  /**
   * Is this path (relative to the context root, `/`-separated) excluded from the context?
   * patternmatcher's `MatchesOrParentMatches`: the path is used as given.
   */
  isExcluded(path: string): boolean {
    const slash = path.lastIndexOf('/');
    // Go's filepath.Dir: everything before the last slash, cleaned; "." when there is none.
    const parent = slash < 0 ? '.' : cleanPath(path.slice(0, slash) || '/');
    const parentDirs = parent.split('/');
    let matched = false;
    for (const pattern of this.patterns) {
      if (pattern.exception !== matched) continue;
      let match = pattern.matches(path);
      if (!match && parent !== '.') {
        let prefix = '';
        for (let i = 0; i < parentDirs.length; i++) {
          prefix = i === 0 ? (parentDirs[0] as string) : prefix + '/' + (parentDirs[i] as string);
          if (pattern.matches(prefix)) {
            match = true;
            break;
          }
        }
      }
      if (match) matched = !pattern.exception;
    }
    return matched;
  }

  /**
   * The same answer as {@link isExcluded}, using the parent directory's flags instead of
   * re-matching every ancestor. `parent` is null at the context root.
   */
  isExcludedBelow(path: string, parent: ParentMatches | null): boolean {
    let matched = false;
    const patterns = this.patterns;
    for (let i = 0; i < patterns.length; i++) {
      const pattern = patterns[i] as IgnorePattern;
      if (pattern.exception !== matched) continue;
      if ((parent !== null && parent[i] === 1) || pattern.matches(path)) matched = !pattern.exception;
    }
    return matched;
  }

  /**
   * For a directory: whether it is excluded, and the flags its children need. Every pattern is
   * evaluated here (not only the ones the last-match rule consults) because a child may consult
   * a pattern its parent skipped.
   */
  evaluateDirectory(path: string, parent: ParentMatches | null): { excluded: boolean; matches: ParentMatches } {
    const patterns = this.patterns;
    const flags = new Uint8Array(patterns.length);
    let matched = false;
    for (let i = 0; i < patterns.length; i++) {
      const pattern = patterns[i] as IgnorePattern;
      const hit = (parent !== null && parent[i] === 1) || pattern.matches(path);
      if (hit) flags[i] = 1;
      if (pattern.exception === matched && hit) matched = !pattern.exception;
    }
    return { excluded: matched, matches: flags };
  }

  /**
   * Could a `!` pattern re-include anything below this excluded directory? When false, the
   * directory and everything in it is excluded and need not be read at all.
   *
   * Sound because a descendant is matched by the same patterns as its directory plus those that
   * match a path strictly below it; if no exception can match there, the descendant's last
   * deciding match is the same inclusion that excluded the directory.
   */
  mayReincludeBelow(dir: string): boolean {
    for (const p of this.exceptions) {
      if (p.mayMatchBelow(dir)) return true;
    }
    return false;
  }
}
