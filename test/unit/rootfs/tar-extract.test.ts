import { describe, expect, it } from 'vitest';
import { rawXattrRecords } from '../../../src/rootfs/tar-extract.js';

const record = (key: string, value: Buffer): Buffer => {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return Buffer.concat([Buffer.from(String(length)), body]);
};

describe('rawXattrRecords', () => {
  it('keeps xattr values byte for byte (as latin1) and ignores other records', () => {
    const capability = Buffer.from('0100000280000000000000000000000000000000', 'hex');
    const pax = Buffer.concat([
      record('path', Buffer.from('usr/bin/newuidmap')),
      record('SCHILY.xattr.security.capability', capability),
      record('SCHILY.xattr.user.newline', Buffer.from('a\nb=c')),
    ]);
    const parsed = rawXattrRecords(pax);
    expect(Object.keys(parsed)).toEqual(['SCHILY.xattr.security.capability', 'SCHILY.xattr.user.newline']);
    expect(Buffer.from(parsed['SCHILY.xattr.security.capability'] ?? '', 'latin1').equals(capability)).toBe(true);
    expect(parsed['SCHILY.xattr.user.newline']).toBe('a\nb=c');
  });

  it('stops at malformed records instead of reading past them', () => {
    expect(rawXattrRecords(Buffer.from('999 SCHILY.xattr.user.x=1\n'))).toEqual({});
    expect(rawXattrRecords(Buffer.from('garbage'))).toEqual({});
    expect(rawXattrRecords(Buffer.from('0 x=\n'))).toEqual({});
  });
});
