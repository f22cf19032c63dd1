/**
 * BuildKit's parser conformance vectors (test/fixtures/corpora/dockerfile-parser, see its FORMAT.md):
 * every testfiles case dumps byte for byte to its `result`, every negative case fails, the
 * testfile-line ranges match, and every derived vector in extra/*.json holds.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DockerfileSyntaxError, type Heredoc } from '../../../src/dockerfile/ast.js';
import { detectDirective, detectSyntax, DirectiveParser } from '../../../src/dockerfile/directives.js';
import { chompHeredocContent, heredocsFromLine, parseHeredoc } from '../../../src/dockerfile/heredoc.js';
import { NotStringArrayError, parseJsonArray } from '../../../src/dockerfile/json-args.js';
import { parseNameVal, parseWords } from '../../../src/dockerfile/line-parsers.js';
import { parseDockerfile } from '../../../src/dockerfile/parser.js';
import { dumpDockerfile } from './dump.js';

const corpus = fileURLToPath(new URL('../../fixtures/corpora/dockerfile-parser/', import.meta.url));
const read = (path: string): string => readFileSync(corpus + path, 'utf8');
const extra = <T>(name: string): T => JSON.parse(read(`extra/${name}`)) as T;

describe('testfiles: dump equals result', () => {
  const cases = readdirSync(corpus + 'testfiles').sort();
  it('has the documented number of cases', () => {
    expect(cases).toHaveLength(33);
  });
  it.each(cases)('%s', (name) => {
    const df = parseDockerfile(read(`testfiles/${name}/Dockerfile`), `testfiles/${name}/Dockerfile`);
    expect(dumpDockerfile(df)).toBe(read(`testfiles/${name}/result`));
  });
});

describe('testfiles-negative: parse fails', () => {
  const expected: Record<string, string> = {
    empty_dockerfile: 'file with no instructions',
    only_comments: 'file with no instructions',
    env_no_value: 'ENV must have two arguments',
    'shykes-nested-json': 'when using JSON array syntax, arrays must be comprised of strings only',
  };
  const cases = readdirSync(corpus + 'testfiles-negative').sort();
  it('covers every case', () => {
    expect(cases).toEqual(Object.keys(expected).sort());
  });
  it.each(cases)('%s', (name) => {
    const file = `testfiles-negative/${name}/Dockerfile`;
    expect(() => parseDockerfile(read(file), file)).toThrow(DockerfileSyntaxError);
    expect(() => parseDockerfile(read(file), file)).toThrow(`${file}:`);
    expect(() => parseDockerfile(read(file), file)).toThrow(expected[name] as string);
  });
});

describe('testfile-line and parser-misc.json', () => {
  const misc = extra<{
    parseWords: { cases: { input: string; expected: string[] }[] };
    lineNumbers: { file: string; astStartLine: number; astEndLine: number; children: [number, number][] };
    emptyContinuationWarnings: { dockerfile: string; warnings: { shortContains: string[] }[] };
    scannerError: { dockerfileTemplate: string; expectedError: string };
  }>('parser-misc.json');

  it('line ranges', () => {
    const df = parseDockerfile(read(misc.lineNumbers.file));
    expect(df.instructions.map((n) => [n.range.startLine, n.range.endLine])).toEqual(misc.lineNumbers.children);
    expect(df.instructions[0]?.range.startLine).toBe(misc.lineNumbers.astStartLine);
    expect(df.instructions.at(-1)?.range.endLine).toBe(misc.lineNumbers.astEndLine);
  });

  it.each(misc.parseWords.cases.map((c) => [c.input, c.expected] as const))('parseWords %s', (input, expected) => {
    expect(parseWords(input, '\\')).toEqual(expected);
  });

  it('empty continuation lines are warnings', () => {
    const df = parseDockerfile(misc.emptyContinuationWarnings.dockerfile);
    expect(df.warnings).toHaveLength(misc.emptyContinuationWarnings.warnings.length);
    misc.emptyContinuationWarnings.warnings.forEach((w, i) => {
      for (const part of w.shortContains) expect(df.warnings[i]?.message).toContain(part);
    });
  });

  it('a line over 65535 bytes is an error', () => {
    const text = misc.scannerError.dockerfileTemplate.replace('%s', 'a'.repeat(65536));
    expect(() => parseDockerfile(text)).toThrow(misc.scannerError.expectedError);
    const fits = misc.scannerError.dockerfileTemplate.replace('%s', 'a'.repeat(65535 - '\t\tLABEL test='.length));
    expect(parseDockerfile(fits).instructions).toHaveLength(2);
  });
});

describe('json-arrays.json', () => {
  const json = extra<{ valid: { input: string; expected: string[] }[]; invalidNotStrings: string[] }>('json-arrays.json');
  it.each(json.valid.map((c) => [c.input, c.expected] as const))('valid %s', (input, expected) => {
    expect(parseJsonArray(input)).toEqual(expected);
  });
  it.each(json.invalidNotStrings)('not strings %s', (input) => {
    expect(() => parseJsonArray(input)).toThrow(NotStringArrayError);
    expect(() => parseDockerfile(`FROM x\nCMD ${input}\n`)).toThrow('Dockerfile:2: when using JSON array syntax');
  });
});

describe('line-parsers.json', () => {
  const lp = extra<{ cases: { input: string; key: string; expectedChain?: string[]; expectError?: string }[] }>('line-parsers.json');
  it.each(lp.cases.map((c) => [c.key, c.input, c] as const))('%s %s', (key, input, c) => {
    if (c.expectError !== undefined) expect(() => parseNameVal(input, key, '\\')).toThrow(c.expectError);
    else expect(parseNameVal(input, key, '\\')).toEqual(c.expectedChain);
  });
});

describe('directives.json', () => {
  const dir = extra<{
    parseAll: { input: string; expected: { name: string; value: string }[] }[];
    detectSyntax: { input: string; ok: boolean; ref?: string; cmdline?: string; line?: number }[];
    parseDirectiveCheck: { input: string; ok: boolean; ref?: string; cmdline?: string; line?: number }[];
  }>('directives.json');

  it.each(dir.parseAll.map((c) => [c.input, c.expected] as const))('parseAll %j', (input, expected) => {
    expect(new DirectiveParser().parseAll(input).map(({ name, value }) => ({ name, value }))).toEqual(expected);
  });

  const check = (found: ReturnType<typeof detectSyntax>, c: (typeof dir.detectSyntax)[number]): void => {
    if (!c.ok) {
      expect(found).toBeUndefined();
      return;
    }
    expect(found?.ref).toBe(c.ref);
    if (c.cmdline !== undefined) expect(found?.cmdline).toBe(c.cmdline);
    if (c.line !== undefined) expect(found?.line).toBe(c.line);
  };
  it.each(dir.detectSyntax.map((c) => [c.input, c] as const))('detectSyntax %j', (input, c) => {
    check(detectSyntax(input), c);
  });
  it.each(dir.parseDirectiveCheck.map((c) => [c.input, c] as const))('check directive %j', (input, c) => {
    check(detectDirective('check', input), c);
  });
});

interface GoHeredoc {
  Name: string;
  Content: string;
  Expand: boolean;
  Chomp: boolean;
  FileDescriptor: number;
}

const fromGo = (h: GoHeredoc): Heredoc => ({
  name: h.Name,
  content: h.Content,
  expand: h.Expand,
  chomp: h.Chomp,
  fileDescriptor: h.FileDescriptor,
});

describe('heredoc.json', () => {
  const hd = extra<{
    parseExtractsHeredoc: { dockerfile: string; children: { childIndex: number; heredocs: GoHeredoc[] | null }[] };
    parseJSONHeredoc: { dockerfile: string };
    parseHeredoc: { valid: string[]; invalid: string[]; notHeredoc: string[] };
    heredocsFromLine: { cases: { line: string; heredocNames: string[] | null }[] };
    chompHeredocContent: { input: string; expected: string }[];
  }>('heredoc.json');

  it('Parse extracts the heredocs of each instruction', () => {
    const df = parseDockerfile(hd.parseExtractsHeredoc.dockerfile);
    expect(df.instructions).toHaveLength(hd.parseExtractsHeredoc.children.length + 1);
    for (const c of hd.parseExtractsHeredoc.children) {
      expect(df.instructions[c.childIndex]?.heredocs, `child ${c.childIndex}`).toEqual((c.heredocs ?? []).map(fromGo));
    }
  });

  it('JSON-form RUN has no heredocs', () => {
    const df = parseDockerfile(hd.parseJSONHeredoc.dockerfile);
    expect(df.instructions.slice(1).map((n) => n.heredocs)).toEqual([[], [], []]);
  });

  it.each(hd.parseHeredoc.valid)('parseHeredoc valid %s', (word) => {
    expect(parseHeredoc(word)?.name).toBe('EOF');
  });
  it.each(hd.parseHeredoc.invalid)('parseHeredoc invalid %s', (word) => {
    expect(() => parseHeredoc(word)).toThrow();
  });
  it.each(hd.parseHeredoc.notHeredoc)('parseHeredoc not a heredoc %j', (word) => {
    expect(parseHeredoc(word)).toBeUndefined();
  });
  it.each(hd.heredocsFromLine.cases.map((c) => [c.line, c.heredocNames] as const))('heredocsFromLine %s', (line, names) => {
    expect(heredocsFromLine(line).map((h) => h.name)).toEqual(names ?? []);
  });
  it.each(hd.chompHeredocContent.map((c) => [c.input, c.expected] as const))('chomp %j', (input, expected) => {
    expect(chompHeredocContent(input)).toBe(expected);
  });
});
