import { spawnSync } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { copyIntoRoot } from '../../../src/build/copy/index.js';
import { isArchiveFile, isTarHeader, sniffCompression } from '../../../src/build/copy/add-archive.js';
import { makeTar } from '../rootfs/helpers.js';
import { describeTree, instruction, makeTree, tempDir } from './copy-helpers.js';

let context: string;
let dest: string;
let cleanups: Array<() => Promise<void>>;

beforeEach(async () => {
  cleanups = [];
  const c = await tempDir();
  const d = await tempDir();
  cleanups.push(c.cleanup, d.cleanup);
  context = c.dir;
  dest = d.dir;
});

afterEach(async () => {
  for (const c of cleanups) await c();
});

function compressWith(tool: string, data: Buffer): Buffer {
  const result = spawnSync(tool, ['-c'], { input: data, maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`${tool} failed: ${String(result.stderr)}`);
  return result.stdout;
}

async function sampleTar(): Promise<Buffer> {
  return makeTar([
    { name: 'pkg/', type: 'directory', mode: 0o750, uid: 33, gid: 44 },
    { name: 'pkg/bin/tool', body: '#!/bin/sh\n', mode: 0o755, uid: 33, gid: 44, mtime: new Date(1_500_000_000_000) },
    { name: 'pkg/link', type: 'symlink', linkname: 'bin/tool' },
    // As tar writes it: a hard link's header repeats the file's metadata (moby applies it to the inode).
    { name: 'pkg/hard', type: 'link', linkname: 'pkg/bin/tool', mode: 0o755, uid: 33, gid: 44, mtime: new Date(1_500_000_000_000) },
    { name: 'pkg/.wh.kept', body: 'an ordinary file here' },
  ]);
}

const run = (text: string) => copyIntoRoot({ instruction: instruction(text), sourceRoot: context, destRoot: dest, workdir: '/' });

describe('ADD of local archives', () => {
  const formats: Array<[string, (tar: Buffer) => Buffer]> = [
    ['plain', (tar) => tar],
    ['gzip', (tar) => zlib.gzipSync(tar)],
    ['bzip2', (tar) => compressWith('bzip2', tar)],
    ['xz', (tar) => compressWith('xz', tar)],
    ['zstd', (tar) => compressWith('zstd', tar)],
  ];
  for (const [format, compress] of formats) {
    it(`extracts a ${format} tar recognised by its content, whatever its name`, async () => {
      await writeFile(path.join(context, 'archive.bin'), compress(await sampleTar()));
      const result = await run('ADD archive.bin /opt');
      const tree = await describeTree(dest);
      expect(tree['opt']).toMatchObject({ type: 'dir', mode: '0755', owner: '0:0' });
      expect(tree['opt/pkg']).toMatchObject({ type: 'dir', mode: '0750', owner: '33:44' });
      expect(tree['opt/pkg/bin']).toMatchObject({ type: 'dir', mode: '0755', owner: '0:0' });
      expect(tree['opt/pkg/bin/tool']).toMatchObject({ type: 'file', mode: '0755', owner: '33:44', content: '#!/bin/sh\n' });
      expect(tree['opt/pkg/link']).toMatchObject({ type: 'symlink', target: 'bin/tool' });
      expect(tree['opt/pkg/.wh.kept']?.content).toBe('an ordinary file here');
      const [tool, hard] = await Promise.all([stat(path.join(dest, 'opt/pkg/bin/tool')), stat(path.join(dest, 'opt/pkg/hard'))]);
      expect(hard.ino).toBe(tool.ino);
      expect(tool.mtimeMs).toBe(1_500_000_000_000);
      expect(result.changes.changes.map((c) => c.path)).toEqual(['opt', 'opt/pkg', 'opt/pkg/bin', 'opt/pkg/bin/tool', 'opt/pkg/link', 'opt/pkg/hard', 'opt/pkg/.wh.kept']);
    });
  }

  it('overwrites existing files, keeps existing directories, and --chown owns every entry', async () => {
    await makeTree(dest, { 'opt/pkg/bin/tool': 'old', 'opt/pkg/other': 'stays' });
    await writeFile(path.join(context, 'a.tar.gz'), zlib.gzipSync(await sampleTar()));
    await run('ADD --chown=5:6 a.tar.gz /opt/');
    const tree = await describeTree(dest);
    expect(tree['opt/pkg/bin/tool']).toMatchObject({ content: '#!/bin/sh\n', owner: '5:6' });
    expect(tree['opt/pkg/other']?.content).toBe('stays');
    expect(tree['opt/pkg']?.owner).toBe('5:6');
  });

  it('copies a non-archive as it is, even named .tar.gz, and COPY never extracts', async () => {
    await writeFile(path.join(context, 'fake.tar.gz'), 'not gzip at all');
    await writeFile(path.join(context, 'real.tar'), await sampleTar());
    await run('ADD fake.tar.gz /f/');
    await run('COPY real.tar /c/');
    await run('ADD --unpack=false real.tar /u/');
    const tree = await describeTree(dest);
    expect(tree['f/fake.tar.gz']?.content).toBe('not gzip at all');
    expect(tree['c/real.tar']?.type).toBe('file');
    expect(tree['u/real.tar']?.type).toBe('file');
  });

  it('keeps archive entries inside the destination (.. and absolute names, links out)', async () => {
    const evil = await makeTar([
      { name: '../../escape', body: 'x' },
      { name: '/abs', body: 'y' },
      { name: 'up', type: 'symlink', linkname: '../../../../..' },
      { name: 'up/through', body: 'z' },
    ]);
    await writeFile(path.join(context, 'evil.tar'), evil);
    await run('ADD evil.tar /x/');
    const tree = await describeTree(dest);
    expect(Object.keys(tree).sort()).toEqual(['x', 'x/abs', 'x/escape', 'x/through', 'x/up']);
    expect(await readFile(path.join(dest, 'x/through'), 'utf8')).toBe('z');
  });

  it('sniffs compressions and tar headers', async () => {
    expect(sniffCompression(Buffer.from([0x42, 0x5a, 0x68, 0x39]))).toBe('bzip2');
    expect(sniffCompression(Buffer.from('plain'))).toBe('none');
    const tar = await sampleTar();
    expect(isTarHeader(tar.subarray(0, 512))).toBe(true);
    expect(isTarHeader(Buffer.alloc(512))).toBe(false);
    await writeFile(path.join(context, 'empty'), '');
    expect(await isArchiveFile(path.join(context, 'empty'))).toBe(false);
  });
});
