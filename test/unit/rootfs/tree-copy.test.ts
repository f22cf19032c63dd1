import { execFileSync } from 'node:child_process';
import { chmod, chown, link, lstat, lutimes, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RootPaths } from '../../../src/rootfs/root-paths.js';
import { clearRoot, copyEntryTree, copyTree, moveEntry } from '../../../src/rootfs/tree-copy.js';
import { describeTree, scratchDir } from './helpers.js';

const isRoot = process.getuid?.() === 0;

describe('clearRoot', () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let root: string;
  let outside: string;

  beforeEach(async () => {
    scratch = await scratchDir();
    root = path.join(scratch.dir, 'root');
    outside = path.join(scratch.dir, 'outside');
    await mkdir(path.join(outside, 'dir'), { recursive: true });
    await writeFile(path.join(outside, 'dir', 'victim'), 'untouched');
  });
  afterEach(async () => scratch.cleanup());

  async function lay(files: Record<string, string>): Promise<void> {
    for (const [relative, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(root, relative)), { recursive: true });
      await writeFile(path.join(root, relative), content);
    }
  }

  it('keeps protected files and directories, emptying their ancestors of everything else', async () => {
    await lay({
      'etc/hosts': 'hosts',
      'etc/passwd': 'passwd',
      'etc/ssl/cert': 'cert',
      'kiln/bin/setpriv': 'tool',
      'kiln/lib/ld.so': 'loader',
      'var/run/secrets/token': 'token',
      'var/run/other': 'other',
      'var/lib/dpkg/status': 'status',
      'usr/bin/sh': 'sh',
      kilnish: 'not kiln',
    });
    await clearRoot(root, new RootPaths(['etc/hosts', 'kiln', 'var/run/secrets']));
    expect(await describePaths(root)).toEqual([
      'etc/',
      'etc/hosts',
      'kiln/',
      'kiln/bin/',
      'kiln/bin/setpriv',
      'kiln/lib/',
      'kiln/lib/ld.so',
      'var/',
      'var/run/',
      'var/run/secrets/',
      'var/run/secrets/token',
    ]);
    expect(await readFile(path.join(root, 'etc/hosts'), 'utf8')).toBe('hosts');
    expect(await readFile(path.join(root, 'var/run/secrets/token'), 'utf8')).toBe('token');
  });

  it('removes symlinks to directories outside rather than emptying what they point at', async () => {
    await lay({ 'etc/hosts': 'hosts' });
    // `data` leads outside and holds a protected path by name: it must go, not be walked.
    await symlink(path.join(outside, 'dir'), path.join(root, 'data'));
    await symlink(path.join(outside, 'dir'), path.join(root, 'plain'));
    await symlink('../../outside/dir', path.join(root, 'etc', 'relative'));
    await clearRoot(root, new RootPaths(['etc/hosts', 'data/victim', 'data/keep']));
    expect(await describePaths(root)).toEqual(['etc/', 'etc/hosts']);
    expect(await readdir(path.join(outside, 'dir'))).toEqual(['victim']);
    expect(await readFile(path.join(outside, 'dir', 'victim'), 'utf8')).toBe('untouched');
  });

  it('removes a file standing where a protected path has ancestors', async () => {
    await lay({ var: 'a file, not a directory', 'etc/hosts': 'hosts' });
    await clearRoot(root, new RootPaths(['var/run/secrets', 'etc/hosts']));
    expect(await describePaths(root)).toEqual(['etc/', 'etc/hosts']);
  });
});

