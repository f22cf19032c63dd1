/**
 * In-place RUN mounts against a plain directory standing for the root, with no step in between:
 * what prepareInPlaceMounts puts at each target, and what release leaves (the e2e side, through
 * whole builds, is test/e2e/in-place-mounts.test.ts). Caches and staging on /dev/shm (a tmpfs) make
 * the moves cross filesystems.
 */
import { link, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RootPaths } from '../../../src/rootfs/root-paths.js';
import { cacheDirectoryName } from '../../../src/sandbox/cache-mounts.js';
import { prepareInPlaceMounts, utimesSeconds, type InPlaceMountContext } from '../../../src/sandbox/in-place-mounts.js';
import type { RunMountRequest } from '../../../src/sandbox/run-mounts.js';

const isRoot = process.getuid?.() === 0;

/** What libuv makes of the seconds node hands it (uv__fs_to_timespec): truncated, to the microsecond. */
function libuvNanoseconds(seconds: number): bigint {
  const whole = Math.trunc(seconds);
  let nanos = Math.trunc((seconds - whole) * 1e9);
  nanos -= nanos % 1000;
  return BigInt(whole) * 1_000_000_000n + BigInt(nanos);
}

describe('utimesSeconds', () => {
  it('gives back every time in whole microseconds exactly, and a finer one to the microsecond below', () => {
    for (let i = 0; i < 5000; i++) {
      const ns = (1_700_000_000n + BigInt(i * 104_729)) * 1_000_000_000n + BigInt((i * 7_919_993) % 1_000_000) * 1000n;
      expect(libuvNanoseconds(utimesSeconds(ns))).toBe(ns);
    }
    expect(libuvNanoseconds(utimesSeconds(1_700_000_000_123_456_789n))).toBe(1_700_000_000_123_456_000n);
    expect(libuvNanoseconds(utimesSeconds(0n))).toBe(0n);
  });
});

