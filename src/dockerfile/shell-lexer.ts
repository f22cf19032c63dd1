/**
 * Shell-word expansion as BuildKit's dockerfile frontend does it (`frontend/dockerfile/shell`):
 * `$VAR`, `${VAR}`, the `${VAR<op>word}` modifiers, quote removal and word splitting.
 *
 * Hand-written: no npm shell-words library has BuildKit's exact rules (no command substitution,
 * escape token configurable to a backtick, `\` inside double quotes only escaping `"`, `$` and the
 * escape token, Go-regexp pattern semantics, and the word-buffer reset quirk of `ProcessWords`).
 */
import { isGoSpace } from './unicode.js';

export type EnvLookup = (name: string) => string | undefined;

export interface WordMatches {
  result: string;
  /** Variable names that were looked up and found. */
  matched: Set<string>;
  /** Variable names that were looked up and not set. */
  unmatched: Set<string>;
}

export interface ShellLexer {
  /** Expands `word` into one string; throws ShellExpansionError. */
  processWord(word: string, env: EnvLookup): string;
  /** Expands, then splits on unquoted whitespace (quotes removed); throws ShellExpansionError. */
  processWords(word: string, env: EnvLookup): string[];
  processWordWithMatches(word: string, env: EnvLookup): WordMatches;
}

/** Knobs BuildKit uses internally (heredoc detection); defaults are what instructions use. */
export interface ShellLexerOptions {
  /** Keep the quote characters in the output. */
  rawQuotes?: boolean;
  /** Keep the escape characters in the output. */
  rawEscapes?: boolean;
  /** Leave `$NAME` / `${NAME...}` of unset variables as written. */
  skipUnsetEnv?: boolean;
  /** Treat quotes as ordinary characters. */
  skipProcessQuotes?: boolean;
}

export class ShellExpansionError extends Error {
  constructor(
    readonly word: string,
    readonly reason: string,
  ) {
    super(`failed to process ${JSON.stringify(word)}: ${reason}`);
    this.name = 'ShellExpansionError';
  }
}

/** A failure inside the expansion, before it is wrapped with the whole word. */
class ExpansionFailure extends Error {}

export function createShellLexer(escape: '\\' | '`', options: ShellLexerOptions = {}): ShellLexer {
  const run = (word: string, env: EnvLookup): ExpansionRun => {
    const expansion = new ExpansionRun(word, env, escape, options);
    try {
      expansion.process();
    } catch (err) {
      if (err instanceof ExpansionFailure) throw new ShellExpansionError(word, err.message);
      throw err;
    }
    return expansion;
  };
  return {
    processWord: (word, env) => run(word, env).result,
    processWords: (word, env) => run(word, env).words,
    processWordWithMatches: (word, env) => {
      const r = run(word, env);
      return { result: r.result, matched: r.matched, unmatched: r.unmatched };
    },
  };
}

const EOF = '';

/** Go's string(rune) of text/scanner's EOF is the replacement character. */
function runeText(ch: string): string {
  return ch === EOF ? '\uFFFD' : ch;
}

/**
 * The current word under construction. BuildKit shares this buffer between nested expansions
 * (a `${X:-word}` resets it), which is why `processWords("a${X:-b}")` yields `["b"]`; we keep that.
 */
interface WordBuffer {
  text: string;
}

class WordCollector {
  readonly words: string[] = [];
  private inWord = false;
  constructor(private readonly buf: WordBuffer) {}

  addChar(ch: string): void {
    if (isGoSpace(ch)) {
      if (this.inWord && this.buf.text.length !== 0) {
        this.words.push(this.buf.text);
        this.buf.text = '';
        this.inWord = false;
      }
    } else {
      this.addRawChar(ch);
    }
  }

  addRawChar(ch: string): void {
    this.buf.text += ch;
    this.inWord = true;
  }

  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }

  addRawString(s: string): void {
    this.buf.text += s;
    this.inWord = true;
  }

  finish(): string[] {
    if (this.buf.text.length > 0) {
      this.words.push(this.buf.text);
      this.buf.text = '';
      this.inWord = false;
    }
    return this.words;
  }
}

const SPECIAL_PARAMS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);
const LETTER = /^\p{L}$/u;
const DIGIT = /^\p{Nd}$/u;