describe('copyTree', () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let from: string;
  let to: string;
  let outside: string;

  beforeEach(async () => {
    scratch = await scratchDir();
    from = path.join(scratch.dir, 'from');
    to = path.join(scratch.dir, 'to');
    outside = path.join(scratch.dir, 'outside');
    await mkdir(from);
    await mkdir(outside);
    await writeFile(path.join(outside, 'victim'), 'untouched');
  });
  afterEach(async () => scratch.cleanup());

  const noSkip = { skip: new RootPaths([]), warn: (message: string): never => expect.fail(`unexpected warning: ${message}`) };

  it('keeps owners, modes (setuid too), times, symlinks verbatim and hard links as links', async () => {
    const f = (relative: string): string => path.join(from, relative);
    await mkdir(f('usr/bin'), { recursive: true });
    await mkdir(f('srv/data'), { recursive: true });
    await writeFile(f('usr/bin/su'), 'setuid binary');
    await chown(f('usr/bin/su'), 0, 0);
    await chmod(f('usr/bin/su'), 0o4755);
    await writeFile(f('usr/bin/sgid'), 'setgid, owned');
    await writeFile(f('srv/data/owned'), 'owned');
    if (isRoot) {
      await chown(f('srv/data'), 1234, 5678);
      await chown(f('srv/data/owned'), 1234, 5678);
      await chown(f('usr/bin/sgid'), 1234, 5678);
    }
    await chmod(f('usr/bin/sgid'), 0o2750);
    await chmod(f('srv/data'), 0o750);
    await chmod(f('srv/data/owned'), 0o600);
    await writeFile(f('usr/bin/busybox'), 'bb');
    await link(f('usr/bin/busybox'), f('usr/bin/hard'));
    await link(f('usr/bin/busybox'), f('srv/hard-elsewhere'));
    // Symlinks that would escape, dangle or lead to a directory: copied as they are, never followed.
    await symlink('/etc/passwd', f('usr/bin/absolute'));
    await symlink('busybox', f('usr/bin/sh'));
    await symlink('../../nowhere', f('usr/bin/dangling'));
    await symlink(outside, f('srv/outside-dir'));
    if (isRoot) execFileSync('chown', ['-h', '1234:5678', f('usr/bin/sh')]);
    await lutimes(f('usr/bin/sh'), 1_100_000_000, 1_100_000_000);
    await utimes(f('usr/bin/su'), 1_200_000_000.5, 1_200_000_000.25);
    await utimes(f('usr/bin'), 1_000_000_000, 1_000_000_000);
    await utimes(f('srv/data'), 1_050_000_000, 1_050_000_000);

    await copyTree(from, to, noSkip);

    expect(await describeTree(to)).toEqual(await describeTree(from));
    const su = await stat(path.join(to, 'usr/bin/su'));
    expect(su.mode & 0o7777).toBe(0o4755);
    expect(su.mtimeMs).toBe(1_200_000_000_250);
    expect((await stat(path.join(to, 'usr/bin/sgid'))).mode & 0o7777).toBe(0o2750);
    // Directory times survive the children written into them.
    expect((await stat(path.join(to, 'usr/bin'))).mtimeMs).toBe(1_000_000_000_000);
    expect((await lstat(path.join(to, 'usr/bin/sh'))).mtimeMs).toBe(1_100_000_000_000);
    expect(await readlink(path.join(to, 'usr/bin/absolute'))).toBe('/etc/passwd');
    expect(await readlink(path.join(to, 'srv/outside-dir'))).toBe(outside);
    expect((await lstat(path.join(to, 'srv/outside-dir'))).isSymbolicLink()).toBe(true);
    const busybox = await stat(path.join(to, 'usr/bin/busybox'));
    expect((await stat(path.join(to, 'usr/bin/hard'))).ino).toBe(busybox.ino);
    expect((await stat(path.join(to, 'srv/hard-elsewhere'))).ino).toBe(busybox.ino);
    expect(busybox.ino).not.toBe((await stat(path.join(from, 'usr/bin/busybox'))).ino);
    expect(busybox.nlink).toBe(3);
    if (isRoot) {
      const owned = await stat(path.join(to, 'srv/data/owned'));
      expect([owned.uid, owned.gid, owned.mode & 0o7777]).toEqual([1234, 5678, 0o600]);
      const data = await stat(path.join(to, 'srv/data'));
      expect([data.uid, data.gid, data.mode & 0o7777]).toEqual([1234, 5678, 0o750]);
      const sgid = await stat(path.join(to, 'usr/bin/sgid'));
      expect([sgid.uid, sgid.gid]).toEqual([1234, 5678]);
      const sh = await lstat(path.join(to, 'usr/bin/sh'));
      expect([sh.uid, sh.gid]).toEqual([1234, 5678]);
    }
    expect(await readdir(outside)).toEqual(['victim']);
  });

  it('leaves skipped paths out of the copy, and a protected subtree at the target as it was', async () => {
    await mkdir(path.join(from, 'kiln', 'bin'), { recursive: true });
    await writeFile(path.join(from, 'kiln', 'bin', 'from-source'), 'source');
    await mkdir(path.join(from, 'etc'));
    await writeFile(path.join(from, 'etc', 'hosts'), 'source hosts');
    await writeFile(path.join(from, 'etc', 'passwd'), 'source passwd');
    await writeFile(path.join(from, 'kilnish'), 'not kiln');
    await mkdir(path.join(to, 'kiln'), { recursive: true });
    await writeFile(path.join(to, 'kiln', 'own'), 'kiln state');
    await utimes(path.join(to, 'kiln'), 1_000_000_000, 1_000_000_000);
    await mkdir(path.join(to, 'etc'));
    await writeFile(path.join(to, 'etc', 'hosts'), 'mounted hosts');
    await writeFile(path.join(to, 'etc', 'resolv.conf'), 'mounted resolv.conf');

    await copyTree(from, to, { ...noSkip, skip: new RootPaths(['kiln', 'etc/hosts']) });

    expect(await readdir(path.join(to, 'kiln'))).toEqual(['own']);
    expect(await readFile(path.join(to, 'kiln', 'own'), 'utf8')).toBe('kiln state');
    expect((await stat(path.join(to, 'kiln'))).mtimeMs).toBe(1_000_000_000_000);
    expect(await readFile(path.join(to, 'etc', 'hosts'), 'utf8')).toBe('mounted hosts');
    // Directories are merged into: what the target had stays beside what is copied.
    expect((await readdir(path.join(to, 'etc'))).sort()).toEqual(['hosts', 'passwd', 'resolv.conf']);
    expect(await readFile(path.join(to, 'etc', 'passwd'), 'utf8')).toBe('source passwd');
    expect(await readFile(path.join(to, 'kilnish'), 'utf8')).toBe('not kiln');
  });

  it('replaces what stands in the way, but never a directory holding a skipped path', async () => {
    await mkdir(path.join(from, 'was-file'));
    await writeFile(path.join(from, 'was-file', 'x'), 'x');
    await writeFile(path.join(from, 'was-dir'), 'now a file');
    await writeFile(path.join(from, 'srv'), 'a file over the volume\'s parent');
    await mkdir(path.join(from, 'was-link'));
    await mkdir(to);
    await writeFile(path.join(to, 'was-file'), 'old');
    await mkdir(path.join(to, 'was-dir', 'deep'), { recursive: true });
    await mkdir(path.join(to, 'srv', 'volume'), { recursive: true });
    await writeFile(path.join(to, 'srv', 'volume', 'data'), 'volume data');
    // A link at the target leading outside: replaced by the directory, its target untouched.
    await symlink(outside, path.join(to, 'was-link'));
    const warnings: string[] = [];

    await copyTree(from, to, { skip: new RootPaths(['srv/volume']), warn: (message) => warnings.push(message) });

    expect(await readFile(path.join(to, 'was-file', 'x'), 'utf8')).toBe('x');
    expect(await readFile(path.join(to, 'was-dir'), 'utf8')).toBe('now a file');
    expect((await lstat(path.join(to, 'was-link'))).isDirectory()).toBe(true);
    expect(await readFile(path.join(to, 'srv', 'volume', 'data'), 'utf8')).toBe('volume data');
    expect(warnings).toEqual([expect.stringMatching(/^\/srv: a directory holding mount points .* skipped$/)]);
    expect(await readdir(outside)).toEqual(['victim']);
  });

  it('reports fifos and device nodes through warn and leaves them out', async () => {
    await mkdir(path.join(from, 'run'));
    execFileSync('mkfifo', [path.join(from, 'run', 'pipe')]);
    if (isRoot) execFileSync('mknod', [path.join(from, 'run', 'null'), 'c', '1', '3']);
    await writeFile(path.join(from, 'run', 'file'), 'kept');
    const warnings: string[] = [];

    await copyTree(from, to, { skip: new RootPaths([]), warn: (message) => warnings.push(message) });

    expect(await readdir(path.join(to, 'run'))).toEqual(['file']);
    expect(warnings).toEqual([
      ...(isRoot ? ['/run/null: a device node, fifo or socket cannot be copied without mknod: skipped'] : []),
      '/run/pipe: a device node, fifo or socket cannot be copied without mknod: skipped',
    ]);
  });
});

