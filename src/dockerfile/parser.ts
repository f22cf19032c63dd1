/**
 * The Dockerfile parser with BuildKit's `dockerfile:1` semantics (`frontend/dockerfile/parser`):
 * physical lines → logical instructions (continuations joined, comments dropped), parser
 * directives, per-instruction argument splitting, heredoc bodies, and source line ranges.
 * Pure: text in, values out.
 */
import { DockerfileSyntaxError, type Dockerfile, type Heredoc, type InstructionNode, type ParseWarning, type ParserDirectives } from './ast.js';
import { DirectiveError, DirectiveParser } from './directives.js';
import { HeredocSyntaxError, heredocsFromLine } from './heredoc.js';
import { NotStringArrayError } from './json-args.js';
import {
  ArgumentSyntaxError,
  parseHealthcheck,
  parseMaybeJson,
  parseMaybeJsonToList,
  parseNameVal,
  parseWords,
  splitCommand,
  splitWhitespace,
  type ParsedArgs,
} from './line-parsers.js';
import { trimGoSpaceStart } from './unicode.js';

/** bufio.MaxScanTokenSize - 1: BuildKit reads lines with a bufio.Scanner of that size. */
export const MAX_LINE_BYTES = 65535;

/** Instructions that may open heredocs (ONBUILD may wrap one of them). */
const HEREDOC_KEYWORDS = new Set(['add', 'copy', 'run']);

type Escape = ParserDirectives['escape'];

interface PhysicalLine {
  /** Without its `\n`. */
  text: string;
  newline: boolean;
}

/** Physical lines in order; stops (with `tooLong` set) at a line BuildKit's scanner rejects. */
class LineReader {
  private index = 0;
  tooLongAt: number | undefined;
  private readonly lines: PhysicalLine[];

  constructor(text: string) {
    const parts = text.split('\n');
    this.lines = parts.map((part, i) => ({ text: part, newline: i < parts.length - 1 }));
    const last = this.lines[this.lines.length - 1];
    if (last !== undefined && last.text === '' && !last.newline) this.lines.pop();
  }

  next(): PhysicalLine | undefined {
    if (this.tooLongAt !== undefined) return undefined;
    const line = this.lines[this.index];
    if (line === undefined) return undefined;
    if (line.text.length > MAX_LINE_BYTES / 3 && Buffer.byteLength(line.text, 'utf8') > MAX_LINE_BYTES) {
      this.tooLongAt = this.index + 1;
      return undefined;
    }
    this.index++;
    return line;
  }
}

function trimNewline(s: string): string {
  return s.replace(/[\r\n]+$/, '');
}

function isComment(s: string): boolean {
  return trimGoSpaceStart(s).startsWith('#');
}

function continuationPattern(escape: Escape): RegExp {
  const e = escape === '\\' ? '\\\\' : '`';
  return new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
}

/** Removes a trailing escape token; `done` is false when the instruction continues on the next line. */
function trimContinuation(line: string, pattern: RegExp): { line: string; done: boolean } {
  if (!pattern.test(line)) return { line, done: true };
  return { line: line.replace(pattern, (_m, before: string | undefined) => before ?? ''), done: false };
}

class ParseState {
  readonly directives: ParserDirectives = { escape: '\\' };
  continuation = continuationPattern('\\');
  private readonly directiveParser = new DirectiveParser();

  /** BuildKit's processLine: trims the newline (and leading blanks of a first line), checks for a directive, drops comments. */
  processLine(raw: string, stripLeft: boolean): string {
    let token = trimNewline(raw);
    if (stripLeft) token = trimGoSpaceStart(token);
    const directive = this.directiveParser.parseLine(token);
    if (directive) {
      if (directive.name === 'escape') {
        if (directive.value !== '\\' && directive.value !== '`') {
          throw new DirectiveError(`invalid escape token '${directive.value}' does not match \` or \\`);
        }
        this.directives.escape = directive.value;
        this.continuation = continuationPattern(directive.value);
      } else {
        this.directives[directive.name] = directive.value;
      }
    }
    return isComment(token) ? '' : token;
  }
}

/**
 * Parses a Dockerfile. Throws DockerfileSyntaxError located at `file:line` (the first line of the
 * offending instruction) when BuildKit would refuse the file.
 */