/** One expansion of one word: the state BuildKit's shellWord carries. */
class ExpansionRun {
  result = '';
  words: string[] = [];
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();
  private readonly chars: string[];
  private pos = 0;
  private rawEscapes: boolean;
  private readonly wordBuffer: WordBuffer = { text: '' };

  constructor(
    source: string,
    private readonly env: EnvLookup,
    private readonly escape: string,
    private readonly options: ShellLexerOptions,
  ) {
    this.chars = Array.from(source);
    this.rawEscapes = options.rawEscapes ?? false;
  }

  process(): void {
    const [result, words] = this.processStopOn(EOF, this.rawEscapes);
    this.result = result;
    this.words = words;
  }

  private peek(): string {
    return this.chars[this.pos] ?? EOF;
  }

  private next(): string {
    const ch = this.chars[this.pos];
    if (ch === undefined) return EOF;
    this.pos++;
    return ch;
  }

  private lookup(name: string): string | undefined {
    const value = this.env(name);
    if (value === undefined) this.unmatched.add(name);
    else this.matched.add(name);
    return value;
  }

  private processStopOn(stopChar: string, rawEscapes: boolean): [string, string[]] {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      return this.scanUntil(stopChar);
    } finally {
      this.rawEscapes = saved;
    }
  }

  private scanUntil(stopChar: string): [string, string[]] {
    let result = '';
    this.wordBuffer.text = '';
    const words = new WordCollector(this.wordBuffer);
    const quotesSpecial = !this.options.skipProcessQuotes;

    while (this.peek() !== EOF) {
      const ch = this.peek();
      if (stopChar !== EOF && ch === stopChar) {
        this.next();
        return [result, words.finish()];
      }
      if (ch === '$') {
        const tmp = this.processDollar();
        result += tmp;
        words.addString(tmp);
      } else if (quotesSpecial && (ch === "'" || ch === '"')) {
        const tmp = ch === "'" ? this.processSingleQuote() : this.processDoubleQuote();
        result += tmp;
        words.addRawString(tmp);
      } else {
        let c = this.next();
        if (c === this.escape) {
          if (this.rawEscapes) {
            words.addRawChar(c);
            result += c;
          }
          c = this.next();
          if (c === EOF) break;
          words.addRawChar(c);
        } else {
          words.addChar(c);
        }
        result += c;
      }
    }
    if (stopChar !== EOF) {
      throw new ExpansionFailure(`unexpected end of statement while looking for matching ${stopChar}`);
    }
    return [result, words.finish()];
  }

  private processSingleQuote(): string {
    let result = '';
    const open = this.next();
    if (this.options.rawQuotes) result += open;
    for (;;) {
      const ch = this.next();
      if (ch === EOF) throw new ExpansionFailure('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") {
        if (this.options.rawQuotes) result += ch;
        return result;
      }
      result += ch;
    }
  }

  private processDoubleQuote(): string {
    let result = '';
    const open = this.next();
    if (this.options.rawQuotes) result += open;
    for (;;) {
      const peeked = this.peek();
      if (peeked === EOF) throw new ExpansionFailure('unexpected end of statement while looking for matching double-quote');
      if (peeked === '"') {
        const close = this.next();
        if (this.options.rawQuotes) result += close;
        return result;
      }
      if (peeked === '$') {
        result += this.processDollar();
        continue;
      }
      let ch = this.next();
      if (ch === this.escape) {
        if (this.rawEscapes) result += ch;
        const after = this.peek();
        if (after === EOF) continue; // a lone escape at the end is dropped
        if (after === '"' || after === '$' || after === this.escape) ch = this.next();
      }
      result += ch;
    }
  }

  private processName(): string {
    let name = '';
    while (this.peek() !== EOF) {
      const ch = this.peek();
      if (name.length === 0 && DIGIT.test(ch)) {
        while (this.peek() !== EOF && DIGIT.test(this.peek())) name += this.next();
        return name;
      }
      if (name.length === 0 && SPECIAL_PARAMS.has(ch)) return this.next();
      if (!LETTER.test(ch) && !DIGIT.test(ch) && ch !== '_') break;
      name += this.next();
    }
    return name;
  }

  private processDollar(): string {
    this.next();
    if (this.peek() !== '{') {
      const name = this.processName();
      if (name === '') return '$';
      const value = this.lookup(name);
      if (value === undefined && this.options.skipUnsetEnv) return `$${name}`;
      return value ?? '';
    }

    this.next();
    const first = this.peek();
    if (first === EOF) throw new ExpansionFailure("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new ExpansionFailure('syntax error: bad substitution');

    const name = this.processName();
    let op = this.next();
    let opText = runeText(op);
    let nullIsUnset = false;

    if (op === '}') {
      const value = this.lookup(name);
      if (value === undefined && this.options.skipUnsetEnv) return `\${${name}}`;
      return value ?? '';
    }
    if (op === '/') return this.processReplace(name);
    if (op === ':') {
      nullIsUnset = true;
      op = this.next();
      opText += runeText(op);
    } else if (!'+-?#%'.includes(op) || op === EOF) {
      throw new ExpansionFailure(`unsupported modifier (${opText}) in substitution`);
    }

    const patternOp = op === '#' || op === '%';
    if (nullIsUnset && patternOp) throw new ExpansionFailure(`unsupported modifier (${opText}) in substitution`);
    let word = this.processWordArgument('}', patternOp, "syntax error: missing '}'");

    const value = this.lookup(name);
    if (value === undefined && this.options.skipUnsetEnv) return `\${${name}${opText}${word}}`;
    const unsetOrNull = value === undefined || (nullIsUnset && value === '');

    switch (op) {
      case '-':
        return unsetOrNull ? word : (value ?? '');
      case '+':
        return unsetOrNull ? '' : word;
      case '?':
        if (value === undefined) throw new ExpansionFailure(`${name}: ${word !== '' ? word : 'is not allowed to be unset'}`);
        if (nullIsUnset && value === '') throw new ExpansionFailure(`${name}: ${word !== '' ? word : 'is not allowed to be empty'}`);
        return value;
      case '#':
      case '%': {
        let greedy = false;
        if (word.startsWith(op)) {
          greedy = true;
          word = word.slice(1);
        }
        return op === '%' ? trimSuffix(word, value ?? '', greedy) : trimPrefix(word, value ?? '', greedy);
      }
      default:
        throw new ExpansionFailure(`unsupported modifier (${opText}) in substitution`);
    }
  }

  /** The word after a modifier, up to `stop`; running off the end is reported as `missingMessage`. */
  private processWordArgument(stop: string, rawEscapes: boolean, missingMessage: string): string {
    try {
      return this.processStopOn(stop, rawEscapes)[0];
    } catch (err) {
      if (err instanceof ExpansionFailure && this.peek() === EOF) throw new ExpansionFailure(missingMessage);
      throw err;
    }
  }

  private processReplace(name: string): string {
    const replaceAll = this.peek() === '/';
    if (replaceAll) this.next();
    const pattern = this.processWordArgument('/', true, "syntax error: missing '/' in ${}");
    const replacement = this.processWordArgument('}', true, "syntax error: missing '}'");

    const found = this.lookup(name);
    if (found === undefined && this.options.skipUnsetEnv) return `\${${name}/${pattern}/${replacement}}`;
    const value = found ?? '';
    const re = compilePattern(pattern, true, false);
    return replaceAll ? goReplaceAll(value, re, replacement) : goReplaceFirst(value, re, replacement);
  }
}

