/**
 * How each instruction's arguments are split, before any variable expansion (BuildKit's
 * `parser/line_parsers.go` semantics). Each function returns BuildKit's "value chain" as a list.
 */
import { parseJsonArray } from './json-args.js';
import { isGoSpace, trimGoSpace, trimGoSpaceStart } from './unicode.js';

/** BuildKit's reWhitespace: ASCII blanks only (not `\n`, not Unicode spaces). */
const ARG_WHITESPACE = /[\t\v\f\r ]+/;

export class ArgumentSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArgumentSyntaxError';
  }
}

export interface ParsedArgs {
  args: string[];
  json: boolean;
}

/** Splits on runs of ASCII blanks; empty input gives no words. */
export function splitWhitespace(rest: string): string[] {
  if (rest === '') return [];
  return rest.split(ARG_WHITESPACE);
}

/**
 * Quote-aware split used by ARG, ENV and LABEL: quotes and escapes stay in the words (they are
 * removed later by expansion); whitespace inside quotes or after an escape does not split.
 */
export function parseWords(rest: string, escape: string): string[] {
  const words: string[] = [];
  const chars = Array.from(rest);
  let word = '';
  let inWord = false;
  let quote = '';
  let blankOk = false;
  for (let i = 0; i < chars.length; i++) {
    let ch = chars[i] as string;
    if (!inWord && quote === '') {
      if (isGoSpace(ch)) continue;
      inWord = true;
    }
    if (quote === '') {
      if (isGoSpace(ch)) {
        if (blankOk || word.length > 0) words.push(word);
        word = '';
        blankOk = false;
        inWord = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOk = true;
        word += ch;
        continue;
      }
      if (ch === escape) {
        if (i + 1 === chars.length) continue; // an escape at the very end is dropped
        word += ch;
        i++;
        ch = chars[i] as string;
      }
      word += ch;
      continue;
    }
    // inside quotes
    if (ch === quote) {
      quote = '';
      word += ch;
      continue;
    }
    if (ch === escape && quote !== "'") {
      if (i + 1 === chars.length) {
        quote = '';
        continue;
      }
      word += ch;
      i++;
      ch = chars[i] as string;
    }
    word += ch;
  }
  if (inWord || quote !== '') {
    if (blankOk || word.length > 0) words.push(word);
  }
  return words;
}

/**
 * ENV and LABEL: `key=value ...` gives triples (key, value, "="); the legacy `KEY value with spaces`
 * form gives one triple (key, rest, "").
 */
export function parseNameVal(rest: string, keyword: string, escape: string): string[] {
  const words = parseWords(rest, escape);
  if (words.length === 0) return [];
  if (!(words[0] as string).includes('=')) {
    const m = ARG_WHITESPACE.exec(rest);
    if (!m) throw new ArgumentSyntaxError(`${keyword} must have two arguments`);
    return [rest.slice(0, m.index), rest.slice(m.index + m[0].length), ''];
  }
  const chain: string[] = [];
  for (const word of words) {
    const eq = word.indexOf('=');
    if (eq < 0) {
      throw new ArgumentSyntaxError(
        `Syntax error - can't find = in ${JSON.stringify(word)}. Must be of the form: name=value`,
      );
    }
    chain.push(word.slice(0, eq), word.slice(eq + 1), '=');
  }
  return chain;
}

/** RUN, CMD, ENTRYPOINT, SHELL: a JSON array, or the rest of the line as one value. */
export function parseMaybeJson(rest: string): ParsedArgs {
  if (rest === '') return { args: [], json: false };
  const json = parseJsonArray(rest);
  if (json !== undefined) return { args: json, json: true };
  return { args: [rest], json: false };
}

/** ADD, COPY, VOLUME: a JSON array, or whitespace-separated words. */
export function parseMaybeJsonToList(rest: string): ParsedArgs {
  if (rest === '') return { args: [], json: false };
  const json = parseJsonArray(rest);
  if (json !== undefined) return { args: json, json: true };
  return { args: splitWhitespace(rest), json: false };
}

/** HEALTHCHECK: the type word (`CMD`, `NONE`), then the rest parsed like CMD. */
export function parseHealthcheck(rest: string): ParsedArgs {
  const chars = Array.from(rest);
  let sep = 0;
  while (sep < chars.length && !isGoSpace(chars[sep] as string)) sep++;
  if (sep === 0) return { args: [], json: false };
  const type = chars.slice(0, sep).join('');
  const command = parseMaybeJson(trimGoSpaceStart(chars.slice(sep).join('')));
  return { args: [type, ...command.args], json: command.json };
}

export interface SplitCommand {
  keyword: string;
  flags: string[];
  rest: string;
}

/** Splits a logical line into the keyword, its leading `--flags` and the trimmed rest. */
export function splitCommand(line: string): SplitCommand {
  const trimmed = trimGoSpace(line);
  const m = ARG_WHITESPACE.exec(trimmed);
  if (!m) return { keyword: trimmed, flags: [], rest: '' };
  const keyword = trimmed.slice(0, m.index);
  const { flags, rest } = extractBuilderFlags(trimmed.slice(m.index + m[0].length));
  return { keyword, flags, rest: trimGoSpace(rest) };
}

/**
 * Leading words that start with `--` are flags (quotes removed, `\` escapes the next char); a bare
 * `--` ends the flags and is dropped. BuildKit walks bytes here; we walk code points, which only
 * differs for non-ASCII text in flags, where BuildKit mangles it.
 */
export function extractBuilderFlags(line: string): { flags: string[]; rest: string } {
  const chars = Array.from(line);
  const flags: string[] = [];
  let offset = 0; // UTF-16 offset of chars[i], to slice the rest
  let i = 0;
  const restAt = (): string => line.slice(offset);
  for (;;) {
    // between words
    while (i < chars.length && isGoSpace(chars[i] as string)) offset += (chars[i++] as string).length;
    if (i >= chars.length) return { flags, rest: '' };
    if (chars[i] !== '-' || chars[i + 1] !== '-') return { flags, rest: restAt() };

    let word = '';
    let quote = '';
    let blankOk = false;
    for (;;) {
      if (i >= chars.length) {
        if (word !== '--' && (blankOk || word.length > 0)) flags.push(word);
        return { flags, rest: '' };
      }
      let ch = chars[i] as string;
      if (quote === '') {
        if (isGoSpace(ch)) {
          if (word === '--') return { flags, rest: restAt() };
          if (blankOk || word.length > 0) flags.push(word);
          break;
        }
        if (ch === "'" || ch === '"') {
          quote = ch;
          blankOk = true;
        } else {
          if (ch === '\\') {
            if (i + 1 === chars.length) {
              offset += ch.length;
              i++;
              continue;
            }
            offset += ch.length;
            i++;
            ch = chars[i] as string;
          }
          word += ch;
        }
      } else if (ch === quote) {
        quote = '';
      } else {
        if (ch === '\\') {
          if (i + 1 === chars.length) {
            quote = '';
            offset += ch.length;
            i++;
            continue;
          }
          offset += ch.length;
          i++;
          ch = chars[i] as string;
        }
        word += ch;
      }
      offset += ch.length;
      i++;
    }
  }
}
