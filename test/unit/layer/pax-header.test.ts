import { describe, expect, it } from 'vitest';
import { paxEntryWithXattrs, paxRecord } from '../../../src/layer/pax-header.js';

describe('paxRecord', () => {
  it('counts its own length digits, across the boundaries where they grow', () => {
    // " k=" + value + "\n" is 4 + value bytes; the length prefix then makes 1, 2 or 3 digits.
    for (const valueBytes of [0, 4, 5, 6, 93, 94, 95, 96, 992, 993, 994, 995]) {
      const record = paxRecord('k', Buffer.alloc(valueBytes, 0x61));
      const space = record.indexOf(0x20);
      expect(Number(record.subarray(0, space).toString('ascii'))).toBe(record.length);
      expect(record.at(-1)).toBe(0x0a);
    }
    expect(paxRecord('k', Buffer.from('v')).toString()).toBe('6 k=v\n');
    expect(paxRecord('k', Buffer.alloc(4, 0x61)).toString()).toBe('9 k=aaaa\n');
    expect(paxRecord('k', Buffer.alloc(5, 0x61)).toString()).toBe('11 k=aaaaa\n');
  });

  it('keeps the value as raw bytes (NUL, 0x80, 0xff) and the key as UTF-8', () => {
    const record = paxRecord('SCHILY.xattr.user.ü', Buffer.from([0x00, 0x80, 0xff]));
    expect(record.subarray(record.indexOf(0x3d) + 1, -1)).toEqual(Buffer.from([0x00, 0x80, 0xff]));
    expect(record.toString('utf8', record.indexOf(0x20) + 1, record.indexOf(0x3d))).toBe('SCHILY.xattr.user.ü');
  });
});

describe('paxEntryWithXattrs', () => {
  const capability = { name: 'security.capability', value: Buffer.from('0100000200200000000000000000000000000000', 'hex') };

  it('is a whole number of blocks: a valid ustar `x` header, the records sorted by name, zero padding', () => {
    const pax = paxEntryWithXattrs('usr/bin/ping', undefined, [{ name: 'user.z', value: Buffer.from('1') }, capability]);
    expect(pax.name).toBe('usr/bin/ping');
    expect(pax.linkname).toBeUndefined();
    const block = pax.extendedHeader;
    expect(block.length % 512).toBe(0);
    expect(String.fromCharCode(block[156] as number)).toBe('x');
    expect(block.toString('ascii', 257, 265)).toBe('ustar\u000000');
    const size = Number.parseInt(block.toString('ascii', 124, 135), 8);
    const sum = [...block.subarray(0, 512)].reduce((n, byte, i) => n + (i >= 148 && i < 156 ? 0x20 : byte), 0);
    expect(Number.parseInt(block.toString('ascii', 148, 154), 8)).toBe(sum);
    const records = block.subarray(512, 512 + size);
    expect(records.toString('latin1')).toBe(
      `57 SCHILY.xattr.security.capability=${capability.value.toString('latin1')}\n25 SCHILY.xattr.user.z=1\n`,
    );
    expect(block.subarray(512 + size).every((byte) => byte === 0)).toBe(true);
  });

  it('carries the path and link target when the ustar fields cannot, leaving placeholders there', () => {
    const long = `${'d'.repeat(60)}/${'f'.repeat(60)}`;
    const file = paxEntryWithXattrs(long, undefined, [capability]);
    expect(file.name).toBe('PaxHeader');
    expect(file.extendedHeader.toString('latin1')).toContain(`path=${long}\n`);
    const dir = paxEntryWithXattrs('ünï/', undefined, [capability]);
    expect(dir.name).toBe('PaxHeader/');
    expect(dir.extendedHeader.includes(Buffer.from('path=ünï/\n', 'utf8'))).toBe(true);
    const link = paxEntryWithXattrs('l', 't'.repeat(101), [capability]);
    expect(link).toMatchObject({ name: 'l', linkname: 'PaxHeader' });
    expect(link.extendedHeader.toString('latin1')).toContain(`linkpath=${'t'.repeat(101)}\n`);
    const short = paxEntryWithXattrs('l', 'target', [capability]);
    expect(short).toMatchObject({ name: 'l', linkname: 'target' });
    expect(short.extendedHeader.toString('latin1')).not.toMatch(/ (path|linkpath)=/);
  });
});
