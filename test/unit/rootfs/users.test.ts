import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseGroup, parsePasswd, resolveUser, resolveUserSpec } from '../../../src/rootfs/users.js';

const passwd = parsePasswd(
  ['root:x:0:0:root:/root:/bin/sh', '# comment', 'app:x:1001:1002:App:/home/app:/bin/sh', 'broken:line', 'svc:x:2000:2000::/srv:/bin/false'].join('\n'),
);
const group = parseGroup(['root:x:0:', 'app:x:1002:', 'audio:x:29:app,svc', 'video:x:44:app', 'staff:x:50:'].join('\n'));

describe('USER resolution', () => {
  it('looks a name up, with its supplementary groups', () => {
    expect(resolveUserSpec('app', passwd, group)).toEqual({ uid: 1001, gid: 1002, groups: [29, 44], home: '/home/app' });
  });

  it('takes an unknown numeric uid as is, with group 0 (BuildKit)', () => {
    expect(resolveUserSpec('4242', passwd, group)).toEqual({ uid: 4242, gid: 0, groups: [], home: '/' });
  });

  it('finds a known numeric uid in passwd', () => {
    expect(resolveUserSpec('2000', passwd, group)).toMatchObject({ uid: 2000, gid: 2000, groups: [29] });
  });

  it('uses an explicit group by name or number, without supplementary groups', () => {
    expect(resolveUserSpec('app:staff', passwd, group)).toEqual({ uid: 1001, gid: 50, groups: [], home: '/home/app' });
    expect(resolveUserSpec('4242:77', passwd, group)).toEqual({ uid: 4242, gid: 77, groups: [], home: '/' });
  });

  it('explains unknown names', () => {
    expect(() => resolveUserSpec('nobody-here', passwd, group)).toThrow('unable to find user nobody-here: no matching entries in passwd file');
    expect(() => resolveUserSpec('app:wheel', passwd, group)).toThrow('unable to find group wheel: no matching entries in group file');
    expect(() => resolveUserSpec(':1', passwd, group)).toThrow(/empty user name/);
  });

  it("reads the root's own files, following its symlinks inside the root only", async () => {
    const root = await mkdtemp(join(tmpdir(), 'kiln-users-'));
    try {
      await mkdir(join(root, 'data'), { recursive: true });
      await mkdir(join(root, 'etc'));
      await writeFile(join(root, 'data/passwd'), 'app:x:7:8::/:/bin/sh\n');
      await symlink('/data/passwd', join(root, 'etc/passwd'));
      await symlink('/etc/group', join(root, 'etc/group.host'));
      expect(await resolveUser(root, 'app')).toEqual({ uid: 7, gid: 8, groups: [], home: '/' });
      expect(await resolveUser(root, '5')).toEqual({ uid: 5, gid: 0, groups: [], home: '/' });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
