// Malicious tar contexts: each must be refused with the offending entry named, and nothing may
// be written outside the extraction directory.
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openBuildContext } from '../../src/context/source.js';
import { extractTarStream } from '../../src/context/tar-source.js';
import { UnsafeTarEntryError } from '../../src/context/types.js';

type Entry = { name: string; type?: 'file' | 'directory' | 'symlink' | 'link' | 'fifo'; linkname?: string; body?: string; mode?: number };

/** A tar stream with exactly these headers (the `tar` command would sanitize the names). */
function archive(entries: Entry[]): Readable {
  const pack = tar.pack();
  for (const e of entries) {
    const header = {
      name: e.name,
      type: e.type ?? 'file',
      mode: e.mode ?? (e.type === 'directory' ? 0o755 : 0o644),
      mtime: new Date(1_700_000_000_000),
      uid: 0,
      gid: 0,
      ...(e.linkname === undefined ? {} : { linkname: e.linkname }),
    };
    if ((e.type ?? 'file') === 'file') pack.entry(header, e.body ?? '');
    else pack.entry(header);
  }
  pack.finalize();
  return Readable.from(pack as unknown as AsyncIterable<Buffer>);
}

let base = '';
let dest = '';
let outside = '';

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'kiln-tar-safety-'));
  dest = join(base, 'dest', 'inner');
  outside = join(base, 'outside');
  await mkdir(dest, { recursive: true });
  await mkdir(outside);
});

afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

async function refused(entries: Entry[], entryName: string, reason: RegExp): Promise<void> {
  const run = extractTarStream(archive(entries), dest, { label: 'test.tar' });
  const err = await run.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UnsafeTarEntryError);
  expect((err as UnsafeTarEntryError).entry).toBe(entryName);
  expect((err as Error).message).toContain(JSON.stringify(entryName));
  expect((err as Error).message).toMatch(reason);
  expect(await readdir(outside)).toEqual([]);
  expect(existsSync(join(base, 'dest', 'x'))).toBe(false);
}

describe('tar context safety', () => {
  it('refuses a ".." entry', async () => {
    await refused([{ name: 'ok.txt' }, { name: '../x', body: 'escaped' }], '../x', /"\.\." component/);
  });

  it('refuses a ".." hidden in the middle of a name', async () => {
    await refused([{ name: 'a/../../x' }], 'a/../../x', /"\.\." component/);
  });

  it('refuses an absolute entry', async () => {
    await refused([{ name: '/etc/x' }], '/etc/x', /absolute/);
  });

  it('refuses writing through a symlink planted earlier in the archive', async () => {
    await refused(
      [
        { name: 'evil', type: 'symlink', linkname: outside },
        { name: 'evil/x', body: 'through the link' },
      ],
      'evil/x',
      /parent "evil" is a symbolic link/,
    );
    // The symlink itself is kept, as a symlink.
    expect(await readlink(join(dest, 'evil'))).toBe(outside);
  });

  it('refuses a relative symlink used as a directory', async () => {
    await refused(
      [
        { name: 'up', type: 'symlink', linkname: '../..' },
        { name: 'up/outside/x', body: 'nope' },
      ],
      'up/outside/x',
      /symbolic link/,
    );
  });

  it('refuses hard links leading outside', async () => {
    const victim = join(base, 'victim');
    await writeFile(victim, 'secret');
    await refused([{ name: 'h', type: 'link', linkname: '../../victim' }], 'h', /outside the build context/);
    await refused([{ name: 'h2', type: 'link', linkname: victim }], 'h2', /absolute/);
    expect((await lstat(victim)).nlink).toBe(1);
    expect(await readdir(dest)).toEqual([]);
  });

  it('replaces a symlink with a file instead of writing through it', async () => {
    await extractTarStream(
      archive([
        { name: 'f', type: 'symlink', linkname: join(outside, 'victim') },
        { name: 'f', body: 'replaced' },
      ]),
      dest,
      { label: 'test.tar' },
    );
    expect((await lstat(join(dest, 'f'))).isFile()).toBe(true);
    expect(await readdir(outside)).toEqual([]);
  });

  it('keeps links, modes, hard links and times; skips device-like entries with a warning', async () => {
    const warnings: string[] = [];
    await extractTarStream(
      archive([
        { name: './' , type: 'directory' },
        { name: './bin/', type: 'directory', mode: 0o700 },
        { name: './bin/tool', body: '#!/bin/sh\n', mode: 0o750 },
        { name: './bin/alias', type: 'link', linkname: 'bin/tool' },
        { name: './etc-link', type: 'symlink', linkname: '/etc' },
        { name: './pipe', type: 'fifo' },
      ]),
      dest,
      { label: 'test.tar', onWarning: (m) => warnings.push(m) },
    );
    expect((await lstat(join(dest, 'bin'))).mode & 0o777).toBe(0o700);
    const tool = await lstat(join(dest, 'bin', 'tool'));
    expect(tool.mode & 0o777).toBe(0o750);
    expect(tool.nlink).toBe(2);
    expect(tool.mtimeMs).toBe(1_700_000_000_000);
    expect((await lstat(join(dest, 'bin'))).mtimeMs).toBe(1_700_000_000_000);
    expect(await readlink(join(dest, 'etc-link'))).toBe('/etc');
    expect(existsSync(join(dest, 'pipe'))).toBe(false);
    expect(warnings).toEqual([expect.stringMatching(/skipping fifo entry "\.\/pipe"/)]);
  });

  it('cleans up the extraction directory when a tar:// context is refused', async () => {
    const file = join(base, 'evil.tar');
    const { createWriteStream } = await import('node:fs');
    const { pipeline } = await import('node:stream/promises');
    await pipeline(archive([{ name: '../../x' }]), createWriteStream(file));
    const scratch = join(base, 'scratch');
    await mkdir(scratch);
    await expect(openBuildContext({ context: `tar://${file}`, tmpDir: scratch })).rejects.toThrow(/refusing tar context entry "\.\.\/\.\.\/x"/);
    expect(await readdir(scratch)).toEqual([]);
  });

  it('rejects a stream that is not a tar archive', async () => {
    const garbage = Readable.from([Buffer.alloc(2048, 7)]);
    await expect(extractTarStream(garbage, dest, { label: 'junk' })).rejects.toThrow(/junk: not a readable tar archive/);
  });
});
