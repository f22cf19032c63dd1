/**
 * BuildKit's shell-lexer conformance vectors (test/fixtures/corpora/shell-lexer, see its FORMAT.md),
 * run with the exact rules of BuildKit's lex_test.go runners.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  createShellLexer,
  reverseShellPattern,
  shellPatternToRegexSource,
  ShellExpansionError,
  type EnvLookup,
} from '../../../src/dockerfile/shell-lexer.js';

const corpus = fileURLToPath(new URL('../../fixtures/corpora/shell-lexer/', import.meta.url));
const read = (name: string): string => readFileSync(corpus + name, 'utf8');

/** Go's strings.TrimSpace for the ASCII-only text of these files. */
const trim = (s: string): string => s.replace(/^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g, '');

function envFromEntries(entries: string[]): EnvLookup {
  const map = new Map<string, string>();
  for (const e of entries) {
    const eq = e.indexOf('=');
    map.set(eq < 0 ? e : e.slice(0, eq), eq < 0 ? '' : e.slice(eq + 1));
  }
  return (name) => map.get(name);
}

function envFromObject(obj: Record<string, string>): EnvLookup {
  return (name) => (Object.hasOwn(obj, name) ? obj[name] : undefined);
}

const lexer = createShellLexer('\\');

interface EnvVarCase {
  line: number;
  source: string;
  expected: string;
}

function envVarCases(): EnvVarCase[] {
  const cases: EnvVarCase[] = [];
  read('envVarTest')
    .split('\n')
    .forEach((raw, i) => {
      if (raw.startsWith('#')) return;
      const line = trim(raw);
      if (line === '') return;
      const fields = line.split('|');
      if (fields.length !== 3) throw new Error(`envVarTest:${i + 1}: expected 3 fields`);
      const [platform, source, expected] = fields.map(trim) as [string, string, string];
      if (!['A', 'U', 'W'].includes(platform)) throw new Error(`envVarTest:${i + 1}: bad platform ${platform}`);
      // Windows-only lines test case-insensitive names: kiln builds Linux images only.
      if (platform === 'W') return;
      cases.push({ line: i + 1, source, expected });
    });
  return cases;
}

describe('envVarTest (ProcessWord)', () => {
  const env = envFromEntries(['PWD=/home', 'SHELL=bash', 'KOREAN=한국어', 'NULL=']);
  const cases = envVarCases();

  it('has the documented number of Unix vectors', () => {
    expect(cases).toHaveLength(228);
    expect(cases.filter((c) => c.expected === 'error')).toHaveLength(36);
  });

  it.each(cases.map((c) => [c.line, c.source, c.expected] as const))('line %i: %s → %s', (_line, source, expected) => {
    if (expected === 'error') {
      expect(() => lexer.processWord(source, env)).toThrow(ShellExpansionError);
    } else {
      expect(lexer.processWord(source, env)).toBe(expected);
    }
  });
});

describe('wordsTest (ProcessWords)', () => {
  const cases: { line: number; input: string; env: string[]; expected: string[] }[] = [];
  const env: string[] = [];
  read('wordsTest')
    .split('\n')
    .forEach((line, i) => {
      if (line === '' && i === read('wordsTest').split('\n').length - 1) return; // the final newline
      if (line.startsWith('#')) return;
      if (line.startsWith('ENV ')) {
        env.push(line.slice(3).replace(/^ +/, ''));
        return;
      }
      const fields = line.split('|');
      if (fields.length !== 2) throw new Error(`wordsTest:${i + 1}: expected 2 fields`);
      cases.push({
        line: i + 1,
        input: trim(fields[0] as string),
        env: [...env],
        expected: (fields[1] as string).replace(/^ +/, '').split(','),
      });
    });

  it('has the documented number of vectors', () => {
    expect(cases).toHaveLength(24);
  });

  it.each(cases.map((c) => [c.line, c.input, c] as const))('line %i: %s', (_line, input, c) => {
    let words: string[];
    try {
      words = lexer.processWords(input, envFromEntries(c.env));
    } catch (err) {
      if (!(err instanceof ShellExpansionError)) throw err;
      words = ['error'];
    }
    expect(words).toEqual(c.expected);
  });
});

interface MatchCase {
  id: string;
  input: string;
  env: Record<string, string>;
  expected?: string;
  matched?: string[];
  unmatched?: string[];
  expectError?: boolean;
  errorContains?: string;
}

const pwm = JSON.parse(read('process-with-matches.json')) as {
  processWordWithMatches: MatchCase[];
  mandatoryEnvVars: MatchCase[];
  platformRelease: MatchCase[];
  shellPatternToRegex: { valid: Record<string, string>; invalid: string[] };
  reversePattern: Record<string, string>;
};

describe('process-with-matches.json', () => {
  it.each(pwm.processWordWithMatches.map((c) => [c.id, c] as const))('%s', (_id, c) => {
    if (c.expectError) {
      expect(() => lexer.processWordWithMatches(c.input, envFromObject(c.env))).toThrow(ShellExpansionError);
      return;
    }
    const r = lexer.processWordWithMatches(c.input, envFromObject(c.env));
    expect(r.result).toBe(c.expected);
    expect([...r.matched].sort()).toEqual([...(c.matched ?? [])].sort());
    expect([...r.unmatched].sort()).toEqual([...(c.unmatched ?? [])].sort());
  });

  it.each(pwm.mandatoryEnvVars.map((c, i) => [i, c.input, c] as const))('mandatoryEnvVars %i: %s', (_i, input, c) => {
    if (c.expectError) {
      expect(() => lexer.processWord(input, envFromObject(c.env))).toThrow(c.errorContains ?? '');
    } else {
      expect(lexer.processWord(input, envFromObject(c.env))).toBe(c.expected);
    }
  });

  it.each(pwm.platformRelease.map((c, i) => [i, c] as const))('platformRelease %i', (_i, c) => {
    expect(lexer.processWord(c.input, envFromObject(c.env))).toBe(c.expected);
  });

  it('converts shell patterns to the same regexp source as BuildKit', () => {
    for (const [pattern, source] of Object.entries(pwm.shellPatternToRegex.valid)) {
      expect(shellPatternToRegexSource(pattern, true, true), pattern).toBe(source);
    }
    for (const pattern of pwm.shellPatternToRegex.invalid) {
      expect(() => shellPatternToRegexSource(pattern, true, true), pattern).toThrow(/invalid escape/);
    }
  });

  it('reverses patterns keeping escapes', () => {
    for (const [pattern, reversed] of Object.entries(pwm.reversePattern)) {
      expect(reverseShellPattern(pattern), pattern).toBe(reversed);
    }
  });
});