export function parseDockerfile(text: string, file = 'Dockerfile'): Dockerfile {
  const state = new ParseState();
  const reader = new LineReader(text);
  const instructions: InstructionNode[] = [];
  const warnings: ParseWarning[] = [];
  let currentLine = 0;

  /** Runs one step, turning the parser's own errors into a located DockerfileSyntaxError. */
  const at = <T>(line: number, step: () => T): T => {
    try {
      return step();
    } catch (err) {
      if (
        err instanceof DirectiveError ||
        err instanceof ArgumentSyntaxError ||
        err instanceof NotStringArrayError ||
        err instanceof HeredocSyntaxError
      ) {
        throw new DockerfileSyntaxError(file, line, err.message);
      }
      throw err;
    }
  };

  for (let physical = reader.next(); physical !== undefined; physical = reader.next()) {
    let raw = physical.text;
    if (currentLine === 0 && raw.startsWith('\uFEFF')) raw = raw.slice(1);
    const first = at(currentLine + 1, () => state.processLine(raw, true));
    currentLine++;
    const startLine = currentLine;

    let { line, done } = trimContinuation(first, state.continuation);
    if (done && line === '') continue;

    let emptyContinuation = false;
    while (!done) {
      const next = reader.next();
      if (next === undefined) break;
      const processed = at(currentLine + 1, () => state.processLine(next.text, false));
      currentLine++;
      if (isComment(next.text)) continue;
      if (trimGoSpaceStart(trimNewline(processed)) === '') {
        emptyContinuation = true;
        continue;
      }
      const trimmed = trimContinuation(processed, state.continuation);
      line += trimmed.line;
      done = trimmed.done;
    }

    if (emptyContinuation) {
      warnings.push({
        message: `Empty continuation line found in: ${line}`,
        range: { startLine: currentLine, endLine: currentLine },
      });
    }

    const node = at(startLine, () => nodeFromLine(line, state.directives.escape, { startLine, endLine: startLine }));

    if (canContainHeredoc(node) && line.includes('<<')) {
      for (const doc of at(startLine, () => heredocsFromLine(line))) {
        const consumed = readHeredocBody(reader, doc);
        currentLine += Math.abs(consumed);
        if (consumed < 0) {
          throw new DockerfileSyntaxError(
            file,
            startLine,
            `unterminated heredoc ${doc.name} (expected a line "${doc.name}" before the end of the file)`,
          );
        }
        node.heredocs.push(doc);
      }
    }

    setRange(node, { startLine, endLine: currentLine });
    instructions.push(node);
  }

  if (instructions.length === 0) {
    throw new DockerfileSyntaxError(file, Math.max(currentLine, 1), 'file with no instructions');
  }
  if (reader.tooLongAt !== undefined) {
    throw new DockerfileSyntaxError(file, reader.tooLongAt, `dockerfile line greater than max allowed size of ${MAX_LINE_BYTES}`);
  }
  return { directives: state.directives, instructions, warnings };
}

/**
 * Appends body lines to `doc.content` (verbatim, newlines kept) up to its terminator line, which
 * `<<-` matches after leading tabs. Returns the lines consumed, negated when the file ended first.
 */
function readHeredocBody(reader: LineReader, doc: Heredoc): number {
  let consumed = 0;
  for (let body = reader.next(); body !== undefined; body = reader.next()) {
    consumed++;
    let candidate = trimNewline(body.text);
    if (doc.chomp) candidate = candidate.replace(/^\t+/, '');
    if (candidate === doc.name) return consumed;
    doc.content += body.text + (body.newline ? '\n' : '');
  }
  return -consumed;
}

function setRange(node: InstructionNode, range: InstructionNode['range']): void {
  node.range = range;
  if (node.next) setRange(node.next, range);
}

function canContainHeredoc(node: InstructionNode): boolean {
  const target = node.keyword === 'onbuild' && node.next ? node.next : node;
  return HEREDOC_KEYWORDS.has(target.keyword) && !target.json;
}

/** One logical line (continuations joined) → an instruction node, arguments split per keyword. */
function nodeFromLine(line: string, escape: Escape, range: InstructionNode['range']): InstructionNode {
  const { keyword: original, flags, rest } = splitCommand(line);
  const keyword = original.toLowerCase();
  const node: InstructionNode = { keyword, original, flags, args: [], json: false, heredocs: [], range, text: line };
  let parsed: ParsedArgs;
  switch (keyword) {
    case 'add':
    case 'copy':
    case 'volume':
      parsed = parseMaybeJsonToList(rest);
      break;
    case 'run':
    case 'cmd':
    case 'entrypoint':
    case 'shell':
      parsed = parseMaybeJson(rest);
      break;
    case 'from':
    case 'expose':
      parsed = { args: splitWhitespace(rest), json: false };
      break;
    case 'env':
    case 'label':
      parsed = { args: parseNameVal(rest, keyword.toUpperCase(), escape), json: false };
      break;
    case 'arg':
      parsed = { args: parseWords(rest, escape), json: false };
      break;
    case 'healthcheck':
      parsed = parseHealthcheck(rest);
      break;
    case 'maintainer':
    case 'user':
    case 'workdir':
    case 'stopsignal':
      parsed = { args: rest === '' ? [] : [rest], json: false };
      break;
    case 'onbuild':
      if (rest !== '') node.next = nodeFromLine(rest, escape, range);
      parsed = { args: [], json: false };
      break;
    default:
      // BuildKit's parser accepts any keyword and drops its arguments; the instruction layer rejects it.
      parsed = { args: [''], json: false };
      break;
  }
  node.args = parsed.args;
  node.json = parsed.json;
  return node;
}
