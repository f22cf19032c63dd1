/**
 * In-place isolation's whole pipeline against a root directory of the test's own instead of "/":
 * the base unpacked over it around protected paths (kiln's runtime, the context, a mount point, an
 * --ignore-path), RUN steps started in it through the runtime's setpriv, snapshots walking it,
 * a stage copied out for the stage after it, and --cleanup emptying it. The real thing, in a
 * container's own "/", is test/e2e/executor-in-place.test.ts; RUN --mount there is
 * test/e2e/in-place-mounts.test.ts.
 * RUN commands here use relative paths only: the step's working directory is inside the test root,
 * while its programs (/bin/sh, echo) are the host's.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildResult } from '../../src/build/executor.js';
import { readImageTree } from '../harness/image-tree.js';
import { buildInPlace, startInPlaceFixture, type InPlaceFixture } from '../harness/in-place-build.js';
import { runTool } from '../harness/process.js';

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

describe('in-place isolation over a root directory', () => {
  let fixture: InPlaceFixture;
  let root: string;
  let volume: string;

  beforeAll(async () => {
    fixture = await startInPlaceFixture();
    root = fixture.root;
    // A volume, as a container runtime mounts one: it must be neither unpacked over nor snapshotted.
    volume = path.join(root, 'srv', 'volume');
    await mkdir(volume, { recursive: true });
    await runTool('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'kiln-test-volume', volume]);
    await writeFile(path.join(volume, 'data'), 'volume data\n');
  }, 120_000);
  afterAll(async () => {
    if (volume !== undefined) await runTool('umount', [volume]).catch(() => undefined);
    await fixture?.stop();
  });

  const build = (dockerfile: string, tag: string, flags: string[] = []): Promise<{ result: BuildResult; log: string }> =>
    buildInPlace(fixture, { dockerfile, tag, flags, files: { 'app.txt': 'from the context\n' } });

  it('builds a multi-stage Dockerfile in the root, leaving protected paths alone', async () => {
    const { result, log } = await build(
      [
        'FROM BASE AS first',
        'WORKDIR /w',
        'RUN echo made in the first stage > a.txt && mkdir sub && echo deep > sub/b.txt',
        '',
        'FROM BASE',
        'WORKDIR /out',
        'COPY app.txt .',
        'COPY --from=first /w/a.txt /w/sub/b.txt ./',
        'RUN cat app.txt a.txt > both.txt && rm b.txt && grep CapBnd /proc/self/status > caps.txt',
        '',
      ].join('\n'),
      'multi:1',
    );
    expect(log).toMatch(/isolation: in-place \(auto: namespaces are not available, no CAP_SYS_ADMIN \(test\); running in a container\)/);
    expect(log).toMatch(/over .*root \(in-place\)/);
    expect(log).toMatch(/keeping the stage's files for the stages after it/);

    const tree = await readImageTree(`${fixture.registry.host}/in-place/multi:1`, { registry: fixture.registry, reader: 'layers' });
    expect(result.digest).toMatch(/^sha256:/);
    const hash = (name: string): string | undefined => tree.entries.get(name)?.sha256;
    expect(hash('/out/both.txt')).toBe(sha256('from the context\nmade in the first stage\n'));
    expect(hash('/out/a.txt')).toBe(sha256('made in the first stage\n'));
    expect(tree.entries.has('/out/b.txt')).toBe(false);
    // The step got Docker's default bounding set (this host holds all of them).
    expect(hash('/out/caps.txt')).toBe(sha256('CapBnd:\t00000000a80425fb\n'));
    // The busybox base is all there, and nothing of kiln's, the context's or the volume's.
    expect(tree.entries.get('/bin/busybox')?.type).toBe('file');
    for (const name of tree.entries.keys()) expect(name).not.toMatch(/^\/(kiln|workspace|srv\/volume)(\/|$)/);
    expect(await readFile(path.join(volume, 'data'), 'utf8')).toBe('volume data\n');
    // Without --cleanup the last stage's files stay in the root, beside the protected ones.
    expect(await readFile(path.join(root, 'out', 'both.txt'), 'utf8')).toBe('from the context\nmade in the first stage\n');
  }, 180_000);

  it('empties the root but for protected paths with --cleanup, and a second build works after it', async () => {
    const dockerfile = 'FROM BASE\nRUN echo one > one.txt\n';
    await build(dockerfile, 'clean:1', ['--cleanup', '--ignore-path=/srv/keep']);
    await mkdir(path.join(root, 'srv', 'keep'), { recursive: true });
    await writeFile(path.join(root, 'srv', 'keep', 'k'), 'kept\n');
    const { result } = await build('FROM BASE\nRUN echo two > two.txt\n', 'clean:2', ['--cleanup', '--ignore-path=/srv/keep']);
    expect(result.digest).toMatch(/^sha256:/);
    expect((await readdir(root)).sort()).toEqual(['kiln', 'srv', 'workspace']);
    expect((await readdir(path.join(root, 'srv'))).sort()).toEqual(['keep', 'volume']);
    expect(await readFile(path.join(root, 'srv', 'keep', 'k'), 'utf8')).toBe('kept\n');
    const tree = await readImageTree(`${fixture.registry.host}/in-place/clean:2`, { registry: fixture.registry, reader: 'layers' });
    expect(tree.entries.get('/two.txt')?.sha256).toBe(sha256('two\n'));
    expect(tree.entries.has('/one.txt')).toBe(false);
  }, 180_000);

  it('refuses RUN --network=none and gives the Dockerfile line', async () => {
    await expect(build('FROM BASE\nRUN true\nRUN --network=none true\n', 'network:1')).rejects.toThrow(
      /Dockerfile:3: RUN --network=none needs a network namespace/,
    );
  }, 120_000);
  it('walks the root in every snapshot mode to the same layers: full, redo, time and auto (which picks redo)', async () => {
    // Additions, a removal and a file rewritten with the same size at once: each mode must see them.
    // (Not a chmod alone: time mode, as kaniko's, looks at mtimes only.)
    const dockerfile = [
      'FROM BASE',
      'WORKDIR /data',
      'RUN echo aaaa > same-size.txt && echo gone > gone.txt && mkdir -p deep/er && echo x > deep/er/x',
      'RUN echo bbbb > same-size.txt && rm gone.txt && echo y > deep/er/y',
      '',
    ].join('\n');
    const digests: Record<string, string> = {};
    for (const mode of ['full', 'redo', 'time', 'auto']) {
      const { result, log } = await build(dockerfile, `modes:${mode}`, ['--reproducible', `--snapshot-mode=${mode}`, '--cleanup']);
      digests[mode] = result.digest;
      if (mode === 'auto') expect(log).toMatch(/snapshot mode auto: using redo/);
    }
    expect(new Set(Object.values(digests)).size, JSON.stringify(digests)).toBe(1);
    const tree = await readImageTree(`${fixture.registry.host}/in-place/modes:full`, { registry: fixture.registry, reader: 'layers' });
    expect(tree.entries.get('/data/same-size.txt')?.sha256).toBe(sha256('bbbb\n'));
    expect(tree.entries.has('/data/gone.txt')).toBe(false);
    expect(tree.entries.get('/data/deep/er/y')?.sha256).toBe(sha256('y\n'));
  }, 240_000);
});
