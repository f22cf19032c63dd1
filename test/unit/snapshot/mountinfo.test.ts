import { describe, expect, it } from 'vitest';
import { decodeOctalEscapes, parseMountInfo } from '../../../src/snapshot/mountinfo.js';

const sample = [
  '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw',
  '23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw',
  '40 22 0:35 / /work/root/mnt/my\\040data rw,relatime shared:20 master:3 - tmpfs my\\011tmp rw,size=10k',
  '41 22 0:36 /sub\\134dir /work/root/back\\134slash rw - ext4 /dev/vdb rw',
  '42 22 0:37 / /work/root/new\\012line rw - tmpfs tmpfs rw',
  '43 22 0:38 / /work/root/caf\\303\\251 rw - tmpfs tmpfs rw',
  'garbage line without separator',
  '',
].join('\n');

describe('mountinfo', () => {
  it('parses mount points with optional fields and octal escapes', () => {
    const entries = parseMountInfo(sample);
    expect(entries.map((e) => e.mountPoint)).toEqual([
      '/',
      '/proc',
      '/work/root/mnt/my data',
      '/work/root/back\\slash',
      '/work/root/new\nline',
      '/work/root/café',
    ]);
    expect(entries[2]).toEqual({
      mountId: 40,
      parentId: 22,
      root: '/',
      mountPoint: '/work/root/mnt/my data',
      fsType: 'tmpfs',
      source: 'my\ttmp',
    });
    expect(entries[3]?.root).toBe('/sub\\dir');
  });

  it('leaves text without escapes, and backslashes not followed by three octal digits, alone', () => {
    expect(decodeOctalEscapes('/plain/path')).toBe('/plain/path');
    expect(decodeOctalEscapes('a\\9b\\04')).toBe('a\\9b\\04');
  });
});
