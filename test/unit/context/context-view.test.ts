import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { contextView } from '../../../src/context/context-view.js';
import { IgnoreMatcher } from '../../../src/context/dockerignore.js';

let dir: string;
let context: string;
let scratch: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-context-view-'));
  context = path.join(dir, 'context');
  scratch = path.join(dir, 'scratch');
  await mkdir(path.join(context, 'src', 'deep'), { recursive: true });
  await mkdir(path.join(context, 'node_modules', 'x'), { recursive: true });
  await writeFile(path.join(context, 'src', 'app.js'), 'app\n');
  await writeFile(path.join(context, 'src', 'deep', 'keep.md'), 'keep\n');
  await writeFile(path.join(context, 'src', 'secret.env'), 'TOKEN=1\n');
  await writeFile(path.join(context, 'node_modules', 'x', 'index.js'), 'x\n');
  await symlink('app.js', path.join(context, 'src', 'link'));
  await chmod(path.join(context, 'src', 'deep'), 0o750);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function listTree(root: string, rel = ''): Promise<string[]> {
  const names: string[] = [];
  for (const name of (await readdir(path.join(root, rel))).sort()) {
    const child = rel === '' ? name : `${rel}/${name}`;
    names.push(child);
    if ((await lstat(path.join(root, child))).isDirectory()) names.push(...(await listTree(root, child)));
  }
  return names;
}

describe('contextView', () => {
  it('is the context itself when .dockerignore leaves nothing out', async () => {
    expect(await contextView(context, IgnoreMatcher.fromText(''), scratch)).toBe(context);
  });

  it('holds exactly what .dockerignore keeps: files linked, links as links, directory modes kept', async () => {
    const view = await contextView(context, IgnoreMatcher.fromText('node_modules\n**/*.env\n!src/deep\n'), scratch);
    expect(view).not.toBe(context);
    expect(await listTree(view)).toEqual(['src', 'src/app.js', 'src/deep', 'src/deep/keep.md', 'src/link']);
    expect(await readFile(path.join(view, 'src', 'app.js'), 'utf8')).toBe('app\n');
    expect((await stat(path.join(view, 'src', 'app.js'))).ino).toBe((await stat(path.join(context, 'src', 'app.js'))).ino);
    expect(await readlink(path.join(view, 'src', 'link'))).toBe('app.js');
    expect((await stat(path.join(view, 'src', 'deep'))).mode & 0o7777).toBe(0o750);
  });
});
