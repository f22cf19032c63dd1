import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RootResolver, SymlinkLoopError, resolveInRoot, resolveRelativeInRoot } from '../../../src/rootfs/resolve-in-root.js';
import { scratchDir } from './helpers.js';

describe('resolveInRoot', () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let root: string;
  let outside: string;

  beforeEach(async () => {
    scratch = await scratchDir();
    root = path.join(scratch.dir, 'root');
    outside = path.join(scratch.dir, 'outside');
    await mkdir(path.join(root, 'usr', 'lib'), { recursive: true });
    await mkdir(path.join(outside, 'secret'), { recursive: true });
    // A symlink outside the root that would lead back out again if it were ever followed.
    await symlink('/', path.join(outside, 'to-host-root'));
    await writeFile(path.join(root, 'file'), 'x');
  });
  afterEach(async () => scratch.cleanup());

  const rel = (p: string, followFinal = true): Promise<string> => resolveRelativeInRoot(root, p, { followFinal });

  it('clamps .. at the root', async () => {
    expect(await rel('../../../etc/passwd')).toBe('etc/passwd');
    expect(await rel('/usr/../../..')).toBe('');
    expect(await resolveInRoot(root, '..')).toBe(root);
    expect(await rel('./usr//lib/./x')).toBe('usr/lib/x');
  });

  it('takes absolute symlinks from the root, not the host', async () => {
    await symlink(outside, path.join(root, 'abs'));
    await symlink('/usr/lib', path.join(root, 'lib'));
    expect(await rel('lib/libc.so')).toBe('usr/lib/libc.so');
    // The outside directory's absolute path is re-rooted: it names root/<that path>, which does not exist.
    expect(await rel('abs/secret')).toBe(`${outside.slice(1)}/secret`);
  });

  it('takes relative symlinks from their own directory and clamps their ..', async () => {
    await symlink('../../../../../..', path.join(root, 'usr', 'lib', 'up'));
    await symlink('lib', path.join(root, 'usr', 'sibling'));
    await symlink('../lib', path.join(root, 'usr', 'parent-lib'));
    expect(await rel('usr/lib/up/etc/shadow')).toBe('etc/shadow');
    expect(await rel('usr/sibling/x')).toBe('usr/lib/x');
    expect(await rel('usr/parent-lib/x')).toBe('lib/x');
  });

  it('applies .. after a symlink to the link target, as the kernel does', async () => {
    await mkdir(path.join(root, 'a', 'b'), { recursive: true });
    await symlink('/a/b', path.join(root, 'l'));
    expect(await rel('l/../c')).toBe('a/c');
  });

  it('does not follow the last component when asked (lstat view)', async () => {
    await symlink('/etc', path.join(root, 'link'));
    expect(await rel('link', false)).toBe('link');
    expect(await rel('link', true)).toBe('etc');
  });

  it('detects symlink loops with an ELOOP-like error', async () => {
    await symlink('b', path.join(root, 'a'));
    await symlink('a', path.join(root, 'b'));
    await symlink('self', path.join(root, 'self'));
    await expect(resolveInRoot(root, 'a/x')).rejects.toBeInstanceOf(SymlinkLoopError);
    await expect(resolveInRoot(root, 'self')).rejects.toMatchObject({ code: 'ELOOP' });
    // The last component of a loop is fine when it is not followed.
    expect(await rel('self', false)).toBe('self');
  });

  it('appends missing components lexically and re-checks after .. climbs back', async () => {
    await symlink('/usr', path.join(root, 'u'));
    expect(await rel('missing/deeper/x')).toBe('missing/deeper/x');
    expect(await rel('missing/../u/lib')).toBe('usr/lib');
    expect(await rel('file/x')).toBe('file/x');
  });

  it('never follows a chain that re-enters the host through a link outside the root', async () => {
    await symlink(path.join(outside, 'to-host-root'), path.join(root, 'sneaky'));
    const resolved = await resolveInRoot(root, 'sneaky/etc/passwd');
    expect(resolved.startsWith(`${root}/`)).toBe(true);
    expect(resolved).toBe(path.join(root, outside, 'to-host-root', 'etc', 'passwd'));
  });

  it('RootResolver caches directories and sees a new symlink after invalidate', async () => {
    const resolver = new RootResolver(root);
    expect((await resolver.resolveEntry('opt/app/bin')).relative).toBe('opt/app/bin');
    await symlink('/usr', path.join(root, 'opt'));
    resolver.invalidate();
    expect((await resolver.resolveEntry('opt/app/bin')).relative).toBe('usr/app/bin');
    expect((await resolver.resolveEntry('opt/..')).relative).toBe('');
    expect((await resolver.resolveDirectory('opt/../usr/lib')).host).toBe(path.join(root, 'usr', 'lib'));
  });
});
