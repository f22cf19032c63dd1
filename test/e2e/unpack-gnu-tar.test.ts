import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { chmod, chown, link, mkdir, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeLayer } from '../../src/layer/write-layer.js';
import { applyLayer } from '../../src/rootfs/unpack.js';
import { describeTree, scratchDir } from '../unit/rootfs/helpers.js';

const isRoot = process.getuid?.() === 0;
const capSetuid = Buffer.from('0100000280000000000000000000000000000000', 'hex');
const xattr = (file: string, name: string): Buffer => execFileSync('getfattr', ['--absolute-names', '--only-values', '-n', name, file]);

/** GNU tar is the reference: what it extracts from a blob, kiln must extract too, and vice versa. */
describe('interoperating with GNU tar', () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let source: string;

  beforeAll(async () => {
    scratch = await scratchDir();
    source = path.join(scratch.dir, 'source');
    await mkdir(path.join(source, 'usr/lib/deep/er/and/deeper'), { recursive: true });
    await mkdir(path.join(source, 'bin'));
    for (let i = 0; i < 50; i += 1) await writeFile(path.join(source, 'usr/lib', `lib${i}.so`), `library ${i} `.repeat(i * 100));
    await writeFile(path.join(source, 'usr/lib/deep/er/and/deeper', `${'n'.repeat(120)}.txt`), 'long name');
    await writeFile(path.join(source, 'bin/busybox'), 'bb'.repeat(50000));
    await chmod(path.join(source, 'bin/busybox'), 0o755);
    await link(path.join(source, 'bin/busybox'), path.join(source, 'bin/sh'));
    await symlink('busybox', path.join(source, 'bin/ls'));
    await symlink('/usr/lib/lib1.so', path.join(source, 'bin/abs-link'));
    await writeFile(path.join(source, 'bin/ping'), 'ping');
    if (isRoot) await chown(path.join(source, 'bin/ping'), 0, 4000);
    await chmod(path.join(source, 'bin/ping'), 0o2755);
    execFileSync('setfattr', ['-n', 'user.origin', '-v', 'gnu-tar', path.join(source, 'bin/ping')]);
    // Not valid UTF-8: must come through byte for byte.
    execFileSync('setfattr', ['-n', 'user.binary', '-v', '0xff80fe00c3', path.join(source, 'bin/ping')]);
    await writeFile(path.join(source, 'bin/newuidmap'), 'uidmap');
    await chmod(path.join(source, 'bin/newuidmap'), 0o755);
    // cap_setuid+ep (bit 7: byte 0x80), as Debian's uidmap package ships newuidmap.
    if (isRoot) execFileSync('setfattr', ['-n', 'security.capability', '-v', `0x${capSetuid.toString('hex')}`, path.join(source, 'bin/newuidmap')]);
    execFileSync('mkfifo', [path.join(source, 'bin/fifo')]);
    for (const p of ['usr/lib/deep', 'usr/lib', 'usr', 'bin']) await utimes(path.join(source, p), 1_300_000_000, 1_300_000_000);
  });
  afterAll(async () => scratch.cleanup());

  const gnuVariants: [string, string[]][] = [
    ['gzip, POSIX format with xattrs', ['--format=posix', '--xattrs', '--xattrs-include=*', '-czf']],
    ['gzip, GNU format', ['--format=gnu', '-czf']],
    ['zstd, POSIX format', ['--format=posix', '--zstd', '-cf']],
    ['plain, ustar-ish v7 names via POSIX', ['--format=posix', '-cf']],
  ];
  for (const [label, flags] of gnuVariants) {
    it(`unpacks a blob made by GNU tar (${label}) exactly as GNU tar does`, async () => {
      const blob = path.join(scratch.dir, `${label.replace(/\W+/g, '-')}.blob`);
      execFileSync('tar', [...flags, blob, '-C', source, '.']);
      const byTar = path.join(scratch.dir, `tar-${path.basename(blob)}`);
      const byKiln = path.join(scratch.dir, `kiln-${path.basename(blob)}`);
      await mkdir(byTar);
      await mkdir(byKiln);
      execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--same-owner', '-xpf', blob, '-C', byTar]);
      const warnings: string[] = [];
      await applyLayer(byKiln, createReadStream(blob), { layerName: label, warn: (m) => warnings.push(m) });
      expect(await describeTree(byKiln)).toEqual(await describeTree(byTar));
      expect(warnings).toEqual([]);
      if (label.includes('xattrs')) {
        expect(xattr(path.join(byKiln, 'bin/ping'), 'user.origin').toString()).toBe('gnu-tar');
        expect(xattr(path.join(byKiln, 'bin/ping'), 'user.binary').toString('hex')).toBe('ff80fe00c3');
        if (isRoot) expect(xattr(path.join(byKiln, 'bin/newuidmap'), 'security.capability').equals(capSetuid)).toBe(true);
      }
    });
  }

  for (const compression of ['gzip', 'zstd'] as const) {
    it(`GNU tar lists and extracts what kiln wrote (${compression}) to the same tree`, async () => {
      const out = path.join(scratch.dir, `out-${compression}`);
      await mkdir(out);
      const changes = execFileSync('find', ['.', '-mindepth', '1'], { cwd: source, encoding: 'utf8' })
        .trim()
        .split('\n')
        .map((p) => p.slice(2))
        .sort()
        .map((p) => ({ kind: 'upsert' as const, path: p }));
      const written = await writeLayer({ root: source, changes }, { compression, outputDir: out });
      if (written === null) throw new Error('expected a layer');
      const decompress = compression === 'gzip' ? '--gzip' : '--zstd';
      const listing = execFileSync('tar', [decompress, '-tvf', written.path], { encoding: 'utf8' });
      expect(listing).toMatch(/^hrwxr-xr-x 0\/0 +0 .* bin\/sh link to bin\/busybox$/m);
      expect(listing).toContain(`${'n'.repeat(120)}.txt`);
      const extracted = path.join(scratch.dir, `extracted-${compression}`);
      await mkdir(extracted);
      execFileSync('tar', [decompress, '--same-owner', '-xpf', written.path, '-C', extracted]);
      expect(await describeTree(extracted)).toEqual(await describeTree(source));
    });
  }

  for (const format of ['gnu', 'posix']) {
    it(`skips GNU sparse files (${format} format) with a warning instead of writing their block map`, async () => {
      const dir = path.join(scratch.dir, `sparse-${format}`);
      await mkdir(path.join(dir, 'in'), { recursive: true });
      await mkdir(path.join(dir, 'out'));
      execFileSync('truncate', ['-s', '10M', path.join(dir, 'in/holes')]);
      await writeFile(path.join(dir, 'in/normal'), 'n');
      execFileSync('tar', [`--format=${format}`, '--sparse', '-cf', path.join(dir, 'l.tar'), '-C', path.join(dir, 'in'), 'holes', 'normal']);
      const warnings: string[] = [];
      await applyLayer(path.join(dir, 'out'), createReadStream(path.join(dir, 'l.tar')), { layerName: 'sparse', warn: (m) => warnings.push(m) });
      expect(warnings.length).toBe(1);
      expect(warnings[0]).toMatch(/sparse/);
      expect(await describeTree(path.join(dir, 'out'), { mtimes: false })).toEqual({ normal: expect.objectContaining({ type: 'file' }) });
    });
  }
});
