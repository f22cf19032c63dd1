/** Heredocs (`RUN <<EOF`, `COPY <<A <<B /dst`) as BuildKit's parser detects them. */
import type { Heredoc } from './ast.js';
import { createShellLexer, ShellExpansionError, type EnvLookup } from './shell-lexer.js';

const HEREDOC_WORD = /^(\d*)<<(-?)([^<]*)$/;
const BARE_OPERATOR = /^(\d*)<<(-?)$/;
const noEnv: EnvLookup = () => undefined;

export class HeredocSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HeredocSyntaxError';
  }
}

/**
 * Parses one word (`<<EOF`, `3<<-'EOF'`, `<< EOF`) into a heredoc without content; undefined when
 * the word is not a heredoc. Unbalanced quotes in the delimiter are an error.
 */
export function parseHeredoc(word: string): Heredoc | undefined {
  const m = HEREDOC_WORD.exec(word);
  if (!m) return undefined;
  const [, fd = '', dash = '', rest = ''] = m;
  return heredocFromParts(fd, dash, rest);
}

function heredocFromParts(fd: string, dash: string, rest: string): Heredoc | undefined {
  if (rest.length === 0) return undefined;

  const unquoted = wordsOf(rest, false);
  if (unquoted.length !== 1) return undefined;
  const raw = wordsOf(rest, true);
  if (raw.length !== unquoted.length) {
    throw new HeredocSyntaxError(`internal lexing of heredoc produced inconsistent results: ${rest}`);
  }
  const name = unquoted[0] as string;
  // Any quoting in the delimiter (`'EOF'`, `E"O"F`) turns off expansion of the body.
  const expand = countQuotes(name) === countQuotes(raw[0] as string);
  return { name, content: '', expand, chomp: dash === '-', fileDescriptor: fd === '' ? 0 : Number(fd) };
}

function wordsOf(text: string, rawQuotes: boolean): string[] {
  const lexer = createShellLexer('\\', { skipUnsetEnv: true, rawQuotes });
  try {
    return lexer.processWords(text, noEnv);
  } catch (err) {
    if (err instanceof ShellExpansionError) throw new HeredocSyntaxError(err.message);
    throw err;
  }
}

function countQuotes(s: string): number {
  let n = 0;
  for (const ch of s) if (ch === "'" || ch === '"') n++;
  return n;
}

/**
 * The heredocs an instruction line opens, in order. Words are split with quotes and escapes kept,
 * so a quoted `"<<EOF"` is not a heredoc; a bare `<<` or `<<-` takes the following word as its
 * delimiter (`RUN <<  EOF`, `RUN << -EOF`). Lexing errors of the line itself are ignored, as in BuildKit.
 */
export function heredocsFromLine(line: string): Heredoc[] {
  let words: string[];
  try {
    words = createShellLexer('\\', { rawQuotes: true, rawEscapes: true, skipUnsetEnv: true }).processWords(line, noEnv);
  } catch (err) {
    // BuildKit ignores a line it cannot lex here: the instruction itself reports it later.
    if (err instanceof ShellExpansionError) return [];
    throw err;
  }
  const docs: Heredoc[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i] as string;
    const following = words[i + 1];
    const bare = BARE_OPERATOR.exec(word);
    let doc: Heredoc | undefined;
    if (bare && following !== undefined) {
      doc = heredocFromParts(bare[1] ?? '', bare[2] ?? '', following);
      i++;
    } else {
      doc = parseHeredoc(word);
    }
    if (doc) docs.push(doc);
  }
  return docs;
}

/** `<<-`: strips the leading tabs of every line of the body. */
export function chompHeredocContent(content: string): string {
  return content.replace(/^\t+/gm, '');
}
