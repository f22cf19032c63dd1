import { describe, expect, it } from 'vitest';
import type { InstructionNode } from '../../../src/dockerfile/ast.js';
import { EXPANDING_KINDS, createExpander, expandInstruction } from '../../../src/dockerfile/expand.js';
import { parseInstruction, type UserInstruction } from '../../../src/dockerfile/instructions.js';

const node = (keyword: string, args: string[], flags: string[] = []): InstructionNode => ({
  keyword, original: keyword.toUpperCase(), flags, args, json: false, heredocs: [], range: { startLine: 9, endLine: 9 },
});

describe('expandInstruction on hand-built nodes', () => {
  const env = new Map([['U', 'app'], ['EMPTY', '']]);
  const lookup = (k: string): string | undefined => env.get(k);
  const expander = createExpander('\\');

  it('expands the instructions Docker expands and reports variables', () => {
    const r = expandInstruction(parseInstruction(node('user', ['$U:${G:-staff}'])), lookup, expander);
    expect((r.instruction as UserInstruction).user).toBe('app:staff');
    expect(r.matched).toEqual(['U']);
    expect(r.unmatched).toEqual(['G']);
  });

  it('leaves the others untouched', () => {
    for (const kw of ['cmd', 'entrypoint', 'maintainer']) {
      const i = parseInstruction(node(kw, ['echo $U']));
      expect(expandInstruction(i, lookup, expander)).toEqual({ instruction: i, matched: [], unmatched: [] });
    }
    expect([...EXPANDING_KINDS].sort()).toEqual(['add', 'copy', 'env', 'expose', 'label', 'run', 'stopsignal', 'user', 'volume', 'workdir']);
  });

  it('locates expansion and validation errors', () => {
    expect(() => expandInstruction(parseInstruction(node('workdir', ['${NOPE:?is required}'])), lookup, expander, 'ci.Dockerfile')).toThrow(/^ci\.Dockerfile:9: .*is required/);
    expect(() => expandInstruction(parseInstruction(node('volume', ['$EMPTY'])), lookup, expander)).toThrow('Dockerfile:9: VOLUME specified can not be an empty string');
    expect(() => expandInstruction(parseInstruction(node('stopsignal', ['SIG$U'])), lookup, expander)).toThrow('Dockerfile:9: Invalid signal: SIGapp');
  });
});