/**
 * A shell pattern (`*`, `?`, `\` escapes, no bracket classes) as a regular expression source.
 * `dot` is what a single-character wildcard becomes: `.` for the Go RE2 source BuildKit builds
 * (tested against its vectors), `[^\n]` for JavaScript, whose `.` also refuses `\r` and U+2028/9.
 */
export function shellPatternToRegexSource(pattern: string, greedy: boolean, anchored: boolean, dot = '.'): string {
  const chars = Array.from(pattern);
  let out = anchored ? '^' : '';
  const star = greedy ? `${dot}*` : `${dot}*?`;
  for (let i = 0; i < chars.length; i++) {
    let tok = chars[i] as string;
    switch (tok) {
      case '*':
        out += star;
        continue;
      case '?':
        out += dot;
        continue;
      case '\\': {
        const after = chars[i + 1];
        // `}` and `/` are escaped only to get them past the ${} parser; the escape is not the pattern's
        if (after === '}' || after === '/') continue;
        out += '\\';
        i++;
        tok = after ?? '';
        if (tok !== '*' && tok !== '?' && tok !== '\\') {
          throw new ExpansionFailure(`invalid pattern (${pattern}) in substitution: invalid escape '\\${runeText(tok)}'`);
        }
        break;
      }
      case '[':
      case ']':
      case '{':
      case '}':
      case '.':
      case '+':
      case '(':
      case ')':
      case '|':
      case '^':
      case '$':
        out += '\\';
        break;
      default:
        break;
    }
    out += tok;
  }
  return out;
}

