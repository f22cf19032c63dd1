import { execFileSync } from 'node:child_process';
import { lstat, mkdir, readFile, readdir, readlink, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CommandRunner } from '../../../src/rootfs/command-runner.js';
import { runCommand } from '../../../src/rootfs/command-runner.js';
import { LayerEntryError, applyLayer, unpackImage } from '../../../src/rootfs/unpack.js';
import { type TarEntry, makeTar, scratchDir, streamOf } from './helpers.js';

const isRoot = process.getuid?.() === 0;

describe('applyLayer', () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let root: string;
  let outside: string;

  beforeEach(async () => {
    scratch = await scratchDir();
    root = path.join(scratch.dir, 'root');
    outside = path.join(scratch.dir, 'outside');
    await mkdir(root);
    await mkdir(outside);
    await writeFile(path.join(outside, 'victim'), 'untouched');
  });
  afterEach(async () => scratch.cleanup());

  const apply = async (entries: TarEntry[], layerName = 'sha256:layer', extra: { runner?: CommandRunner; warn?: (m: string) => void } = {}) =>
    applyLayer(root, streamOf(await makeTar(entries)), { layerName, ...extra });

  async function outsideUntouched(): Promise<void> {
    expect(await readdir(outside)).toEqual(['victim']);
    expect(await readFile(path.join(outside, 'victim'), 'utf8')).toBe('untouched');
  }

  it('writes every entry type with its metadata', async () => {
    const warnings: string[] = [];
    await apply(
      [
        { name: 'usr/', type: 'directory', mode: 0o755, mtime: new Date(1_000_000_000_000) },
        { name: 'usr/bin/', type: 'directory', mode: 0o750, uid: 12, gid: 34, mtime: new Date(1_100_000_000_000) },
        { name: 'usr/bin/su', type: 'file', mode: 0o4755, uid: 0, gid: 0, body: 'suid', mtime: new Date(1_200_000_000_000) },
        { name: 'usr/bin/owned', type: 'file', mode: 0o2750, uid: 1000, gid: 1001, body: 'sgid' },
        { name: 'tmp/', type: 'directory', mode: 0o1777 },
        { name: 'usr/bin/sh', type: 'symlink', linkname: 'busybox' },
        { name: 'usr/bin/busybox', type: 'file', mode: 0o755, body: 'bb' },
        { name: 'usr/bin/hard', type: 'link', linkname: 'usr/bin/busybox' },
        { name: 'run/fifo', type: 'fifo', mode: 0o600 },
        { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
      ],
      'sha256:types',
      { warn: (m) => warnings.push(m) },
    );
    const su = await stat(path.join(root, 'usr/bin/su'));
    expect(su.mode & 0o7777).toBe(0o4755);
    expect(su.mtimeMs).toBe(1_200_000_000_000);
    expect((await stat(path.join(root, 'tmp'))).mode & 0o7777).toBe(0o1777);
    const bin = await stat(path.join(root, 'usr/bin'));
    // Set after its children were written, or writing them would have moved it.
    expect(bin.mtimeMs).toBe(1_100_000_000_000);
    expect(bin.mode & 0o7777).toBe(0o750);
    expect((await stat(path.join(root, 'usr'))).mtimeMs).toBe(1_000_000_000_000);
    expect(await readlink(path.join(root, 'usr/bin/sh'))).toBe('busybox');
    expect((await stat(path.join(root, 'usr/bin/hard'))).ino).toBe((await stat(path.join(root, 'usr/bin/busybox'))).ino);
    expect((await lstat(path.join(root, 'run/fifo'))).isFIFO()).toBe(true);
    if (isRoot) {
      const owned = await stat(path.join(root, 'usr/bin/owned'));
      expect([owned.uid, owned.gid, owned.mode & 0o7777]).toEqual([1000, 1001, 0o2750]);
      expect([bin.uid, bin.gid]).toEqual([12, 34]);
      const dev = await lstat(path.join(root, 'dev/null'));
      expect(dev.isCharacterDevice()).toBe(true);
      expect(dev.rdev).toBe((1 << 8) | 3);
      expect(warnings).toEqual([]);
    }
  });

  it('warns clearly and goes on when device nodes cannot be made', async () => {
    const warnings: string[] = [];
    const denied: CommandRunner = async () => ({ exitCode: 1, stdout: '', stderr: 'mknod: dev/sda: Operation not permitted' });
    const result = await apply(
      [
        { name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0 },
        { name: 'after', type: 'file', body: 'still here' },
      ],
      'sha256:devs',
      { runner: denied, warn: (m) => warnings.push(m) },
    );
    expect(result.warnings).toBe(1);
    expect(warnings[0]).toMatch(/sha256:devs.*dev\/sda.*Operation not permitted.*skipped/);
    expect(await readFile(path.join(root, 'after'), 'utf8')).toBe('still here');
  });

  it('sets xattrs from PAX SCHILY.xattr records with setfattr, only for entries that carry them', async () => {
    const calls: string[][] = [];
    const recording: CommandRunner = async (command, args) => {
      calls.push([command, ...args]);
      return runCommand(command, args);
    };
    // cap_net_bind_service+ep, VFS_CAP_REVISION_2.
    const capability = Buffer.from('0100000200040000000000000000000000000000', 'hex');
    await apply(
      [
        { name: 'ping', type: 'file', mode: 0o755, body: 'x', pax: { 'SCHILY.xattr.security.capability': capability.toString('latin1'), 'SCHILY.xattr.user.note': 'hello' } },
        { name: 'plain', type: 'file', body: 'y' },
      ],
      'sha256:xattr',
      { runner: recording },
    );
    expect(calls.map((c) => c[0])).toEqual(['setfattr', 'setfattr']);
    const read = (name: string) => execFileSync('getfattr', ['--absolute-names', '--only-values', '-n', name, path.join(root, 'ping')]);
    expect(read('user.note').toString()).toBe('hello');
    if (isRoot) expect(read('security.capability').equals(capability)).toBe(true);
  });

  it('applies whiteouts and opaque directories to lower layers only', async () => {
    await apply([
      { name: 'a/x', type: 'file', body: '1' },
      { name: 'a/y', type: 'file', body: '2' },
      { name: 'b/old', type: 'file', body: '3' },
      { name: 'b/sub/deep', type: 'file', body: '4' },
      { name: 'gone/inner', type: 'file', body: '5' },
    ]);
    await apply([
      { name: 'a/.wh.x', type: 'file' },
      { name: 'b/', type: 'directory' },
      { name: 'b/before', type: 'file', body: 'this layer, before the marker' },
      { name: 'b/sub/new', type: 'file', body: 'this layer, under a lower dir' },
      { name: 'b/.wh..wh..opq', type: 'file' },
      { name: 'b/after', type: 'file', body: 'this layer, after the marker' },
      { name: '.wh.gone', type: 'file' },
      { name: 'c', type: 'file', body: 'new' },
      { name: '.wh.c', type: 'file' },
    ]);
    expect((await readdir(root)).sort()).toEqual(['a', 'b', 'c']);
    expect(await readdir(path.join(root, 'a'))).toEqual(['y']);
    expect((await readdir(path.join(root, 'b'))).sort()).toEqual(['after', 'before', 'sub']);
    expect(await readdir(path.join(root, 'b/sub'))).toEqual(['new']);
  });

  it('replaces across kinds: file over dir, dir over file, dir over dir keeps contents', async () => {
    await apply([
      { name: 'd/keep', type: 'file', body: 'k' },
      { name: 'was-dir/child', type: 'file', body: 'c' },
      { name: 'was-file', type: 'file', body: 'f' },
      { name: 'was-link', type: 'symlink', linkname: '/d' },
    ]);
    await apply([
      { name: 'd/', type: 'directory', mode: 0o700 },
      { name: 'was-dir', type: 'file', body: 'now a file' },
      { name: 'was-file/', type: 'directory' },
      { name: 'was-file/inside', type: 'file', body: 'i' },
      { name: 'was-link/', type: 'directory' },
    ]);
    expect(await readdir(path.join(root, 'd'))).toEqual(['keep']);
    expect((await stat(path.join(root, 'd'))).mode & 0o777).toBe(0o700);
    expect(await readFile(path.join(root, 'was-dir'), 'utf8')).toBe('now a file');
    expect(await readFile(path.join(root, 'was-file/inside'), 'utf8')).toBe('i');
    expect((await lstat(path.join(root, 'was-link'))).isDirectory()).toBe(true);
    expect(await readdir(path.join(root, 'd'))).toEqual(['keep']);
  });

  it('reads plain, gzip and zstd layers by their magic bytes', async () => {
    const entries: TarEntry[] = [{ name: 'hello', type: 'file', body: 'world' }];
    await applyLayer(root, streamOf(await makeTar(entries, 'gzip')), { layerName: 'gz', mediaType: 'application/vnd.oci.image.layer.v1.tar' });
    const plain = await makeTar([{ name: 'plain', type: 'file', body: 'p' }]);
    await applyLayer(root, streamOf(plain), { layerName: 'plain', mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' });
    const zstd = execFileSync('zstd', ['-q', '-c'], { input: await makeTar([{ name: 'z', type: 'file', body: 'zz' }]) });
    const result = await applyLayer(root, streamOf(zstd), { layerName: 'zst', compression: { zstd: 'fzstd' } });
    expect(result.compression).toBe('zstd');
    expect((await readdir(root)).sort()).toEqual(['hello', 'plain', 'z']);
    expect(await readFile(path.join(root, 'z'), 'utf8')).toBe('zz');
  });

  it('fails with the layer named on a corrupt stream', async () => {
    const gz = await makeTar([{ name: 'f', type: 'file', body: 'x'.repeat(10000) }], 'gzip');
    const truncated = gz.subarray(0, gz.length - 20);
    await expect(applyLayer(root, streamOf(truncated), { layerName: 'sha256:broken' })).rejects.toThrow(/sha256:broken/);
  });

  it('unpackImage applies layers in order', async () => {
    const layer = (name: string, blob: Buffer) => ({
      descriptor: { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: name, size: blob.length },
      diffId: name,
      open: async () => streamOf(blob),
    });
    const lower = await makeTar([{ name: 'etc/os', type: 'file', body: 'lower' }, { name: 'etc/drop', type: 'file', body: 'x' }]);
    const upper = await makeTar([{ name: 'etc/os', type: 'file', body: 'upper' }, { name: 'etc/.wh.drop', type: 'file' }]);
    const results = await unpackImage(root, { layers: [layer('l1', lower), layer('l2', upper)] });
    expect(results.map((r) => r.entries)).toEqual([2, 2]);
    expect(await readdir(path.join(root, 'etc'))).toEqual(['os']);
    expect(await readFile(path.join(root, 'etc/os'), 'utf8')).toBe('upper');
  });

  describe('malicious layers stay inside the root', () => {
    it('clamps .. and absolute names', async () => {
      await apply([
        { name: '../../outside/victim', type: 'file', body: 'pwned' },
        { name: '/abs/evil', type: 'file', body: 'abs' },
        { name: 'a/../../../../b', type: 'file', body: 'b' },
      ]);
      await outsideUntouched();
      expect(await readFile(path.join(root, 'outside/victim'), 'utf8')).toBe('pwned');
      expect(await readFile(path.join(root, 'abs/evil'), 'utf8')).toBe('abs');
      expect(await readFile(path.join(root, 'b'), 'utf8')).toBe('b');
    });

    it('writes through an absolute symlink laid by an earlier entry into the root, not the host', async () => {
      await apply([
        { name: 'escape', type: 'symlink', linkname: outside },
        { name: 'escape/victim', type: 'file', body: 'pwned' },
        { name: 'up', type: 'symlink', linkname: '../../../../../../../..' },
        { name: `up${outside}/victim`, type: 'file', body: 'pwned too' },
      ]);
      await outsideUntouched();
      expect(await readFile(path.join(root, outside, 'victim'), 'utf8')).toBe('pwned too');
    });

    it('follows a symlink from an earlier layer inside the root', async () => {
      await apply([{ name: 'lib', type: 'symlink', linkname: `../../..${outside}` }], 'sha256:lower');
      await apply([{ name: 'lib/victim', type: 'file', body: 'pwned' }, { name: 'lib/new/dir/', type: 'directory' }], 'sha256:upper');
      await outsideUntouched();
      expect(await readFile(path.join(root, outside, 'victim'), 'utf8')).toBe('pwned');
    });

    it('replaces a symlink entry instead of writing through it', async () => {
      await apply([
        { name: 'etc/passwd', type: 'file', body: 'root:x:0:0' },
        { name: 'x', type: 'symlink', linkname: '/etc/passwd' },
        { name: 'x', type: 'file', body: 'pwned' },
      ]);
      expect(await readFile(path.join(root, 'etc/passwd'), 'utf8')).toBe('root:x:0:0');
      expect(await readFile(path.join(root, 'x'), 'utf8')).toBe('pwned');
    });

    it('does not write through a hard link to a file', async () => {
      await apply([
        { name: 'etc/passwd', type: 'file', body: 'root:x:0:0' },
        { name: 'h', type: 'link', linkname: 'etc/passwd' },
        { name: 'h', type: 'file', body: 'pwned' },
      ]);
      expect(await readFile(path.join(root, 'etc/passwd'), 'utf8')).toBe('root:x:0:0');
    });

    it('rejects hard links whose target is outside (resolved inside, it does not exist), naming layer and entry', async () => {
      const attempt = apply([{ name: 'steal', type: 'link', linkname: `../../../../..${outside}/victim` }], 'sha256:evil');
      await expect(attempt).rejects.toBeInstanceOf(LayerEntryError);
      await expect(attempt).rejects.toThrow(/layer sha256:evil: entry "steal": hard link target .* does not exist/);
      await apply([{ name: 'door', type: 'symlink', linkname: outside }], 'sha256:door');
      await expect(apply([{ name: 'steal', type: 'link', linkname: 'door/victim' }], 'sha256:through')).rejects.toThrow(/sha256:through.*"steal"/);
      await expect(lstat(path.join(root, 'steal'))).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('rejects a hard link to a directory and a symlink loop, naming the entry', async () => {
      await expect(apply([{ name: 'd/', type: 'directory' }, { name: 'h', type: 'link', linkname: 'd' }], 'sha256:dirlink')).rejects.toThrow(/"h".*directory/);
      await expect(
        apply([{ name: 'a', type: 'symlink', linkname: 'b' }, { name: 'b', type: 'symlink', linkname: 'a' }, { name: 'a/x', type: 'file', body: 'x' }], 'sha256:loop'),
      ).rejects.toThrow(/layer sha256:loop: entry "a\/x": too many levels of symbolic links/);
    });

    it('keeps whiteouts inside the root too', async () => {
      await apply([{ name: 'escape', type: 'symlink', linkname: outside }]);
      await apply([
        { name: '../../outside/.wh.victim', type: 'file' },
        { name: 'escape/.wh.victim', type: 'file' },
        { name: 'escape/.wh..wh..opq', type: 'file' },
      ]);
      await outsideUntouched();
      await expect(apply([{ name: 'x/.wh...', type: 'file' }])).rejects.toThrow(/malformed whiteout/);
    });
  });
});
