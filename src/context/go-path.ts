/**
 * Go's `path.Clean` and `path/filepath.Match`, written from their documented semantics.
 *
 * `.dockerignore` patterns and COPY source globs are defined by these two Go functions (BuildKit
 * calls them), and no npm glob library reproduces them exactly (picomatch and minimatch have
 * different class syntax, `**` rules and escape handling), so they are hand-written here.
 */

/** A glob that Go's `filepath.Match` would refuse with `ErrBadPattern`. */
export class GlobSyntaxError extends Error {
  constructor(
    readonly pattern: string,
    readonly reason: string,
  ) {
    super(`syntax error in pattern ${JSON.stringify(pattern)}: ${reason}`);
    this.name = 'GlobSyntaxError';
  }
}

/** Go's `path.Clean` for slash-separated paths (lexical only: no filesystem access). */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const joined = out.join('/');
  if (rooted) return '/' + joined;
  return joined === '' ? '.' : joined;
}

/** One member of a bracket class: an inclusive range of code points. */
export interface ClassRange {
  lo: number;
  hi: number;
}

/** A parsed `[...]` class. */
export interface GlobClass {
  negated: boolean;
  ranges: ClassRange[];
}

/**
 * Parses a bracket class starting just after `[` at `start` (an index into `chars`, an array of
 * code points as strings). Returns the class and the index after the closing `]`.
 * Follows Go: the class must be non-empty, an unescaped `-` or `]` may not start a range member,
 * a range is `lo-hi`, and `\` escapes the next character.
 */
export function parseClass(chars: readonly string[], start: number, pattern: string): { cls: GlobClass; next: number } {
  let i = start;
  let negated = false;
  if (chars[i] === '^') {
    negated = true;
    i++;
  }
  const ranges: ClassRange[] = [];
  const readMember = (): number => {
    const c = chars[i];
    if (c === undefined) throw new GlobSyntaxError(pattern, 'unterminated character class');
    if (c === '-' || c === ']') throw new GlobSyntaxError(pattern, `unexpected ${JSON.stringify(c)} in character class`);
    let ch = c;
    if (c === '\\') {
      i++;
      const escaped = chars[i];
      if (escaped === undefined) throw new GlobSyntaxError(pattern, 'trailing backslash in character class');
      ch = escaped;
    }
    i++;
    // Go also fails when a member is the last thing in the pattern (no room for `]`).
    if (i >= chars.length) throw new GlobSyntaxError(pattern, 'unterminated character class');
    return ch.codePointAt(0) ?? 0;
  };
  for (;;) {
    if (chars[i] === ']' && ranges.length > 0) {
      i++;
      break;
    }
    const lo = readMember();
    let hi = lo;
    if (chars[i] === '-') {
      i++;
      hi = readMember();
    }
    ranges.push({ lo, hi });
  }
  return { cls: { negated, ranges }, next: i };
}

export function classMatches(cls: GlobClass, codePoint: number): boolean {
  let inRange = false;
  for (const r of cls.ranges) {
    if (r.lo <= codePoint && codePoint <= r.hi) {
      inRange = true;
      break;
    }
  }
  return inRange !== cls.negated;
}

/** Throws {@link GlobSyntaxError} when Go's `filepath.Match` would report `ErrBadPattern`. */
export function validateGlob(pattern: string): void {
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; ) {
    const c = chars[i];
    if (c === '\\') {
      if (i + 1 >= chars.length) throw new GlobSyntaxError(pattern, 'trailing backslash');
      i += 2;
    } else if (c === '[') {
      i = parseClass(chars, i + 1, pattern).next;
    } else {
      i++;
    }
  }
}

/** True when the pattern has a character that makes it a glob rather than a literal name. */
export function hasGlobMeta(pattern: string): boolean {
  return /[*?[\\]/.test(pattern);
}

type GlobToken =
  | { kind: 'literal'; value: string }
  | { kind: 'any' } // ?
  | { kind: 'star' } // *
  | { kind: 'class'; cls: GlobClass };

function tokenize(pattern: string): GlobToken[] {
  const chars = Array.from(pattern);
  const tokens: GlobToken[] = [];
  for (let i = 0; i < chars.length; ) {
    const c = chars[i] as string;
    if (c === '\\') {
      const next = chars[i + 1];
      if (next === undefined) throw new GlobSyntaxError(pattern, 'trailing backslash');
      tokens.push({ kind: 'literal', value: next });
      i += 2;
    } else if (c === '[') {
      const { cls, next } = parseClass(chars, i + 1, pattern);
      tokens.push({ kind: 'class', cls });
      i = next;
    } else if (c === '*') {
      tokens.push({ kind: 'star' });
      i++;
    } else if (c === '?') {
      tokens.push({ kind: 'any' });
      i++;
    } else {
      tokens.push({ kind: 'literal', value: c });
      i++;
    }
  }
  return tokens;
}

/**
 * Go's `filepath.Match` on a Unix host: `*` and `?` never match `/`, classes as in Go, `\`
 * escapes. The pattern must match the whole name. Throws {@link GlobSyntaxError} for a bad
 * pattern, whatever the name.
 */
export function goMatch(pattern: string, name: string): boolean {
  return compileGoMatch(pattern)(name);
}

/** Compiles a Go `filepath.Match` pattern once, for matching many names. */
export function compileGoMatch(pattern: string): (name: string) => boolean {
  const tokens = tokenize(pattern);
  return (name: string): boolean => matchTokens(tokens, 0, Array.from(name), 0);
}

function matchTokens(tokens: readonly GlobToken[], ti: number, name: readonly string[], ni: number): boolean {
  for (; ti < tokens.length; ti++) {
    const t = tokens[ti] as GlobToken;
    if (t.kind === 'star') {
      // Try every split of the remaining name that does not cross a separator.
      for (let k = ni; ; k++) {
        if (matchTokens(tokens, ti + 1, name, k)) return true;
        if (k >= name.length || name[k] === '/') return false;
      }
    }
    const c = name[ni];
    if (c === undefined) return false;
    if (t.kind === 'literal') {
      if (c !== t.value) return false;
    } else if (t.kind === 'any') {
      if (c === '/') return false;
    } else if (!classMatches(t.cls, c.codePointAt(0) ?? 0)) {
      return false;
    }
    ni++;
  }
  return ni === name.length;
}
