import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { chmod, chown, link, lutimes, mkdir, readFile, readdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { carriedInLayer, GetfattrLayerXattrs, type LayerXattrReader } from '../../../src/layer/layer-xattrs.js';
import { writeLayer } from '../../../src/layer/write-layer.js';
import { type CommandRunner, runCommand } from '../../../src/rootfs/command-runner.js';
import { createTarExtract, rawXattrMarker } from '../../../src/rootfs/tar-extract.js';
import { applyLayer } from '../../../src/rootfs/unpack.js';
import type { Change, ChangeSet } from '../../../src/snapshot/change.js';
import type { Xattr } from '../../../src/snapshot/xattrs.js';
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

/** cap_net_raw+ep, as `setcap cap_net_raw+ep` writes it (VFS_CAP_REVISION_2). */
const netRaw = Buffer.from('0100000200200000000000000000000000000000', 'hex');
/** cap_setuid+ep (newuidmap's): byte 0x80, which no UTF-8 string can carry. */
const setuid = Buffer.from('0100000280000000000000000000000000000000', 'hex');

const getfattr = (file: string, name: string): Buffer =>
  execFileSync('getfattr', ['--absolute-names', '--no-dereference', '--only-values', '-n', name, file], { stdio: ['ignore', 'pipe', 'pipe'] });
const setfattr = (file: string, name: string, value: Buffer): void => {
  execFileSync('setfattr', ['--no-dereference', '-n', name, '-v', `0x${value.toString('hex')}`, file]);
};

/** Each entry of a gzip layer as kiln's tar reader sees it: name, link target and xattrs as raw bytes. */
async function readEntries(blob: string): Promise<{ name: string; linkname: string | null | undefined; xattrs: Record<string, Buffer> }[]> {
  const extract = createTarExtract();
  const feeding = pipeline(createReadStream(blob), createGunzip(), extract);
  const entries = [];
  for await (const entry of extract) {
    // tar-stream hands PAX records out as `header.pax`, which its typings leave out.
    const pax: Record<string, string> = (entry.header as { pax?: Record<string, string> | null }).pax ?? {};
    const xattrs: Record<string, Buffer> = {};
    for (const [key, value] of Object.entries(pax)) {
      if (key.startsWith('SCHILY.xattr.')) {
        expect(pax[rawXattrMarker]).toBe('1');
        xattrs[key.slice('SCHILY.xattr.'.length)] = Buffer.from(value, 'latin1');
      }
    }
    entries.push({ name: entry.header.name, linkname: entry.header.linkname, xattrs });
    entry.resume();
  }
  await feeding;
  return entries;
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

  describe('extended attributes', () => {
    it('carries security.capability and user.*, never overlayfs\' or LSM attributes', () => {
      expect(['security.capability', 'user.kiln', 'user.a.b.c', 'user.overlay.x'].map(carriedInLayer)).toEqual([true, true, true, false]);
      for (const name of ['security.selinux', 'security.ima', 'trusted.overlay.opaque', 'system.posix_acl_access', 'security.capability.x']) {
        expect(carriedInLayer(name)).toBe(false);
      }
    });

    it('reads them with the real getfattr and round-trips them through kiln\'s unpacking', async () => {
      await mkdir(path.join(source, 'dir'));
      await writeFile(path.join(source, 'dir/plain'), 'p');
      await writeFile(path.join(source, 'dir/tagged file\nwith newline'), 't');
      await writeFile(path.join(source, 'dir/ping'), 'ping');
      setfattr(path.join(source, 'dir'), 'user.dir.note', Buffer.from('d'));
      setfattr(path.join(source, 'dir/tagged file\nwith newline'), 'user.kiln', Buffer.from([0x00, 0xff, 0x80]));
      setfattr(path.join(source, 'dir/ping'), 'user.overlay.origin', Buffer.from('x'));
      if (isRoot) {
        setfattr(path.join(source, 'dir/ping'), 'security.capability', setuid);
        setfattr(path.join(source, 'dir/ping'), 'trusted.overlay.opaque', Buffer.from('y'));
      }
      const calls: string[][] = [];
      const run: CommandRunner = (command, args) => {
        calls.push([command, ...args]);
        return runCommand(command, args);
      };
      const warnings: string[] = [];
      const xattrs = new GetfattrLayerXattrs(run, (line) => warnings.push(line));
      const changes = ['dir', 'dir/plain', 'dir/tagged file\nwith newline', 'dir/ping'].map((p) => ({ kind: 'upsert' as const, path: p }));
      const written = await writeLayer({ root: source, changes: [{ kind: 'delete', path: 'gone' }, ...changes] }, { compression: 'gzip', outputDir: blobs, xattrs });
      if (written === null) throw new Error('expected a layer');
      expect(warnings).toEqual([]);
      // One getfattr for the layer, asked about what the layer writes, the whiteout excepted.
      expect(calls).toHaveLength(1);
      expect(calls[0]?.slice(0, 7)).toEqual(['getfattr', '--absolute-names', '--no-dereference', '--dump', '--encoding=hex', '--match=^(security\\.capability$|user\\.)', '--']);
      expect(calls[0]?.slice(7)).toEqual(changes.map((change) => path.join(source, change.path)));

      const entries = await readEntries(written.path);
      expect(entries.map((entry) => entry.name)).toEqual(['.wh.gone', 'dir/', 'dir/plain', 'dir/tagged file\nwith newline', 'dir/ping']);
      expect(entries[1]?.xattrs).toEqual({ 'user.dir.note': Buffer.from('d') });
      expect(entries[2]?.xattrs).toEqual({});
      expect(entries[3]?.xattrs).toEqual({ 'user.kiln': Buffer.from([0x00, 0xff, 0x80]) });
      expect(entries[4]?.xattrs).toEqual(isRoot ? { 'security.capability': setuid } : {});

      await applyLayer(target, await written.layer.open(), { layerName: 'xattrs' });
      expect(getfattr(path.join(target, 'dir'), 'user.dir.note')).toEqual(Buffer.from('d'));
      expect(getfattr(path.join(target, 'dir/tagged file\nwith newline'), 'user.kiln')).toEqual(Buffer.from([0x00, 0xff, 0x80]));
      if (isRoot) expect(getfattr(path.join(target, 'dir/ping'), 'security.capability')).toEqual(setuid);
      expect(() => getfattr(path.join(target, 'dir/ping'), 'user.overlay.origin')).toThrow();
    });

    it.runIf(isRoot)('writes PAX headers GNU tar reads: long and non-ASCII names, long link targets, binary values', async () => {
      const long = `${'d'.repeat(120)}/${'f'.repeat(120)}`;
      await mkdir(path.join(source, 'd'.repeat(120)));
      await writeFile(path.join(source, long), 'long');
      await writeFile(path.join(source, 'ünï'), 'u');
      await symlink('t'.repeat(150), path.join(source, 'link'));
      // Injected: the kernel allows no user.* attributes on symlinks, a layer from elsewhere may.
      const everywhere: LayerXattrReader = {
        read: async (paths) => new Map(paths.map((p): [string, Xattr[]] => [p, [{ name: 'user.z', value: Buffer.from('z') }, { name: 'security.capability', value: netRaw }]])),
      };
      const changes = ['d'.repeat(120), long, 'ünï', 'link'].map((p) => ({ kind: 'upsert' as const, path: p }));
      const written = await writeLayer({ root: source, changes }, { compression: 'gzip', outputDir: blobs, xattrs: everywhere });
      if (written === null) throw new Error('expected a layer');
      const listing = execFileSync('tar', ['-tvzf', written.path], { encoding: 'utf8' });
      expect(listing).toContain(` ${long}\n`);
      expect(listing).toContain(' ünï\n');
      expect(listing).toContain(` link -> ${'t'.repeat(150)}\n`);
      expect(listing).not.toContain('PaxHeader');
      const unpacked = path.join(scratch.dir, 'gnu');
      await mkdir(unpacked);
      // (GNU tar says it cannot set user.z on the symlink, as the kernel allows none there.)
      execFileSync('tar', ['--xattrs', '--xattrs-include=*', '-xzf', written.path, '-C', unpacked], { stdio: ['ignore', 'pipe', 'pipe'] });
      for (const file of [long, 'ünï']) {
        expect(getfattr(path.join(unpacked, file), 'security.capability')).toEqual(netRaw);
        expect(getfattr(path.join(unpacked, file), 'user.z')).toEqual(Buffer.from('z'));
      }
      expect(getfattr(path.join(unpacked, 'd'.repeat(120)), 'user.z')).toEqual(Buffer.from('z'));
    });

    it('gives the same bytes whatever order getfattr lists the attributes in', async () => {
      await writeFile(path.join(source, 'f'), 'f');
      const listing = (order: Xattr[]): LayerXattrReader => ({ read: async (paths) => new Map(paths.map((p) => [p, order])) });
      const a = { name: 'user.a', value: Buffer.from('1') };
      const b = { name: 'user.b', value: Buffer.from('2') };
      const changes = [{ kind: 'upsert' as const, path: 'f' }];
      const first = await writeLayer({ root: source, changes }, { compression: 'gzip', outputDir: blobs, reproducible: true, xattrs: listing([a, b]) });
      const second = await writeLayer({ root: source, changes }, { compression: 'gzip', outputDir: blobs, reproducible: true, xattrs: listing([b, a]) });
      const none = await writeLayer({ root: source, changes }, { compression: 'gzip', outputDir: blobs, reproducible: true });
      expect(second?.diffId).toBe(first?.diffId);
      expect(none?.diffId).not.toBe(first?.diffId);
    });

    it('without getfattr: says so once, and writes every layer without attributes', async () => {
      await writeFile(path.join(source, 'f'), 'f');
      setfattr(path.join(source, 'f'), 'user.kiln', Buffer.from('x'));
      let attempts = 0;
      const absent: CommandRunner = () => {
        attempts += 1;
        return Promise.reject(Object.assign(new Error('spawn getfattr ENOENT'), { code: 'ENOENT' }));
      };
      const warnings: string[] = [];
      const xattrs = new GetfattrLayerXattrs(absent, (line) => warnings.push(line));
      const changes = [{ kind: 'upsert' as const, path: 'f' }];
      const first = await writeLayer({ root: source, changes }, { compression: 'gzip', outputDir: blobs, reproducible: true, xattrs });
      const second = await writeLayer({ root: source, changes }, { compression: 'gzip', outputDir: blobs, reproducible: true, xattrs });
      const plain = await writeLayer({ root: source, changes }, { compression: 'gzip', outputDir: blobs, reproducible: true });
      expect(attempts).toBe(1);
      expect(warnings).toEqual([expect.stringMatching(/^cannot run getfattr \(spawn getfattr ENOENT\): layers are written without extended attributes.*"attr" package/)]);
      expect(first?.diffId).toBe(plain?.diffId);
      expect(second?.diffId).toBe(plain?.diffId);
      expect(await readFile(first?.path ?? '')).toEqual(await readFile(plain?.path ?? ''));
    });

    it('warns about paths getfattr could not read and keeps what it read', async () => {
      await writeFile(path.join(source, 'f'), 'f');
      setfattr(path.join(source, 'f'), 'user.kiln', Buffer.from('x'));
      const warnings: string[] = [];
      const xattrs = new GetfattrLayerXattrs(runCommand, (line) => warnings.push(line));
      const read = await xattrs.read([path.join(source, 'f'), path.join(source, 'vanished')]);
      expect(read).toEqual(new Map([[path.join(source, 'f'), [{ name: 'user.kiln', value: Buffer.from('x') }]]]));
      expect(warnings).toEqual([expect.stringMatching(/^getfattr could not read the extended attributes of 1 path\(s\), written without them: .*vanished: No such file/)]);
    });
  });
});
