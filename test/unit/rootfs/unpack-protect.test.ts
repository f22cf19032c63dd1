/**
 * applyLayer's `protect` option (in-place builds): what a layer must leave alone, whatever its
 * entries, whiteouts and opaque markers say.
 */
import { lstat, mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyLayer } from '../../../src/rootfs/unpack.js';
import { RootPaths } from '../../../src/rootfs/root-paths.js';
import { type TarEntry, makeTar, scratchDir, streamOf } from './helpers.js';

describe('applyLayer with protected paths', () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let root: string;
  let outside: string;
  let warnings: string[];
  const protect = new RootPaths(['etc/hosts', 'kiln']);

  beforeEach(async () => {
    scratch = await scratchDir();
    root = path.join(scratch.dir, 'root');
    outside = path.join(scratch.dir, 'outside');
    await mkdir(path.join(root, 'etc'), { recursive: true });
    await mkdir(path.join(root, 'kiln'));
    await mkdir(outside);
    await writeFile(path.join(outside, 'victim'), 'untouched');
    await writeFile(path.join(root, 'etc', 'hosts'), 'mounted hosts');
    await writeFile(path.join(root, 'kiln', 'x'), 'kiln file');
    warnings = [];
  });
  afterEach(async () => scratch.cleanup());

  const apply = async (entries: TarEntry[], paths: RootPaths = protect) =>
    applyLayer(root, streamOf(await makeTar(entries)), { layerName: 'sha256:layer', protect: paths, warn: (m) => warnings.push(m) });

  const read = (relative: string): Promise<string> => readFile(path.join(root, relative), 'utf8');
  const list = async (relative: string): Promise<string[]> => (await readdir(path.join(root, relative))).sort();

  async function protectedUntouched(): Promise<void> {
    expect(await read('etc/hosts')).toBe('mounted hosts');
    expect(await list('kiln')).toEqual(['x']);
    expect(await read('kiln/x')).toBe('kiln file');
    expect(await readdir(outside)).toEqual(['victim']);
  }

  /** A lower layer: the image's own /etc beside the protected hosts file. */
  const lowerEtc = (): Promise<unknown> =>
    apply([
      { name: 'etc/', type: 'directory' },
      { name: 'etc/passwd', type: 'file', body: 'root:x:0:0::/root:/bin/sh\n' },
      { name: 'etc/group', type: 'file', body: 'root:x:0:\n' },
      { name: 'etc/ssl/certs/ca.pem', type: 'file', body: 'ca' },
    ]);

  it('skips entries at or below protected paths, and writes the rest', async () => {
    const result = await apply([
      { name: 'etc/', type: 'directory', mode: 0o755 },
      { name: 'etc/hosts', type: 'file', body: 'image hosts' },
      { name: 'etc/passwd', type: 'file', body: 'image passwd' },
      { name: 'kiln/', type: 'directory', mode: 0o700 },
      { name: 'kiln/x', type: 'file', body: 'image kiln x' },
      { name: 'kiln/new', type: 'file', body: 'new' },
      { name: 'kiln/sub/deep', type: 'file', body: 'deep' },
      { name: 'kilnish', type: 'file', body: 'not protected' },
    ]);
    await protectedUntouched();
    expect(await read('etc/passwd')).toBe('image passwd');
    expect(await read('kilnish')).toBe('not protected');
    expect(warnings).toEqual([]);
    expect(result.warnings).toBe(0);
  });

  it('does not reach a protected path through a symlink the layer lays, with entries or whiteouts', async () => {
    await apply([
      { name: 'sneaky', type: 'symlink', linkname: 'kiln' },
      { name: 'sneaky/x', type: 'file', body: 'through the link' },
      { name: 'etc-link', type: 'symlink', linkname: '/etc' },
      { name: 'etc-link/hosts', type: 'file', body: 'through the link' },
    ]);
    await protectedUntouched();
    await apply([
      { name: 'sneaky/.wh.x', type: 'file' },
      { name: 'etc-link/.wh.hosts', type: 'file' },
      { name: 'sneaky/.wh..wh..opq', type: 'file' },
    ]);
    await protectedUntouched();
  });

  it('keeps a protected path a whiteout names, and empties a whited-out ancestor around it', async () => {
    await lowerEtc();
    await apply([
      { name: 'etc/.wh.hosts', type: 'file' },
      { name: 'kiln/.wh.x', type: 'file' },
      { name: '.wh.kiln', type: 'file' },
    ]);
    await protectedUntouched();
    expect(await list('etc')).toEqual(['group', 'hosts', 'passwd', 'ssl']);

    await apply([{ name: '.wh.etc', type: 'file' }]);
    await protectedUntouched();
    expect(await list('etc')).toEqual(['hosts']);
    expect((await lstat(path.join(root, 'etc'))).isDirectory()).toBe(true);
  });

  it('keeps protected paths inside a directory made opaque, and what the same layer wrote there', async () => {
    await lowerEtc();
    await writeFile(path.join(root, 'lower-only'), 'lower');
    await apply([
      { name: 'etc/', type: 'directory' },
      { name: 'etc/.wh..wh..opq', type: 'file' },
      { name: 'etc/fresh', type: 'file', body: 'this layer' },
    ]);
    await protectedUntouched();
    expect(await list('etc')).toEqual(['fresh', 'hosts']);

    // The root itself opaque: only protected paths (and their emptied ancestors) stay.
    await apply([{ name: '.wh..wh..opq', type: 'file' }, { name: 'top', type: 'file', body: 'top' }]);
    await protectedUntouched();
    expect(await list('')).toEqual(['etc', 'kiln', 'top']);
    expect(await list('etc')).toEqual(['hosts']);
  });

  it('refuses, with a warning, to replace an ancestor of a protected path with a file or symlink', async () => {
    await lowerEtc();
    const result = await apply([
      { name: 'etc', type: 'file', body: 'a file where /etc was' },
      { name: 'etc', type: 'symlink', linkname: '/elsewhere' },
      { name: 'kiln', type: 'symlink', linkname: '/elsewhere' },
    ]);
    await protectedUntouched();
    expect((await lstat(path.join(root, 'etc'))).isDirectory()).toBe(true);
    expect(await list('etc')).toEqual(['group', 'hosts', 'passwd', 'ssl']);
    expect(warnings).toEqual([
      'layer sha256:layer: "etc": would replace a directory holding mount points or kiln\'s own files: skipped',
      'layer sha256:layer: "etc": would replace a directory holding mount points or kiln\'s own files: skipped',
    ]);
    expect(result.warnings).toBe(2);
  });

  it('removes, without following, a symlink standing where a protected path has ancestors', async () => {
    // `data` leads outside the root; a protected path is named below it (an output not written yet).
    await symlink(outside, path.join(root, 'data'));
    await symlink(outside, path.join(root, 'opaque-data'));
    const paths = new RootPaths(['etc/hosts', 'kiln', 'data/out/digest', 'opaque-data/out/digest']);
    await apply([{ name: '.wh.data', type: 'file' }], paths);
    await protectedUntouched();
    await apply([{ name: '.wh..wh..opq', type: 'file' }], paths);
    await protectedUntouched();
    expect(await list('')).toEqual(['etc', 'kiln']);
  });
});
