import { execFileSync } from 'node:child_process';
import { chmod, chown, link, lutimes, mkdir, readFile, readdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeLayer } from '../../../src/layer/write-layer.js';
import { applyLayer } from '../../../src/rootfs/unpack.js';
import type { Change, ChangeSet } from '../../../src/snapshot/change.js';
import { sha256Digest } from '../../../src/image/digest.js';
import { describeTree, scratchDir } from '../rootfs/helpers.js';

const isRoot = process.getuid?.() === 0;

/** Builds a tree with every kind of entry a layer carries. */
async function makeSourceTree(source: string): Promise<void> {
  await mkdir(path.join(source, 'usr/bin'), { recursive: true });
  await mkdir(path.join(source, 'etc'), { recursive: true });
  await mkdir(path.join(source, 'tmp'));
  await chmod(path.join(source, 'tmp'), 0o1777);
  await writeFile(path.join(source, 'usr/bin/tool'), 'binary'.repeat(10000));
  await chmod(path.join(source, 'usr/bin/tool'), 0o755);
  await writeFile(path.join(source, 'usr/bin/su'), 'su');
  if (isRoot) await chown(path.join(source, 'usr/bin/su'), 1000, 1001);
  await chmod(path.join(source, 'usr/bin/su'), 0o4750);
  await link(path.join(source, 'usr/bin/tool'), path.join(source, 'usr/bin/tool-alias'));
  await symlink('tool', path.join(source, 'usr/bin/sym'));
  await symlink('/etc/missing', path.join(source, 'etc/dangling'));
  await writeFile(path.join(source, 'etc/empty'), '');
  await writeFile(path.join(source, `etc/${'long-name-'.repeat(15)}`), 'long');
  await writeFile(path.join(source, 'etc/ünïcode'), 'u');
  execFileSync('mkfifo', [path.join(source, 'tmp/fifo')]);
  if (isRoot) execFileSync('mknod', [path.join(source, 'etc/null'), 'c', '1', '3']);
  for (const p of ['usr/bin/tool', 'usr/bin/su', 'etc/empty', 'tmp/fifo']) await utimes(path.join(source, p), 1_500_000_000, 1_500_000_000);
  await lutimes(path.join(source, 'usr/bin/sym'), 1_500_000_000, 1_500_000_000);
  for (const p of ['usr/bin', 'usr', 'etc', 'tmp']) await utimes(path.join(source, p), 1_400_000_000, 1_400_000_000);
}