describe('copyEntryTree and moveEntry', () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  const options = { skip: new RootPaths([]), warn: (message: string): never => expect.fail(`unexpected warning: ${message}`) };

  beforeEach(async () => {
    scratch = await scratchDir();
  });
  afterEach(async () => scratch.cleanup());

  /** A directory with its own owner, mode and time, a file and a pair of hard links in it. */
  async function makeEntry(dir: string): Promise<void> {
    await mkdir(path.join(dir, 'sub'), { recursive: true });
    await writeFile(path.join(dir, 'sub', 'file'), 'content');
    await link(path.join(dir, 'sub', 'file'), path.join(dir, 'linked'));
    await symlink('sub/file', path.join(dir, 'link'));
    if (isRoot) await chown(dir, 1234, 5678);
    await chmod(dir, 0o750);
    await utimes(path.join(dir, 'sub'), 1_100_000_000, 1_100_000_000);
    await utimes(dir, 1_000_000_000, 1_000_000_000);
  }

  it('copies a directory with its own metadata, merging into one already there', async () => {
    const from = path.join(scratch.dir, 'from');
    const to = path.join(scratch.dir, 'to');
    await makeEntry(from);
    await mkdir(to);
    await writeFile(path.join(to, 'already'), 'there');
    await copyEntryTree(from, to, options);
    const { already, ...copied } = await describeTree(to);
    expect(already?.type).toBe('file');
    expect(copied).toEqual(await describeTree(from));
    const top = await stat(to);
    expect([top.mode & 0o7777, top.mtimeMs]).toEqual([0o750, 1_000_000_000_000]);
    if (isRoot) expect([top.uid, top.gid]).toEqual([1234, 5678]);
  });

  it('copies a single file or symlink as it is', async () => {
    const file = path.join(scratch.dir, 'setuid');
    await writeFile(file, 'tool');
    await chmod(file, 0o4755);
    await utimes(file, 1_000_000_000, 1_000_000_000);
    await symlink('/etc/passwd', path.join(scratch.dir, 'link'));
    await copyEntryTree(file, path.join(scratch.dir, 'setuid-copy'), options);
    await copyEntryTree(path.join(scratch.dir, 'link'), path.join(scratch.dir, 'link-copy'), options);
    const copy = await stat(path.join(scratch.dir, 'setuid-copy'));
    expect([copy.mode & 0o7777, copy.mtimeMs]).toEqual([0o4755, 1_000_000_000_000]);
    expect(await readFile(path.join(scratch.dir, 'setuid-copy'), 'utf8')).toBe('tool');
    expect(await readlink(path.join(scratch.dir, 'link-copy'))).toBe('/etc/passwd');
  });

  it('moves by rename on one filesystem: the same inodes', async () => {
    const from = path.join(scratch.dir, 'from');
    await makeEntry(from);
    const inode = (await stat(path.join(from, 'sub', 'file'))).ino;
    const before = await describeTree(from);
    await moveEntry(from, path.join(scratch.dir, 'to'), options);
    expect(await describeTree(path.join(scratch.dir, 'to'))).toEqual(before);
    expect((await stat(path.join(scratch.dir, 'to', 'sub', 'file'))).ino).toBe(inode);
    await expect(lstat(from)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('moves across filesystems by copying and removing, keeping what a copy keeps', async () => {
    // /dev/shm is a tmpfs of its own: rename(2) from there to the scratch directory fails with EXDEV.
    const other = await mkdtemp('/dev/shm/kiln-move-');
    try {
      expect((await stat(other)).dev).not.toBe((await stat(scratch.dir)).dev);
      const from = path.join(other, 'from');
      await makeEntry(from);
      const before = await describeTree(from);
      const to = path.join(scratch.dir, 'to');
      await moveEntry(from, to, options);
      expect(await describeTree(to)).toEqual(before);
      const top = await stat(to);
      expect([top.mode & 0o7777, top.mtimeMs]).toEqual([0o750, 1_000_000_000_000]);
      if (isRoot) expect([top.uid, top.gid]).toEqual([1234, 5678]);
      await expect(lstat(from)).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});

/** Every path below `root`, directories with a trailing slash, sorted. */
async function describePaths(root: string): Promise<string[]> {
  const result: string[] = [];
  async function visit(relative: string): Promise<void> {
    for (const name of await readdir(path.join(root, relative))) {
      const child = relative === '' ? name : `${relative}/${name}`;
      const isDirectory = (await lstat(path.join(root, child))).isDirectory();
      result.push(isDirectory ? `${child}/` : child);
      if (isDirectory) await visit(child);
    }
  }
  await visit('');
  return result.sort();
}