function compilePattern(pattern: string, greedy: boolean, anchored: boolean): RegExp {
  return new RegExp(shellPatternToRegexSource(pattern, greedy, anchored, '[^\\n]'), 'u');
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const m = compilePattern(pattern, greedy, true).exec(value);
  return m ? value.slice(m.index + m[0].length) : value;
}

/** Reverses a pattern while keeping each `\x` escape pair in order: `a\*c` → `c\*a`. */
export function reverseShellPattern(pattern: string): string {
  const chars = Array.from(pattern);
  const out: string[] = new Array<string>(chars.length);
  const last = chars.length - 1;
  for (let i = 0; i <= last; ) {
    const tok = chars[i] as string;
    const outIdx = last - i;
    if (tok === '\\' && i !== last) {
      out[outIdx - 1] = tok;
      out[outIdx] = chars[i + 1] as string;
      i += 2;
    } else {
      out[outIdx] = tok;
      i++;
    }
  }
  return out.join('');
}

function reverseString(s: string): string {
  return Array.from(s).reverse().join('');
}

/** A regexp finds the leftmost match, not the rightmost: reverse both sides to trim a suffix. */
function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  return reverseString(trimPrefix(reverseShellPattern(pattern), reverseString(value), greedy));
}

function goReplaceFirst(value: string, re: RegExp, replacement: string): string {
  const m = re.exec(value);
  if (!m) return value;
  return value.slice(0, m.index) + replacement + value.slice(m.index + m[0].length);
}

/**
 * Go's Regexp.ReplaceAllString: non-overlapping matches, an empty match right after a previous
 * match is skipped, and the replacement is a template (`$0`/`${0}` is the match, `$$` a dollar,
 * any other `$name` names a group the pattern never has, so it is empty).
 */
function goReplaceAll(value: string, re: RegExp, replacement: string): string {
  const global = new RegExp(re.source, 'gu');
  let out = '';
  let lastEnd = 0;
  let prevMatchEnd = -1;
  let m: RegExpExecArray | null;
  while ((m = global.exec(value)) !== null) {
    const start = m.index;
    const end = start + m[0].length;
    if (m[0].length === 0) {
      if (start === prevMatchEnd) {
        global.lastIndex = advance(value, start);
        continue;
      }
      global.lastIndex = advance(value, start);
    }
    out += value.slice(lastEnd, start) + expandGoTemplate(replacement, m[0]);
    lastEnd = end;
    prevMatchEnd = end;
    if (global.lastIndex > value.length) break;
  }
  return out + value.slice(lastEnd);
}

function advance(s: string, index: number): number {
  const cp = s.codePointAt(index);
  return index + (cp !== undefined && cp > 0xffff ? 2 : 1);
}

function expandGoTemplate(template: string, match: string): string {
  let out = '';
  for (let i = 0; i < template.length; i++) {
    const ch = template[i] as string;
    if (ch !== '$') {
      out += ch;
      continue;
    }
    if (template[i + 1] === '$') {
      out += '$';
      i++;
      continue;
    }
    const braced = template[i + 1] === '{';
    const rest = template.slice(i + (braced ? 2 : 1));
    const nameMatch = /^[A-Za-z0-9_]+/.exec(rest);
    const name = nameMatch?.[0];
    if (name === undefined || (braced && rest[name.length] !== '}')) {
      out += '$'; // malformed: Go keeps the dollar as text
      continue;
    }
    if (/^[0-9]+$/.test(name) && Number(name) === 0) out += match;
    i += (braced ? 2 : 1) + name.length + (braced ? 1 : 0) - 1;
  }
  return out;
}
