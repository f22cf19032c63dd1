// The context walk on a real tree: agrees path by path with the matcher, keeps symlinks as
// symlinks, and brings along the directories of re-included paths.
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IgnoreMatcher } from '../../src/context/dockerignore.js';
import { walkContext } from '../../src/context/walk.js';

let root = '';
let outside = '';

const files = [
  'Dockerfile',
  'README.md',
  'docs/guide.md',
  'docs/img/logo.png',
  'src/main.go',
  'src/util/strings.go',
  'src/util/strings_test.go',
  'src/gen/big.pb.go',
  'node_modules/left-pad/index.js',
  'node_modules/keep/package.json',
  'node_modules/keep/lib/a.js',
  'packages/web/node_modules/react/index.js',
  'packages/web/src/app.tsx',
  'build/out.bin',
  'build/keep.txt',
  'logs/a.log',
  'logs/sub/b.log',
  '.git/HEAD',
  '.git/objects/ab/cdef',
  'weird [x].txt',
];

/** Every path of the tree (files and directories), by brute force. */
async function allPaths(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(dir, { withFileTypes: true })) {
    const path = rel === '' ? d.name : `${rel}/${d.name}`;
    out.push(path);
    if (d.isDirectory()) out.push(...(await allPaths(join(dir, d.name), path)));
  }
  return out;
}

/** What the walk should keep: every path not excluded, plus the directories above them. */
function expected(paths: string[], matcher: IgnoreMatcher): string[] {
  const kept = new Set<string>();
  for (const p of paths) {
    if (matcher.isExcluded(p)) continue;
    kept.add(p);
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) kept.add(parts.slice(0, i).join('/'));
  }
  return [...kept].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'kiln-walk-'));
  outside = await mkdtemp(join(tmpdir(), 'kiln-walk-outside-'));
  await writeFile(join(outside, 'secret'), 'do not list me');
  for (const f of files) {
    await mkdir(join(root, f, '..'), { recursive: true });
    await writeFile(join(root, f), f);
  }
  await mkdir(join(root, 'empty-dir'));
  await symlink(outside, join(root, 'escape'));
  await symlink('src/main.go', join(root, 'main-link'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

const ignoreFiles = [
  '',
  'node_modules\n.git\n',
  '**/node_modules\n!node_modules/keep\n*.md\n!README.md\n',
  '*\n!src\n!Dockerfile\nsrc/**/*_test.go\n',
  'build\n!build/keep.txt\nlogs/**/*.log\n',
  '**/*.go\n!**/util/*.go\n**/*_test.go\n',
  '*/*\n!*/img\n',
  'weird \\[x\\].txt\ndocs\n!docs/img/*.png\n',
  '**\n!packages/*/src\n',
];

describe('walkContext', () => {
  for (const text of ignoreFiles) {
    it(`agrees with the matcher path by path for ${JSON.stringify(text)}`, async () => {
      const matcher = IgnoreMatcher.fromText(text);
      const walked = await walkContext(root, matcher);
      expect(walked.map((e) => e.path)).toEqual(expected(await allPaths(root), matcher));
    });
  }

  it('describes entries: types, sizes, modes, link targets; never follows a symlink', async () => {
    const entries = await walkContext(root, IgnoreMatcher.empty());
    const byPath = new Map(entries.map((e) => [e.path, e]));
    expect(byPath.get('escape')).toMatchObject({ type: 'symlink', linkTarget: outside, size: 0 });
    expect(byPath.get('main-link')).toMatchObject({ type: 'symlink', linkTarget: 'src/main.go' });
    expect(byPath.get('src/main.go')).toMatchObject({ type: 'file', size: 'src/main.go'.length });
    expect((byPath.get('empty-dir')?.mode ?? 0) & 0o170000).toBe(0o040000);
    expect([...byPath.keys()].some((p) => p.startsWith('escape/'))).toBe(false);
  });

  it('skips per-entry work when asked', async () => {
    const entries = await walkContext(root, IgnoreMatcher.empty(), { stat: false, readLinks: false });
    expect(entries.find((e) => e.path === 'escape')).toEqual({ path: 'escape', type: 'symlink' });
  });

  it('lists the directories of a re-included path inside an excluded directory', async () => {
    const entries = await walkContext(root, IgnoreMatcher.fromText('node_modules\n!node_modules/keep/lib\n'));
    const paths = entries.map((e) => e.path).filter((p) => p.startsWith('node_modules'));
    expect(paths).toEqual(['node_modules', 'node_modules/keep', 'node_modules/keep/lib', 'node_modules/keep/lib/a.js']);
    expect(entries.find((e) => e.path === 'node_modules')?.mode).toBeDefined();
  });

  it('names the directory it cannot read', async () => {
    await expect(walkContext(join(root, 'missing'), IgnoreMatcher.empty())).rejects.toThrow(/cannot read build context at .*missing/);
  });
});
