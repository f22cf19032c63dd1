import { describe, expect, it } from 'vitest';
import { InvalidIgnorePathError } from '../../../src/snapshot/errors.js';
import { IgnoreList, imagePathToRelative } from '../../../src/snapshot/ignore.js';

const mountInfo = [
  '22 1 8:1 / / rw - ext4 /dev/vda rw',
  '30 22 0:40 / /build/root rw - overlay overlay rw',
  '31 30 0:41 / /build/root/proc rw - proc proc rw',
  '32 30 0:42 / /build/root/srv/cache\\040dir rw - tmpfs tmpfs rw',
  '33 22 0:43 / /build/rootless rw - tmpfs tmpfs rw',
].join('\n');

describe('IgnoreList', () => {
  it('ignores the defaults, var/run, kiln dir, --ignore-path entries and mount points strictly inside the root', () => {
    const list = IgnoreList.forRoot('/build/root', { kilnDir: '/build/root/kaniko', ignorePaths: ['/opt//cache/', 'tmp/../x'] }, mountInfo);
    expect(list.list()).toEqual(['dev', 'kaniko', 'opt/cache', 'proc', 'srv/cache dir', 'sys', 'var/run', 'x']);
  });

  it('keeps var/run when ignoreVarRun is false, and a kiln dir outside the root adds nothing', () => {
    const list = IgnoreList.forRoot('/build/root', { ignoreVarRun: false, kilnDir: '/kiln' }, '');
    expect(list.list()).toEqual(['dev', 'proc', 'sys']);
  });

  it('matches whole components, with ancestors', () => {
    const list = new IgnoreList(['var/run']);
    expect(list.covers('var/run')).toBe(true);
    expect(list.covers('var/run/x/y')).toBe(true);
    expect(list.covers('var/running')).toBe(false);
    expect(list.covers('var')).toBe(false);
    expect(list.has('var/run/x')).toBe(false);
  });

  it('refuses an ignore path that is the whole root', () => {
    expect(() => IgnoreList.forRoot('/r', { ignorePaths: ['/a/..'] }, '')).toThrow(InvalidIgnorePathError);
    expect(imagePathToRelative('../../etc')).toBe('etc');
  });
});
