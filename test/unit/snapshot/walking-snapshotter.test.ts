import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCommand } from '../../../src/rootfs/command-runner.js';
import { SnapshotStateError, SnapshotWalkError } from '../../../src/snapshot/errors.js';
import { WalkingSnapshotter } from '../../../src/snapshot/walking-snapshotter.js';
import { base, expectedOf, mountInfoWithMountIn, runScenario, scenarios } from './scenarios.js';
import { fixtureMtime, settleTimes } from './tree-fixture.js';

const walkingModes = ['full', 'redo', 'time'] as const;

describe.each(walkingModes)('%s snapshots', (mode) => {
  it.each(scenarios.map((s) => [s.name, s] as const))('%s', async (_name, scenario) => {
    await runScenario(scenario, {
      mode,
      make: (_scratch, root) =>
        new WalkingSnapshotter(mode, {
          kilnDir: `${root}/kiln`,
          ignorePaths: ['/var/cache/apt/'],
          readMountInfo: async () => mountInfoWithMountIn(root),
        }),
    });
  });
});

describe('walking snapshotter protocol', () => {
  let tmp: string;
  let root: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-snap-'));
    root = `${tmp}/root`;
    fs.mkdirSync(root);
    base(root);
    settleTimes(root);
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('diffs each step against the last commit, and everything since prepare without commits (--single-snapshot)', async () => {
    const perStep = new WalkingSnapshotter('redo');
    const single = new WalkingSnapshotter('redo');
    await perStep.prepare(root);
    await single.prepare(root);
    fs.writeFileSync(`${root}/one`, '1');
    expect(expectedOf((await perStep.diff()).changes)).toEqual(['upsert one']);
    await perStep.commit();
    fs.writeFileSync(`${root}/two`, '2');
    expect(expectedOf((await perStep.diff()).changes)).toEqual(['upsert two']);
    expect(expectedOf((await single.diff()).changes)).toEqual(['upsert one', 'upsert two']);
    await perStep.release();
    await single.release();
  });

  it('full mode trusts an unchanged ctime only outside the racy window, and still catches same-size same-mtime edits', async () => {
    // A clock 10 s ahead makes every fixture file "old", so the baseline hashes are reused when ctime holds.
    const clockNs = (): bigint => BigInt(Date.now() + 10_000) * 1_000_000n;
    const snapshotter = new WalkingSnapshotter('full', { clockNs });
    await snapshotter.prepare(root);
    fs.writeFileSync(`${root}/a/f`, 'HELLO\n');
    fs.utimesSync(`${root}/a/f`, fixtureMtime, fixtureMtime);
    const st = fs.statSync(`${root}/plain`);
    fs.chmodSync(`${root}/plain`, st.mode & 0o7777);
    expect(expectedOf((await snapshotter.diff()).changes)).toEqual(['upsert a/f']);
    await snapshotter.commit();
    expect(expectedOf((await snapshotter.diff()).changes)).toEqual([]);
    await snapshotter.release();
  });

  it('refuses diff and commit before prepare', async () => {
    const snapshotter = new WalkingSnapshotter('time');
    await expect(snapshotter.diff()).rejects.toBeInstanceOf(SnapshotStateError);
    await expect(snapshotter.commit()).rejects.toBeInstanceOf(SnapshotStateError);
  });

  it('tracks the real path of a root given through a symlink', async () => {
    fs.symlinkSync(root, `${tmp}/alias`);
    const snapshotter = new WalkingSnapshotter('redo');
    expect(await snapshotter.prepare(`${tmp}/alias`)).toBe(root);
    fs.mkdirSync(`${root}/newdir/sub`, { recursive: true });
    const changeSet = await snapshotter.diff();
    expect(changeSet.root).toBe(root);
    expect(expectedOf(changeSet.changes)).toEqual(['upsert newdir', 'upsert newdir/sub']);
    await snapshotter.release();
  });

  it('reports a file name that is not valid UTF-8 instead of leaving it out', async () => {
    const snapshotter = new WalkingSnapshotter('redo');
    await snapshotter.prepare(root);
    fs.writeFileSync(Buffer.concat([Buffer.from(`${root}/bad-`), Buffer.from([0xff, 0xfe])]), 'x');
    await expect(snapshotter.diff()).rejects.toBeInstanceOf(SnapshotWalkError);
    await snapshotter.release();
  });

  it('hashes large files by streaming them', async () => {
    const big = Buffer.alloc(3 << 20, 7);
    fs.writeFileSync(`${root}/large`, big);
    fs.utimesSync(`${root}/large`, fixtureMtime, fixtureMtime);
    const snapshotter = new WalkingSnapshotter('full');
    await snapshotter.prepare(root);
    big[big.length - 1] = 8;
    fs.writeFileSync(`${root}/large`, big);
    fs.utimesSync(`${root}/large`, fixtureMtime, fixtureMtime);
    expect(expectedOf((await snapshotter.diff()).changes)).toEqual(['upsert large']);
    await snapshotter.release();
  });
  it.each(['full', 'redo'] as const)('%s mode sees a file capability set alone (no mtime, size or content change); time mode does not', async (mode) => {
    fs.writeFileSync(`${root}/tool`, 'binary');
    fs.utimesSync(`${root}/tool`, fixtureMtime, fixtureMtime);
    const setCapability = (): void => {
      const result = spawnSync('setfattr', ['-n', 'security.capability', '-v', '0x0100000202000000000000000000000000000000', `${root}/tool`], { encoding: 'utf8' });
      if (result.status !== 0) throw new Error(`setfattr: ${result.stderr}`);
    };
    for (const [walking, expected] of [[mode, ['upsert tool']], ['time', []]] as const) {
      spawnSync('setfattr', ['-x', 'security.capability', `${root}/tool`]);
      const snapshotter = new WalkingSnapshotter(walking, { xattrRunner: runCommand });
      await snapshotter.prepare(root);
      setCapability();
      expect(expectedOf((await snapshotter.diff()).changes)).toEqual(expected);
      await snapshotter.release();
    }
  });
});