describe.runIf(isRoot)('prepareInPlaceMounts', () => {
  let work: string;
  let shm: string;
  let root: string;
  let context: InPlaceMountContext;
  const warnings: string[] = [];
  const mtimeNs = async (p: string): Promise<bigint> => (await lstat(p, { bigint: true })).mtimeNs;
  /** A time in whole microseconds, as unpacking leaves them. */
  const unpackedTime = 1_600_000_000.25;

  beforeEach(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'kiln-in-place-mounts-'));
    shm = await mkdtemp(path.join('/dev/shm', 'kiln-in-place-mounts-'));
    root = path.join(work, 'root');
    await mkdir(path.join(root, 'etc', 'app'), { recursive: true });
    await writeFile(path.join(root, 'etc', 'app', 'config'), 'from the image\n');
    await link(path.join(root, 'etc', 'app', 'config'), path.join(root, 'etc', 'app', 'hardlink'));
    await symlink('config', path.join(root, 'etc', 'app', 'link'));
    await mkdir(path.join(root, 'kiln'));
    for (const dir of [path.join(root, 'etc', 'app'), path.join(root, 'etc'), root]) await utimes(dir, unpackedTime, unpackedTime);
    await mkdir(path.join(work, 'context', 'src'), { recursive: true });
    await writeFile(path.join(work, 'context', 'src', 'main.c'), 'int main;\n');
    await writeFile(path.join(work, 'token'), 's3cr3t');
    warnings.length = 0;
    context = {
      cacheRoot: path.join(shm, 'cache-mounts'),
      secrets: [
        { id: 'token', src: path.join(work, 'token') },
        { id: 'envtoken', env: 'TOKEN_VARIABLE' },
      ],
      hostEnv: { TOKEN_VARIABLE: 'from-env' },
      scratchDir: shm,
      protect: new RootPaths(['kiln']),
      warn: (message) => warnings.push(message),
    };
  });
  afterEach(async () => {
    await rm(work, { recursive: true, force: true });
    await rm(shm, { recursive: true, force: true });
  });

  it('moves what the image has at a target aside, across filesystems, and puts it back with its parent’s time', async () => {
    expect((await stat(shm)).dev).not.toBe((await stat(work)).dev);
    const before = await mtimeNs(path.join(root, 'etc'));
    const mounts = await prepareInPlaceMounts(root, [{ type: 'tmpfs', target: '/etc/app' }], context);
    expect(await readdir(path.join(root, 'etc', 'app'))).toEqual([]);
    expect((await stat(path.join(root, 'etc', 'app'))).mode & 0o7777).toBe(0o1777);
    await writeFile(path.join(root, 'etc', 'app', 'written'), 'by the step');
    await mounts.release();
    expect((await readdir(path.join(root, 'etc', 'app'))).sort()).toEqual(['config', 'hardlink', 'link']);
    expect(await readFile(path.join(root, 'etc', 'app', 'config'), 'utf8')).toBe('from the image\n');
    expect((await stat(path.join(root, 'etc', 'app', 'config'))).nlink).toBe(2);
    expect(await readlink(path.join(root, 'etc', 'app', 'link'))).toBe('config');
    expect(await mtimeNs(path.join(root, 'etc'))).toBe(before);
    // The staging directory went with what it held.
    expect(await readdir(shm)).toEqual([]);
  });

  it('makes missing mount points for the step and removes them, giving the root its time back', async () => {
    const before = await mtimeNs(root);
    const mounts = await prepareInPlaceMounts(
      root,
      [
        { type: 'bind', target: '/src/code', source: { root: path.join(work, 'context'), path: 'src' }, readonly: true },
        { type: 'secret', id: 'token', target: '/run/secrets/token', required: true },
        { type: 'secret', id: 'envtoken', target: '/etc/app/token', env: 'API_TOKEN', required: true, mode: 0o440, uid: 1000, gid: 1000 },
      ],
      context,
    );
    expect(mounts.env).toEqual({ API_TOKEN: 'from-env' });
    expect(await readFile(path.join(root, 'src', 'code', 'main.c'), 'utf8')).toBe('int main;\n');
    const secret = await stat(path.join(root, 'run', 'secrets', 'token'));
    expect([secret.mode & 0o7777, secret.uid, secret.gid]).toEqual([0o400, 0, 0]);
    expect(await readFile(path.join(root, 'run', 'secrets', 'token'), 'utf8')).toBe('s3cr3t');
    const envSecret = await stat(path.join(root, 'etc', 'app', 'token'));
    expect([envSecret.mode & 0o7777, envSecret.uid, envSecret.gid]).toEqual([0o440, 1000, 1000]);
    await writeFile(path.join(root, 'src', 'code', 'main.c'), 'changed by the step\n');
    await mounts.release();
    expect((await readdir(root)).sort()).toEqual(['etc', 'kiln']);
    expect((await readdir(path.join(root, 'etc', 'app'))).sort()).toEqual(['config', 'hardlink', 'link']);
    expect(await mtimeNs(root)).toBe(before);
    expect(await readFile(path.join(work, 'context', 'src', 'main.c'), 'utf8')).toBe('int main;\n');
  });

  it('keeps a cache’s content from one step to the next, out of the root in between', async () => {
    const cache: RunMountRequest = { type: 'cache', target: '/var/cache/app', id: 'app', sharing: 'locked', readonly: false, mode: 0o750, uid: 1000, gid: 1000 };
    const first = await prepareInPlaceMounts(root, [cache], context);
    const made = await stat(path.join(root, 'var', 'cache', 'app'));
    expect([made.mode & 0o7777, made.uid, made.gid]).toEqual([0o750, 1000, 1000]);
    await writeFile(path.join(root, 'var', 'cache', 'app', 'artifact'), 'built once');
    await first.release();
    expect(await readdir(root)).not.toContain('var');
    const data = path.join(context.cacheRoot ?? '', cacheDirectoryName('app'), 'data');
    expect(await readFile(path.join(data, 'artifact'), 'utf8')).toBe('built once');

    const second = await prepareInPlaceMounts(root, [cache], context);
    expect(await readFile(path.join(root, 'var', 'cache', 'app', 'artifact'), 'utf8')).toBe('built once');
    await expect(lstat(data)).rejects.toThrow(/ENOENT/);
    await second.release();
    expect(await readFile(path.join(data, 'artifact'), 'utf8')).toBe('built once');
  });

  it('discards what a step writes to a readonly cache, and seeds a new cache from its source', async () => {
    const seeded: RunMountRequest = { type: 'cache', target: '/c', id: 'seeded', sharing: 'shared', readonly: true, seed: { root: path.join(work, 'context'), path: '/src' } };
    const mounts = await prepareInPlaceMounts(root, [seeded], context);
    expect(await readFile(path.join(root, 'c', 'main.c'), 'utf8')).toBe('int main;\n');
    await writeFile(path.join(root, 'c', 'main.c'), 'changed');
    await mounts.release();
    expect(await readdir(root)).not.toContain('c');
    expect(await readFile(path.join(context.cacheRoot ?? '', cacheDirectoryName('seeded'), 'data', 'main.c'), 'utf8')).toBe('int main;\n');
  });

  it('refuses what it cannot do before touching the root, and undoes a half-made set of mounts', async () => {
    const tmpfs = (target: string): RunMountRequest => ({ type: 'tmpfs', target });
    await expect(prepareInPlaceMounts(root, [tmpfs('/kiln/x')], context)).rejects.toThrow(/\/kiln\/x is, or holds, a path in-place isolation must leave alone/);
    await expect(prepareInPlaceMounts(root, [tmpfs('/')], context)).rejects.toThrow(/cannot mount over the root directory/);
    await expect(prepareInPlaceMounts(root, [{ type: 'ssh', id: 'default', required: false }], context)).rejects.toThrow(/type=ssh.*not supported by kiln yet/);
    await expect(
      prepareInPlaceMounts(root, [tmpfs('/etc/app'), { type: 'secret', id: 'missing', target: '/run/secrets/missing', required: true }], context),
    ).rejects.toThrow(/secret missing is required by RUN --mount=type=secret but was not given/);
    expect((await readdir(root)).sort()).toEqual(['etc', 'kiln']);
    expect((await readdir(path.join(root, 'etc', 'app'))).sort()).toEqual(['config', 'hardlink', 'link']);
  });

  it('takes more secret files than the chroot sandbox’s descriptors allow', async () => {
    const secrets: RunMountRequest[] = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => ({ type: 'secret', id: 'token', target: `/s/${n}`, required: true }));
    const mounts = await prepareInPlaceMounts(root, secrets, context);
    expect((await readdir(path.join(root, 's'))).length).toBe(8);
    await mounts.release();
    expect(await readdir(root)).not.toContain('s');
  });
});
