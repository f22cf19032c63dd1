import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCommand, type CommandRunner } from '../../src/rootfs/command-runner.js';
import { createSnapshotter, probeOverlay } from '../../src/snapshot/create-snapshotter.js';
import { OverlaySnapshotter } from '../../src/snapshot/overlay-snapshotter.js';
import { base, expectedOf, mountInfoWithMountIn, runScenario, scenarios } from '../unit/snapshot/scenarios.js';
import { settleTimes } from '../unit/snapshot/tree-fixture.js';

const probeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-probe-'));
const probe = await probeOverlay(runCommand, probeDir);
const leftByProbe = fs.readdirSync(probeDir);
fs.rmSync(probeDir, { recursive: true, force: true });

it('probes with a real mount and leaves nothing behind', () => {
  // Where mounting is impossible the overlay suites below do not run; the reason is then in the probe.
  if (!probe.usable) console.warn(`overlay snapshot tests not run: ${probe.reason}`);
  expect(leftByProbe).toEqual([]);
  expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(probeDir);
});

describe.runIf(probe.usable)('overlay snapshots (real mounts)', () => {
  it.each(scenarios.map((s) => [s.name, s] as const))('%s', async (_name, scenario) => {
    await runScenario(scenario, {
      mode: 'overlay',
      make: (scratch, root) =>
        new OverlaySnapshotter({
          scratchDir: scratch,
          run: runCommand,
          kilnDir: `${root}/kiln`,
          ignorePaths: ['/var/cache/apt/'],
          readMountInfo: async () => mountInfoWithMountIn(root),
        }),
    });
  });

  describe('protocol', () => {
    let tmp: string;
    let root: string;
    const started: OverlaySnapshotter[] = [];
    const overlay = (scratchDir: string, run: CommandRunner = runCommand): OverlaySnapshotter => {
      const snapshotter = new OverlaySnapshotter({ scratchDir, run });
      started.push(snapshotter);
      return snapshotter;
    };
    beforeEach(() => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-snap-'));
      root = `${tmp}/root`;
      fs.mkdirSync(root);
      base(root);
      settleTimes(root);
    });
    afterEach(async () => {
      // Unmount before removing files: rm through a live merged dir would be slow and confusing.
      for (const snapshotter of started.splice(0)) await snapshotter.release();
      fs.rmSync(tmp, { recursive: true, force: true });
    });

    it('runs steps on the merged dir, merges each commit down into the root, and unmounts on release', async () => {
      const snapshotter = overlay(`${tmp}/scratch`);
      const merged = await snapshotter.prepare(root);
      expect(merged.startsWith(`${tmp}/scratch/`)).toBe(true);
      fs.writeFileSync(`${merged}/one`, '1');
      fs.rmSync(`${merged}/big`, { recursive: true });
      fs.rmSync(`${merged}/d`, { recursive: true });
      fs.mkdirSync(`${merged}/d`);
      fs.writeFileSync(`${merged}/d/new`, 'n');
      // The lower (root) is untouched until commit.
      expect(fs.existsSync(`${root}/one`)).toBe(false);
      const first = await snapshotter.diff();
      expect(first.root).toBe(merged);
      expect(expectedOf(first.changes)).toEqual(['delete big', 'upsert d', 'opaque d', 'upsert d/new', 'upsert one']);
      await snapshotter.commit();
      expect(fs.readFileSync(`${root}/one`, 'utf8')).toBe('1');
      expect(fs.existsSync(`${root}/big`)).toBe(false);
      expect(fs.readdirSync(`${root}/d`)).toEqual(['new']);

      fs.writeFileSync(`${merged}/two`, '2');
      expect(expectedOf((await snapshotter.diff()).changes)).toEqual(['upsert two']);
      await snapshotter.release();
      expect(fs.readFileSync(`${root}/two`, 'utf8')).toBe('2');
      expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(merged);
      expect(fs.readdirSync(`${tmp}/scratch`)).toEqual([]);
    });

    it('keeps a whole stage in one diff when nothing is committed (--single-snapshot)', async () => {
      const snapshotter = overlay(`${tmp}/scratch`);
      const merged = await snapshotter.prepare(root);
      fs.writeFileSync(`${merged}/one`, '1');
      fs.rmSync(`${merged}/plain`);
      fs.writeFileSync(`${merged}/two`, '2');
      expect(expectedOf((await snapshotter.diff()).changes)).toEqual(['upsert one', 'delete plain', 'upsert two']);
      await snapshotter.release();
      expect(fs.existsSync(`${root}/plain`)).toBe(false);
    });

    it('copies instead of renaming when the scratch dir is on another filesystem', async () => {
      fs.mkdirSync(`${tmp}/scratch`);
      const mounted = await runCommand('mount', ['-t', 'tmpfs', 'kiln-test', `${tmp}/scratch`]);
      expect(mounted.stderr).toBe('');
      try {
        const commands: string[] = [];
        const snapshotter = overlay(`${tmp}/scratch`, (command, args) => {
          commands.push(command);
          return runCommand(command, args);
        });
        const merged = await snapshotter.prepare(root);
        fs.writeFileSync(`${merged}/a/b/new`, 'new');
        fs.linkSync(`${merged}/a/b/new`, `${merged}/a/b/second`);
        fs.symlinkSync('new', `${merged}/a/b/link`);
        fs.rmSync(`${merged}/a/f`);
        await snapshotter.commit();
        expect(fs.readFileSync(`${root}/a/b/new`, 'utf8')).toBe('new');
        expect(fs.readFileSync(`${root}/a/b/second`, 'utf8')).toBe('new');
        expect(fs.readlinkSync(`${root}/a/b/link`)).toBe('new');
        expect(fs.existsSync(`${root}/a/f`)).toBe(false);
        expect(commands.filter((c) => c === 'cp')).toHaveLength(3);
        await snapshotter.release();
      } finally {
        for (const snapshotter of started.splice(0)) await snapshotter.release();
        await runCommand('umount', [`${tmp}/scratch`]);
      }
    });

    it('refuses a scratch dir inside the root', async () => {
      const snapshotter = overlay(`${root}/.kiln`);
      await expect(snapshotter.prepare(root)).rejects.toThrow(/must not contain each other/);
      await snapshotter.release();
    });

    it('auto picks overlay here and logs the choice', async () => {
      const messages: string[] = [];
      const snapshotter = await createSnapshotter({
        mode: 'auto',
        scratchDir: `${tmp}/scratch`,
        run: runCommand,
        logger: { info: (m) => messages.push(m) },
      });
      expect(snapshotter.mode).toBe('overlay');
      expect(messages).toEqual([expect.stringContaining('using overlay')]);
    });
  });
});
