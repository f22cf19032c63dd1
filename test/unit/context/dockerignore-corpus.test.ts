// Runs every vector of the moby/patternmatcher corpus (test/fixtures/corpora/dockerignore).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cleanPath } from '../../../src/context/go-path.js';
import { DockerignoreSyntaxError, IgnoreMatcher, parseDockerignore, type ParentMatches } from '../../../src/context/dockerignore.js';

interface MatchCase {
  id: string;
  group: string;
  api: 'Matches' | 'MatchesOrParentMatches';
  patterns: string[];
  path: string;
  expected: boolean;
  expectedError?: string;
  platform?: string;
}
interface CompileEntry {
  pattern: string;
  matchType: 'exactMatch' | 'prefixMatch' | 'suffixMatch' | 'regexpMatch';
}
interface ReadAllCase {
  input: string;
  expected: string[];
}
interface Corpus {
  cases: MatchCase[];
  compile: CompileEntry[];
  ignorefileReadAll: ReadAllCase[];
}

const corpus = JSON.parse(
  readFileSync(new URL('../../fixtures/corpora/dockerignore/cases.json', import.meta.url), 'utf8'),
) as Corpus;

/** Evaluates like a walker would: each ancestor directory first, carrying its flags down. */
function excludedByWalk(matcher: IgnoreMatcher, path: string): boolean {
  const parts = path.split('/');
  let parent: ParentMatches | null = null;
  for (let i = 1; i < parts.length; i++) {
    parent = matcher.evaluateDirectory(parts.slice(0, i).join('/'), parent).matches;
  }
  return matcher.isExcludedBelow(path, parent);
}

describe('dockerignore corpus (moby/patternmatcher)', () => {
  it('has the expected number of cases', () => {
    expect(corpus.cases.length).toBe(143);
  });

  for (const c of corpus.cases) {
    it(`${c.id} ${JSON.stringify(c.patterns)} ${JSON.stringify(c.path)} → ${c.expectedError ?? c.expected}`, () => {
      if (c.expectedError !== undefined) {
        expect(() => new IgnoreMatcher(c.patterns)).toThrow(DockerignoreSyntaxError);
        return;
      }
      const matcher = new IgnoreMatcher(c.patterns);
      if (c.api === 'Matches') {
        // The package-level Matches cleans the path and never matches ".".
        const cleaned = cleanPath(c.path);
        expect(cleaned === '.' ? false : matcher.isExcluded(cleaned)).toBe(c.expected);
        if (cleaned !== '.') expect(matcher.isExcluded(c.path)).toBe(c.expected);
      } else {
        expect(matcher.isExcluded(c.path)).toBe(c.expected);
      }
      // The walking form (parent flags) agrees, as upstream asserts for MatchesUsingParentResults.
      if (c.path !== '.' && !c.path.startsWith('/') && !c.path.endsWith('/')) {
        expect(excludedByWalk(matcher, c.path)).toBe(c.expected);
      }
    });
  }

  const kinds = { exactMatch: 'exact', prefixMatch: 'prefix', suffixMatch: 'suffix', regexpMatch: 'regexp' } as const;
  for (const entry of corpus.compile) {
    it(`compiles ${JSON.stringify(entry.pattern)} as ${entry.matchType}`, () => {
      const matcher = new IgnoreMatcher([entry.pattern]);
      expect(matcher.patterns[0]?.kind).toBe(kinds[entry.matchType]);
    });
  }

  for (const [i, c] of corpus.ignorefileReadAll.entries()) {
    it(`reads an ignore file (${i})`, () => {
      expect(parseDockerignore(c.input)).toEqual(c.expected);
    });
  }
});
