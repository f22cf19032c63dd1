/**
 * Snapshot cost after a one-file change, per mode, against a `find -printf` stat walk of the same root
 * (run in this same invocation), and overlay's diff on a 10k vs a 100k-file root.
 *
 *   npx tsx bench/snapshot.ts [files=100000]
 *
 * Needs root for the overlay part (mount); without it the overlay rows say why they are missing.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCommand } from '../src/rootfs/command-runner.js';
import { racyWindowNs } from '../src/snapshot/content.js';
import { probeOverlay } from '../src/snapshot/create-snapshotter.js';
import { OverlaySnapshotter } from '../src/snapshot/overlay-snapshotter.js';
import type { Snapshotter } from '../src/snapshot/snapshotter.js';
import { WalkingSnapshotter } from '../src/snapshot/walking-snapshotter.js';

const files = Number(process.argv[2] ?? 100_000);
const repeats = 3;

function makeRoot(root: string, count: number): void {
  let made = 0;
  for (let a = 0; made < count; a++) {
    for (let b = 0; b < 10 && made < count; b++) {
      const dir = `${root}/usr${a}/lib${b}`;
      fs.mkdirSync(dir, { recursive: true });
      for (let f = 0; f < 100 && made < count; f++, made++) fs.writeFileSync(`${dir}/file${f}.so`, `content of file ${made}\n`.repeat(1 + (made % 7)));
    }
  }
}

function findWalk(root: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn('find', [root, '-printf', '%T@ %s %m %U %G %p\n'], { stdio: ['ignore', fs.openSync('/dev/null', 'w'), 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(performance.now() - start) : reject(new Error(`find exited ${code}`))));
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number): string => `${x.toFixed(1)} ms`;

interface Timing {
  prepare: number;
  diff: number;
  commit: number;
  changes: number;
}

/** prepare, change one file, diff, commit: the per-step cycle the executor runs. */
async function cycle(snapshotter: Snapshotter, root: string, round: number): Promise<Timing> {
  let t = performance.now();
  const stepRoot = await snapshotter.prepare(root);
  const prepare = performance.now() - t;
  // Same size, new content: the change every mode but time/redo-with-same-mtime can see.
  fs.writeFileSync(`${stepRoot}/usr0/lib4/file50.so`, `CHANGED ${round} ${'x'.repeat(40)}\n`);
  t = performance.now();
  const changeSet = await snapshotter.diff();
  const diff = performance.now() - t;
  t = performance.now();
  await snapshotter.commit();
  const commit = performance.now() - t;
  await snapshotter.release();
  return { prepare, diff, commit, changes: changeSet.changes.length };
}

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-bench-snap-'));
  try {
    const big = `${tmp}/root-big`;
    const small = `${tmp}/root-small`;
    let t = performance.now();
    makeRoot(big, files);
    makeRoot(small, Math.round(files / 10));
    console.log(`roots: ${files} and ${Math.round(files / 10)} files, made in ${ms(performance.now() - t)}`);
    // Past full mode's racy window, so the numbers show the steady state (files just written are re-hashed).
    await sleep(Number(racyWindowNs / 1_000_000n) + 100);

    await findWalk(big); // warm the dentry cache the same way for everyone
    // find runs right before each mode, so a machine whose load changes during the run still gives fair ratios.
    const findMedian = async (): Promise<number> => {
      const times: number[] = [];
      for (let i = 0; i < repeats; i++) times.push(await findWalk(big));
      return median(times);
    };
    console.log(`medians of ${repeats}; find = \`find ROOT -printf '%T@ %s %m %U %G %p\\n'\` on the ${files}-file root`);
    console.log('');
    console.log('mode       find         prepare      diff         commit       diff/find  changes');
    let find = 0;
    // `+caps`: as builds run them, reading file capabilities with getfattr on every walk.
    const walking = [
      ['time', () => new WalkingSnapshotter('time')],
      ['redo', () => new WalkingSnapshotter('redo')],
      ['full', () => new WalkingSnapshotter('full')],
      ['redo+caps', () => new WalkingSnapshotter('redo', { xattrRunner: runCommand })],
      ['full+caps', () => new WalkingSnapshotter('full', { xattrRunner: runCommand })],
    ] as const;
    for (const [mode, make] of walking) {
      find = await findMedian();
      const runs: Timing[] = [];
      for (let i = 0; i < repeats; i++) runs.push(await cycle(make(), big, i));
      const diff = median(runs.map((r) => r.diff));
      console.log(
        `${mode.padEnd(10)} ${ms(find).padEnd(12)} ${ms(median(runs.map((r) => r.prepare))).padEnd(12)} ${ms(diff).padEnd(12)} ${ms(median(runs.map((r) => r.commit))).padEnd(12)} ${(diff / find).toFixed(2).padEnd(10)} ${runs[0]!.changes}`,
      );
    }

    const scratch = `${tmp}/scratch`;
    const probe = await probeOverlay(runCommand, scratch);
    if (!probe.usable) {
      console.log(`overlay: not measured (${probe.reason})`);
      return;
    }
    for (const [label, root] of [[`overlay ${Math.round(files / 10)}`, small], [`overlay ${files}`, big]] as const) {
      const runs: Timing[] = [];
      for (let i = 0; i < repeats; i++) runs.push(await cycle(new OverlaySnapshotter({ scratchDir: scratch, run: runCommand }), root, i));
      const diff = median(runs.map((r) => r.diff));
      console.log(
        `${label.padEnd(8)} ${ms(find).padEnd(12)} ${ms(median(runs.map((r) => r.prepare))).padEnd(12)} ${ms(diff).padEnd(12)} ${ms(median(runs.map((r) => r.commit))).padEnd(12)} ${(diff / find).toFixed(3).padEnd(10)} ${runs[0]!.changes}`,
      );
    }
    console.log('(overlay: prepare = mount; commit = unmount, merge down, remount; ratio against the 100k-file root\'s last find)');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