/** Every path in the tree, parents first (what a full snapshot would report). */
async function allPaths(root: string, relative = ''): Promise<Change[]> {
  const changes: Change[] = [];
  for (const child of (await readdir(path.join(root, relative), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = relative === '' ? child.name : `${relative}/${child.name}`;
    changes.push({ kind: 'upsert', path: p });
    if (child.isDirectory()) changes.push(...(await allPaths(root, p)));
  }
  return changes;
}

describe('writeLayer', () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let source: string;
  let target: string;
  let blobs: string;

  beforeEach(async () => {
    scratch = await scratchDir();
    source = path.join(scratch.dir, 'source');
    target = path.join(scratch.dir, 'target');
    blobs = path.join(scratch.dir, 'blobs');
    await Promise.all([mkdir(source), mkdir(target), mkdir(blobs)]);
  });
  afterEach(async () => scratch.cleanup());

  for (const compression of ['gzip', 'zstd'] as const) {
    it(`round-trips a real tree through ${compression}: types, modes, owners, links, contents, mtimes`, async () => {
      await makeSourceTree(source);
      const changeSet: ChangeSet = { root: source, changes: await allPaths(source) };
      const written = await writeLayer(changeSet, { compression, outputDir: blobs });
      expect(written).not.toBeNull();
      if (written === null) return;
      const blob = await readFile(written.path);
      expect(written.digest).toBe(sha256Digest(blob));
      expect(written.size).toBe(blob.length);
      expect(path.basename(written.path)).toBe(written.digest.slice('sha256:'.length));
      expect(written.layer.descriptor.mediaType).toBe(`application/vnd.oci.image.layer.v1.tar+${compression}`);
      expect(written.layer.diffId).toBe(written.diffId);
      const uncompressed = compression === 'gzip' ? execFileSync('gzip', ['-dc', written.path]) : execFileSync('zstd', ['-dc', written.path]);
      expect(written.diffId).toBe(sha256Digest(uncompressed));
      expect(written.uncompressedSize).toBe(uncompressed.length);

      const result = await applyLayer(target, await written.layer.open(), { layerName: written.digest });
      expect(result.compression).toBe(compression);
      const [before, after] = [await describeTree(source), await describeTree(target)];
      expect(after).toEqual(before);
      expect(before['usr/bin/tool-alias']?.links).toEqual(['usr/bin/tool', 'usr/bin/tool-alias']);
      expect(before['usr/bin/su']?.mode).toBe('4750');
    });
  }

  it('writes deterministic headers that GNU tar lists as written', async () => {
    await makeSourceTree(source);
    const written = await writeLayer({ root: source, changes: await allPaths(source) }, { compression: 'gzip', outputDir: blobs });
    if (written === null) throw new Error('expected a layer');
    const listing = execFileSync('tar', ['--numeric-owner', '-tvzf', written.path], { encoding: 'utf8' });
    const lines = listing.trim().split('\n');
    expect(lines[0]).toMatch(/^drwxr-xr-x 0\/0 +0 2014-05-13 \d\d:\d\d etc\/$/);
    expect(listing).toMatch(/^hrwxr-xr-x 0\/0 +0 .* usr\/bin\/tool-alias link to usr\/bin\/tool$/m);
    expect(listing).toMatch(/^lrwxrwxrwx 0\/0 +0 .* usr\/bin\/sym -> tool$/m);
    expect(listing).toMatch(/^prw-r--r-- 0\/0 +0 .* tmp\/fifo$/m);
    expect(listing).toMatch(/^drwxrwxrwt 0\/0 .* tmp\/$/m);
    if (isRoot) expect(listing).toMatch(/^-rwsr-x--- 1000\/1001 +2 .* usr\/bin\/su$/m);
    expect(execFileSync('tar', ['-tzf', written.path], { encoding: 'utf8' })).not.toMatch(/^(\/|\.\/)/m); // relative names only
    expect(listing).toContain(`etc/${'long-name-'.repeat(15)}`);
    expect(listing).toContain('etc/ünïcode');
    // uname/gname are empty: GNU tar shows the numbers even without --numeric-owner.
    expect(execFileSync('tar', ['-tvzf', written.path], { encoding: 'utf8' })).toMatch(/^drwxr-xr-x 0\/0 /);
  });

  it('reproducible mode gives byte-identical blobs from trees made at different times', async () => {
    await makeSourceTree(source);
    const changes = await allPaths(source);
    const first = await writeLayer({ root: source, changes }, { compression: 'gzip', outputDir: blobs, reproducible: true, sourceDateEpoch: 1_000_000_000 });
    // Touch everything: without clamping, the digest would change.
    for (const change of changes) {
      await lutimes(path.join(source, change.path), new Date(), new Date());
    }
    const second = await writeLayer({ root: source, changes }, { compression: 'gzip', outputDir: blobs, sourceDateEpoch: 1_000_000_000 });
    expect(second?.digest).toBe(first?.digest);
    expect(second?.diffId).toBe(first?.diffId);
    const unclamped = await writeLayer({ root: source, changes }, { compression: 'gzip', outputDir: blobs });
    expect(unclamped?.diffId).not.toBe(first?.diffId);
    const listing = execFileSync('tar', ['-tvzf', first?.path ?? ''], { encoding: 'utf8' });
    expect(listing).not.toMatch(/20(1[5-9]|2\d)-/); // nothing after 2001-09-09
  });

  it('writes whiteouts and opaque markers that unpacking applies over a lower layer', async () => {
    await mkdir(path.join(source, 'keep'));
    await mkdir(path.join(source, 'opaque'));
    await writeFile(path.join(source, 'keep/file'), 'k');
    await writeFile(path.join(source, 'keep/gone'), 'g');
    await writeFile(path.join(source, 'opaque/old'), 'o');
    await writeFile(path.join(source, 'gone-dir'), 'x');
    const lower = await writeLayer({ root: source, changes: await allPaths(source) }, { compression: 'zstd', outputDir: blobs });
    await rm(path.join(source, 'keep/gone'));
    await rm(path.join(source, 'gone-dir'));
    await rm(path.join(source, 'opaque/old'));
    await writeFile(path.join(source, 'opaque/new'), 'n');
    const upper = await writeLayer(
      {
        root: source,
        changes: [
          { kind: 'delete', path: 'gone-dir' },
          { kind: 'delete', path: 'keep/gone' },
          { kind: 'opaque', path: 'opaque' },
          { kind: 'upsert', path: 'opaque/new' },
        ],
      },
      { compression: 'gzip', outputDir: blobs },
    );
    if (lower === null || upper === null) throw new Error('expected layers');
    const listing = execFileSync('tar', ['-tzf', upper.path], { encoding: 'utf8' });
    expect(listing.trim().split('\n')).toEqual(['.wh.gone-dir', 'keep/.wh.gone', 'opaque/', 'opaque/.wh..wh..opq', 'opaque/new']);
    await applyLayer(target, await lower.layer.open(), { layerName: 'lower' });
    await applyLayer(target, await upper.layer.open(), { layerName: 'upper' });
    expect(await describeTree(target, { mtimes: false })).toEqual(await describeTree(source, { mtimes: false }));
  });

  it('returns null for an empty change set and rejects paths that leave the root', async () => {
    expect(await writeLayer({ root: source, changes: [] }, { compression: 'gzip', outputDir: blobs })).toBeNull();
    await expect(writeLayer({ root: source, changes: [{ kind: 'upsert', path: '../etc' }] }, { compression: 'gzip', outputDir: blobs })).rejects.toThrow(
      /not a clean path/,
    );
    await expect(writeLayer({ root: source, changes: [{ kind: 'upsert', path: 'missing' }] }, { compression: 'gzip', outputDir: blobs })).rejects.toThrow(
      /"missing": cannot read it/,
    );
    expect(await readdir(blobs)).toEqual([]); // no temp file left behind
  });

  it('writes several layers in parallel', async () => {
    for (const name of ['a', 'b', 'c', 'd']) await writeFile(path.join(source, name), name.repeat(100000));
    const results = await Promise.all(
      ['a', 'b', 'c', 'd'].map((name, i) =>
        writeLayer({ root: source, changes: [{ kind: 'upsert', path: name }] }, { compression: i % 2 === 0 ? 'gzip' : 'zstd', outputDir: blobs, reproducible: true }),
      ),
    );
    expect(new Set(results.map((r) => r?.digest)).size).toBe(4);
    for (const result of results) {
      if (result === null) throw new Error('expected a layer');
      expect(sha256Digest(await readFile(result.path))).toBe(result.digest);
    }
  });
});
