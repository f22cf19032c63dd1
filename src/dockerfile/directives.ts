/**
 * Parser directives (`# syntax=`, `# escape=`, `# check=`): only in the comment lines at the very
 * top of a Dockerfile; the first line that is not one ends them.
 */
import type { SourceRange } from './ast.js';
import { trimGoSpaceStart } from './unicode.js';

export type DirectiveName = 'syntax' | 'escape' | 'check';

export interface Directive {
  name: DirectiveName;
  value: string;
  range: SourceRange;
}

/** Go RE2's `\s` is ASCII only: [\t\n\f\r ]. */
const DIRECTIVE = /^([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*$/;
const KNOWN = new Set<string>(['syntax', 'escape', 'check']);

export class DirectiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DirectiveError';
  }
}

/** Feeds physical lines one by one; stateful per parse (one instance per Dockerfile). */
export class DirectiveParser {
  private line: number;
  private done = false;
  private readonly seen = new Set<string>();

  constructor(
    private readonly commentPrefix = '#',
    startLine = 0,
  ) {
    this.line = startLine;
  }

  /** Returns the directive on this line, if any; throws DirectiveError for a repeated one. */
  parseLine(text: string): Directive | undefined {
    this.line++;
    if (this.done) return undefined;
    if (!text.startsWith(this.commentPrefix)) {
      this.done = true;
      return undefined;
    }
    const m = DIRECTIVE.exec(trimGoSpaceStart(text.slice(this.commentPrefix.length)));
    const name = m?.[1]?.toLowerCase();
    if (!m || name === undefined || !KNOWN.has(name)) {
      this.done = true;
      return undefined;
    }
    if (this.seen.has(name)) throw new DirectiveError(`only one ${name} parser directive can be used`);
    this.seen.add(name);
    return { name: name as DirectiveName, value: m[2] ?? '', range: { startLine: this.line, endLine: this.line } };
  }

  parseAll(text: string): Directive[] {
    const out: Directive[] = [];
    for (const line of text.split('\n')) {
      if (this.done) break;
      const d = this.parseLine(line.replace(/\r$/, ''));
      if (d) out.push(d);
    }
    return out;
  }
}

export interface DetectedDirective {
  /** The value up to its first space: the image reference for `syntax`. */
  ref: string;
  /** The whole value. */
  cmdline: string;
  /** 1-based line; 0 for the JSON form without a shebang. */
  line: number;
}

/**
 * BuildKit's DetectSyntax: `# syntax=` first, then `// syntax=`, then a JSON object with a
 * `syntax` key; a leading BOM and a `#!` shebang line are skipped.
 */
export function detectSyntax(text: string): DetectedDirective | undefined {
  return detectDirective('syntax', text, true);
}

/** BuildKit's ParseDirective(key): only the `#` form. */
export function detectDirective(key: DirectiveName, text: string, anyFormat = false): DetectedDirective | undefined {
  let body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const newline = body.indexOf('\n');
  const firstLine = newline < 0 ? body : body.slice(0, newline);
  let line = 0;
  if (firstLine.startsWith('#!')) {
    body = newline < 0 ? '' : body.slice(newline + 1);
    line = 1;
  }
  const fromComments = (prefix: string): DetectedDirective | undefined => {
    const parser = new DirectiveParser(prefix, line);
    const directives: Directive[] = [];
    for (const physical of body.split('\n')) {
      let d: Directive | undefined;
      try {
        d = parser.parseLine(physical.replace(/\r$/, ''));
      } catch (err) {
        // a repeated directive: BuildKit keeps what it parsed before it
        if (err instanceof DirectiveError) break;
        throw err;
      }
      if (d) directives.push(d);
    }
    const d = directives.find((x) => x.name === key);
    if (!d) return undefined;
    const space = d.value.indexOf(' ');
    return { ref: space < 0 ? d.value : d.value.slice(0, space), cmdline: d.value, line: d.range.startLine };
  };
  const hash = fromComments('#');
  if (hash || !anyFormat) return hash;
  const slashes = fromComments('//');
  if (slashes) return slashes;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    if (err instanceof SyntaxError) return undefined; // not the JSON form either
    throw err;
  }
  if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
    const value = (parsed as Record<string, unknown>)[key];
    if (typeof value === 'string') return { ref: value, cmdline: value, line };
  }
  return undefined;
}
