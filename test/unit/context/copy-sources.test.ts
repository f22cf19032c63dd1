import { describe, expect, it } from 'vitest';
import { compileCopyExcludes, entriesBelow, normalizeCopySource, selectCopySources } from '../../../src/context/copy-sources.js';
import { cleanPath, goMatch, GlobSyntaxError } from '../../../src/context/go-path.js';
import type { ContextEntry } from '../../../src/context/walk.js';

const entries: ContextEntry[] = [
  'a.txt',
  'arr[0].txt',
  'b.txt',
  'dir',
  'dir/one.go',
  'dir/sub',
  'dir/sub/two.go',
  'dir-x',
  'dir-x/three.go',
  'é.txt',
]
  .map((path): ContextEntry => ({ path, type: path.includes('.') ? 'file' : 'directory' }))
  .sort((a, b) => (a.path < b.path ? -1 : 1));

const paths = (list: ContextEntry[]): string[] => list.map((e) => e.path);

describe('Go path helpers', () => {
  it('cleans like path.Clean', () => {
    expect(cleanPath('')).toBe('.');
    expect(cleanPath('a//b/./c/..')).toBe('a/b');
    expect(cleanPath('/../x')).toBe('/x');
    expect(cleanPath('../../x')).toBe('../../x');
    expect(cleanPath('a/')).toBe('a');
  });

  it('matches like filepath.Match, including the [[] escape', () => {
    expect(goMatch('arr[[]0].txt', 'arr[0].txt')).toBe(true);
    expect(goMatch('*.txt', 'dir/a.txt')).toBe(false);
    expect(goMatch('?.txt', 'é.txt')).toBe(true);
    expect(goMatch('[^a]*', 'b')).toBe(true);
    expect(goMatch('\\*', '*')).toBe(true);
    expect(() => goMatch('[', 'x')).toThrow(GlobSyntaxError);
  });
});

describe('selectCopySources', () => {
  it('normalizes sources so they cannot leave the context', () => {
    expect(normalizeCopySource('/../../dir/')).toBe('dir');
    expect(normalizeCopySource('.')).toBe('');
  });

  it('finds a literal path, or nothing', () => {
    expect(paths(selectCopySources(entries, './dir'))).toEqual(['dir']);
    expect(selectCopySources(entries, 'missing')).toEqual([]);
  });

  it('expands globs segment by segment', () => {
    expect(paths(selectCopySources(entries, '*.txt'))).toEqual(['a.txt', 'arr[0].txt', 'b.txt', 'é.txt']);
    expect(paths(selectCopySources(entries, 'dir*/*.go'))).toEqual(['dir-x/three.go', 'dir/one.go']);
    expect(paths(selectCopySources(entries, 'dir/*/*.go'))).toEqual(['dir/sub/two.go']);
    expect(paths(selectCopySources(entries, 'arr[[]0].txt'))).toEqual(['arr[0].txt']);
  });

  it('lists a directory’s contents and applies --exclude', () => {
    expect(paths(entriesBelow(entries, 'dir'))).toEqual(['dir/one.go', 'dir/sub', 'dir/sub/two.go']);
    const exclude = compileCopyExcludes(['**/two.go']);
    expect(paths(entriesBelow(entries, 'dir').filter((e) => !exclude.isExcluded(e.path.slice('dir/'.length))))).toEqual([
      'dir/one.go',
      'dir/sub',
    ]);
  });
});
