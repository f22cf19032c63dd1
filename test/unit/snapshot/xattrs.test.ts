import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CommandRunner, runCommand } from '../../../src/rootfs/command-runner.js';
import { dumpXattrs, parseXattrDump } from '../../../src/snapshot/xattrs.js';
import { scratchDir } from '../rootfs/helpers.js';

describe('parseXattrDump', () => {
  it('reads hex values, dotted names, escaped names and paths; files without attributes are absent', () => {
    const dump = [
      '# file: /r/bin/ping',
      'security.capability=0x0100000200200000000000000000000000000000',
      'user.a.b.c=0x68656c6c6f',
      '',
      '# file: /r/sp ace/back\\134slash\\012nl',
      'user.we\\075ird=0x00ff80',
      'user.empty=0x',
      'user.old-empty',
      '',
      '# file: /r/\\303\\274n\\303\\257',
      'user.x=0x31',
      '',
    ].join('\n');
    const parsed = parseXattrDump(dump);
    expect([...parsed.keys()]).toEqual(['/r/bin/ping', '/r/sp ace/back\\slash\nnl', '/r/ünï']);
    expect(parsed.get('/r/bin/ping')).toEqual([
      { name: 'security.capability', value: Buffer.from('0100000200200000000000000000000000000000', 'hex') },
      { name: 'user.a.b.c', value: Buffer.from('hello') },
    ]);
    expect(parsed.get('/r/sp ace/back\\slash\nnl')).toEqual([
      { name: 'user.we=ird', value: Buffer.from([0x00, 0xff, 0x80]) },
      { name: 'user.empty', value: Buffer.alloc(0) },
      { name: 'user.old-empty', value: Buffer.alloc(0) },
    ]);
    expect(parsed.get('/r/ünï')).toEqual([{ name: 'user.x', value: Buffer.from('1') }]);
    expect(parseXattrDump('')).toEqual(new Map());
  });

  it('refuses a value that is not hex rather than guessing its bytes', () => {
    expect(() => parseXattrDump('# file: /a\nuser.x="text"\n')).toThrow(/not hex for user\.x/);
  });
});

describe('dumpXattrs with the real getfattr', () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  beforeEach(async () => {
    scratch = await scratchDir();
  });
  afterEach(async () => scratch.cleanup());

  it('reads every path over several command lines, awkward names included, and reports what it could not read', async () => {
    const dir = path.join(scratch.dir, 'd');
    await mkdir(dir);
    // ~2,400 paths of ~170 bytes: several ~96 KiB command lines.
    const names = Array.from({ length: 2400 }, (_, i) => `${'n'.repeat(140)}-${i}`);
    for (const name of names) await writeFile(path.join(dir, name), '');
    const awkward = ['sp ace', 'new\nline', 'back\\slash', 'eq=ual', 'ünï'];
    for (const name of awkward) await writeFile(path.join(dir, name), '');
    const tagged = [...names.filter((_, i) => i % 600 === 0), ...awkward].map((name) => path.join(dir, name));
    for (const file of tagged) execFileSync('setfattr', ['-n', 'user.kiln.tag', '-v', '0x00ff80', file]);
    execFileSync('setfattr', ['-n', 'user.other', '-v', 'x', tagged[0] as string]);

    const lines: number[] = [];
    const recording: CommandRunner = (command, args) => {
      lines.push(args.reduce((n, arg) => n + Buffer.byteLength(arg) + 1, 0));
      return runCommand(command, args);
    };
    const missing = path.join(dir, 'missing');
    const all = [...names, ...awkward].map((name) => path.join(dir, name));
    const dump = await dumpXattrs(recording, [...all, missing], '^user\\.kiln\\.');
    expect(lines.length).toBeGreaterThan(3);
    expect(Math.max(...lines)).toBeLessThan(100 * 1024);
    expect([...dump.byPath.keys()].sort()).toEqual([...tagged].sort());
    for (const file of tagged) expect(dump.byPath.get(file)).toEqual([{ name: 'user.kiln.tag', value: Buffer.from([0x00, 0xff, 0x80]) }]);
    expect(dump.errors).toEqual([expect.stringContaining(`${missing}: No such file or directory`)]);
  });

  it('rejects when getfattr cannot start, as the runner does', async () => {
    const absent: CommandRunner = () => Promise.reject(Object.assign(new Error('spawn getfattr ENOENT'), { code: 'ENOENT' }));
    await expect(dumpXattrs(absent, ['/x'], '.')).rejects.toThrow(/ENOENT/);
    const never: CommandRunner = () => Promise.reject(new Error('must not run'));
    expect(await dumpXattrs(never, [], '.')).toEqual({ byPath: new Map(), errors: [] });
  });
});
