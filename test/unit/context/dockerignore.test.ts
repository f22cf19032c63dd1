import { describe, expect, it } from 'vitest';
import { DockerignoreSyntaxError, IgnoreMatcher, parseDockerignore } from '../../../src/context/dockerignore.js';

describe('parseDockerignore', () => {
  it('strips a BOM, comments in the first column, blank lines; cleans and unroots', () => {
    const text = '\uFEFF# comment\n\n  node_modules/  \n/abs/path\n./rel/../x\n !  /keep\n  # not a comment\r\n';
    expect(parseDockerignore(text)).toEqual(['node_modules', 'abs/path', 'x', '!keep', '# not a comment']);
  });
});

describe('IgnoreMatcher', () => {
  it('lets the last matching pattern win and re-includes with !', () => {
    const m = IgnoreMatcher.fromText('*.md\n!README.md\nREADME*.md\n');
    expect(m.isExcluded('a.md')).toBe(true);
    expect(m.isExcluded('README.md')).toBe(true);
    const m2 = IgnoreMatcher.fromText('*.md\n!README.md\n');
    expect(m2.isExcluded('README.md')).toBe(false);
  });

  it('matches a path below a matched directory', () => {
    const m = IgnoreMatcher.fromText('build\n');
    expect(m.isExcluded('build/out/app.js')).toBe(true);
    expect(m.isExcluded('src/build/x')).toBe(false);
  });

  it('reports bad patterns with the file name', () => {
    expect(() => IgnoreMatcher.fromText('ok\n[z\n', '/ctx/.dockerignore')).toThrow(/\/ctx\/\.dockerignore: invalid pattern "\[z"/);
    expect(() => IgnoreMatcher.fromText('!\n')).toThrow(DockerignoreSyntaxError);
    expect(() => IgnoreMatcher.fromText('a\\\n')).toThrow(DockerignoreSyntaxError);
  });

  it('treats regexp characters literally and keeps * within a segment', () => {
    const m = IgnoreMatcher.fromText('a+b(c).txt\nlogs/*.log\n');
    expect(m.isExcluded('a+b(c).txt')).toBe(true);
    expect(m.isExcluded('logs/x.log')).toBe(true);
    expect(m.isExcluded('logs/sub/x.log')).toBe(false);
  });

  describe('mayReincludeBelow (walk pruning)', () => {
    it('is false without exceptions', () => {
      expect(IgnoreMatcher.fromText('node_modules\n').mayReincludeBelow('node_modules')).toBe(false);
    });

    it('is true only where an exception can reach', () => {
      const m = IgnoreMatcher.fromText('node_modules\n!node_modules/keep/**\n*.tmp\n');
      expect(m.mayReincludeBelow('node_modules')).toBe(true);
      expect(m.mayReincludeBelow('node_modules/keep')).toBe(true);
      expect(m.mayReincludeBelow('node_modules/other')).toBe(false);
      expect(m.mayReincludeBelow('vendor')).toBe(false);
    });

    it('follows wildcards segment by segment and gives up on **', () => {
      const m = IgnoreMatcher.fromText('*\n!*/src/*.go\n');
      expect(m.mayReincludeBelow('pkg')).toBe(true);
      expect(m.mayReincludeBelow('pkg/src')).toBe(true);
      expect(m.mayReincludeBelow('pkg/src/deeper')).toBe(false);
      expect(m.mayReincludeBelow('pkg/doc')).toBe(false);
      const anywhere = IgnoreMatcher.fromText('*\n!**/*.go\n');
      expect(anywhere.mayReincludeBelow('a/b/c')).toBe(true);
    });

    it('agrees with per-path matching: pruned directories hold no included path', () => {
      const texts = ['*\n!*/src/*.go\n', 'a\n!a/b\n', '**/x\n!a/x/keep\n', 'd*\n!dir/[ab]/f\n', '*\n!a[^z]b\n'];
      const paths = ['a/b', 'a/b/c', 'a/x/keep', 'a/x/other', 'pkg/src/m.go', 'pkg/src/deep/m.go', 'dir/a/f', 'dir/c/f', 'a/b'];
      for (const text of texts) {
        const m = IgnoreMatcher.fromText(text);
        for (const path of paths) {
          if (m.isExcluded(path)) continue;
          // Every ancestor that is excluded must not be pruned.
          const parts = path.split('/');
          for (let i = 1; i < parts.length; i++) {
            const dir = parts.slice(0, i).join('/');
            if (m.isExcluded(dir)) expect(m.mayReincludeBelow(dir), `${JSON.stringify(text)} ${dir} → ${path}`).toBe(true);
          }
        }
      }
    });
  });
});
