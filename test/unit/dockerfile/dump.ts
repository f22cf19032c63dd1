/**
 * BuildKit's `Node.Dump()` text (test/fixtures/corpora/dockerfile-parser/FORMAT.md), written for the
 * conformance tests: it is how upstream's expected `result` files encode a parse.
 */
import type { Dockerfile, InstructionNode } from '../../../src/dockerfile/ast.js';

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;
const NAMED: Record<string, string> = {
  '\x07': '\\a',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\v': '\\v',
  '"': '\\"',
  '\\': '\\\\',
};

/** Go's strconv.Quote. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const named = NAMED[ch];
    if (named !== undefined) {
      out += named;
      continue;
    }
    if (PRINTABLE.test(ch)) {
      out += ch;
      continue;
    }
    const cp = ch.codePointAt(0) ?? 0;
    if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else if (cp <= 0xffff) out += `\\u${cp.toString(16).padStart(4, '0')}`;
    else out += `\\U${cp.toString(16).padStart(8, '0')}`;
  }
  return `${out}"`;
}

/** Go's strings.TrimSpace for dump text (ASCII blanks are all that can appear at the ends). */
const trimSpace = (s: string): string => s.replace(/^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g, '');

export function dumpNode(node: InstructionNode): string {
  let s = node.keyword;
  if (node.flags.length > 0) s += ` [${node.flags.map(goQuote).join(' ')}]`;
  if (node.next) {
    // ONBUILD: a value-less node whose one child is the nested instruction
    s += ` ${trimSpace(`(${dumpNode(node.next)})\n`)}`;
  } else {
    for (const arg of node.args) s += ` ${goQuote(arg)}`;
  }
  return trimSpace(s);
}

/** The root's dump, trimmed, plus the newline the Go test appends. */
export function dumpDockerfile(df: Dockerfile): string {
  return `${trimSpace(df.instructions.map((n) => `(${dumpNode(n)})\n`).join(''))}\n`;
}
