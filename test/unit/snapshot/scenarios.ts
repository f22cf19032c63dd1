import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import type { Change } from '../../../src/snapshot/change.js';
import type { ResolvedSnapshotMode, Snapshotter } from '../../../src/snapshot/snapshotter.js';
import { applyChangeSet, copyTree, describeTree, fixtureMtime, settleTimes } from './tree-fixture.js';

export interface Scenario {
  name: string;
  /** Builds the tree before the step (times are then settled to fixtureMtime). */
  setup(root: string): void;
  /** The step, run in the directory the snapshotter gave (root or the overlay's merged dir). */
  step(stepRoot: string): void;
  /** Modes that must see the step (the others must report nothing, as kaniko's do). */
  seenBy: readonly ResolvedSnapshotMode[];
  /** Paths (with everything below) the step changes that no snapshot may report. */
  ignored?: readonly string[];
  check?(changes: readonly Change[], mode: ResolvedSnapshotMode): void;
}

const all: readonly ResolvedSnapshotMode[] = ['full', 'redo', 'time', 'overlay'];
const write = (p: string, text: string): void => fs.writeFileSync(p, text);

export const base = (root: string): void => {
  fs.mkdirSync(`${root}/a/b`, { recursive: true });
  write(`${root}/a/f`, 'hello\n');
  write(`${root}/a/b/deep`, 'deep\n');
  fs.mkdirSync(`${root}/big/x/y`, { recursive: true });
  for (let i = 0; i < 5; i++) write(`${root}/big/x/y/f${i}`, `${i}\n`);
  write(`${root}/big/top`, 'top\n');
  fs.mkdirSync(`${root}/d`);
  write(`${root}/d/old1`, '1\n');
  write(`${root}/d/old2`, '2\n');
  write(`${root}/plain`, 'plain\n');
  write(`${root}/target1`, 'one\n');
  write(`${root}/target2`, 'two\n');
  fs.symlinkSync('target1', `${root}/link`);
};

export const expectedOf = (changes: readonly Change[]): string[] => changes.map((c) => `${c.kind} ${c.path}`);

function before(changes: readonly Change[], first: string, second: string): void {
  const list = expectedOf(changes);
  expect(list).toContain(first);
  expect(list).toContain(second);
  expect(list.indexOf(first)).toBeLessThan(list.indexOf(second));
}

export const scenarios: Scenario[] = [
  { name: 'nothing changed', setup: base, step: () => {}, seenBy: [] },
  {
    name: 'added file',
    setup: base,
    step: (r) => write(`${r}/a/b/new`, 'new\n'),
    seenBy: all,
    check: (c) => expect(expectedOf(c)).toContain('upsert a/b/new'),
  },
  {
    name: 'modified file (other size)',
    setup: base,
    step: (r) => write(`${r}/a/f`, 'hello world\n'),
    seenBy: all,
    check: (c) => expect(expectedOf(c)).toContain('upsert a/f'),
  },
  {
    name: 'modified file, same size and same mtime second',
    setup: base,
    step: (r) => {
      write(`${r}/a/f`, 'HELLO\n');
      fs.utimesSync(`${r}/a/f`, fixtureMtime, fixtureMtime);
    },
    seenBy: ['full', 'overlay'],
    check: (c) => expect(expectedOf(c)).toContain('upsert a/f'),
  },
  {
    name: 'deleted file',
    setup: base,
    step: (r) => fs.rmSync(`${r}/plain`),
    seenBy: all,
    check: (c) => expect(expectedOf(c)).toContain('delete plain'),
  },
  {
    name: 'file replaced by a directory',
    setup: base,
    step: (r) => {
      fs.rmSync(`${r}/plain`);
      fs.mkdirSync(`${r}/plain`);
      write(`${r}/plain/inside`, 'in\n');
    },
    seenBy: all,
    check: (c) => {
      before(c, 'delete plain', 'upsert plain');
      before(c, 'upsert plain', 'upsert plain/inside');
    },
  },
  {
    name: 'directory replaced by a file',
    setup: base,
    step: (r) => {
      fs.rmSync(`${r}/big`, { recursive: true });
      write(`${r}/big`, 'now a file\n');
    },
    seenBy: all,
    check: (c) => {
      before(c, 'delete big', 'upsert big');
      expect(expectedOf(c).filter((x) => x.includes('big/'))).toEqual([]);
    },
  },
  {
    name: 'directory replaced by a file and back',
    setup: base,
    step: (r) => {
      fs.rmSync(`${r}/d`, { recursive: true });
      write(`${r}/d`, 'file\n');
      fs.rmSync(`${r}/d`);
      fs.mkdirSync(`${r}/d`);
      write(`${r}/d/fresh`, 'fresh\n');
    },
    seenBy: all,
    check: (c, mode) => {
      expect(expectedOf(c)).toContain('upsert d/fresh');
      if (mode === 'overlay') expect(expectedOf(c)).toContain('opaque d');
      else expect(expectedOf(c)).toEqual(expect.arrayContaining(['delete d/old1', 'delete d/old2']));
    },
  },
  {
    name: 'renamed file',
    setup: base,
    step: (r) => fs.renameSync(`${r}/a/f`, `${r}/a/g`),
    seenBy: all,
    check: (c) => expect(expectedOf(c)).toEqual(expect.arrayContaining(['delete a/f', 'upsert a/g'])),
  },
  {
    name: 'chmod only',
    setup: base,
    step: (r) => fs.chmodSync(`${r}/plain`, 0o4755),
    seenBy: ['full', 'redo', 'overlay'],
    check: (c) => expect(expectedOf(c)).toContain('upsert plain'),
  },
  {
    name: 'chown only',
    setup: base,
    step: (r) => fs.chownSync(`${r}/plain`, 1234, 5678),
    seenBy: ['full', 'redo', 'overlay'],
    check: (c) => expect(expectedOf(c)).toContain('upsert plain'),
  },
  {
    name: 'no-op chown and chmod (ctime moves, nothing else)',
    setup: base,
    step: (r) => {
      const st = fs.statSync(`${r}/plain`);
      fs.chownSync(`${r}/plain`, st.uid, st.gid);
      fs.chmodSync(`${r}/plain`, st.mode & 0o7777);
    },
    // overlay copies the file up, which is a change in its upper dir; walking modes see nothing.
    seenBy: ['overlay'],
  },
  {
    name: 'hard link added',
    setup: base,
    step: (r) => fs.linkSync(`${r}/a/f`, `${r}/a/hard`),
    seenBy: all,
    check: (c) => expect(expectedOf(c)).toContain('upsert a/hard'),
  },
  {
    name: 'symlink retargeted',
    setup: base,
    step: (r) => {
      fs.rmSync(`${r}/link`);
      fs.symlinkSync('target2', `${r}/link`);
    },
    seenBy: all,
    check: (c) => expect(expectedOf(c)).toContain('upsert link'),
  },
  {
    name: 'fifo and device node added (a 1/3 char device is not a whiteout)',
    setup: base,
    step: (r) => {
      execFileSync('mkfifo', [`${r}/a/pipe`]);
      execFileSync('mknod', [`${r}/a/nullish`, 'c', '1', '3']);
    },
    seenBy: all,
    check: (c) => expect(expectedOf(c)).toEqual(expect.arrayContaining(['upsert a/pipe', 'upsert a/nullish'])),
  },
  {
    name: 'deleted directory tree (one delete for the top)',
    setup: base,
    step: (r) => fs.rmSync(`${r}/big`, { recursive: true }),
    seenBy: all,
    check: (c) => {
      expect(c.filter((x) => x.kind === 'delete').map((x) => x.path)).toEqual(['big']);
      expect(expectedOf(c).filter((x) => x.includes('big/'))).toEqual([]);
    },
  },
  {
    name: 'file re-created after deletion',
    setup: base,
    step: (r) => {
      fs.rmSync(`${r}/a/f`);
      write(`${r}/a/f`, 'hello\n');
    },
    seenBy: all,
    check: (c) => expect(expectedOf(c)).toContain('upsert a/f'),
  },
  {
    name: 'changes under ignored paths',
    setup: (r) => {
      base(r);
      for (const d of ['proc', 'sys', 'dev', 'var/run', 'var/cache/apt', 'kiln', 'mnt/my data']) fs.mkdirSync(`${r}/${d}`, { recursive: true });
      write(`${r}/dev/null-ish`, 'x');
    },
    step: (r) => {
      for (const d of ['proc', 'sys', 'dev', 'var/run', 'var/cache/apt', 'kiln', 'mnt/my data']) write(`${r}/${d}/written`, 'x');
      fs.rmSync(`${r}/dev/null-ish`);
      write(`${r}/var/seen`, 'seen\n');
    },
    seenBy: all,
    ignored: ['proc', 'sys', 'dev', 'var/run', 'var/cache/apt', 'kiln', 'mnt/my data'],
    check: (c) => {
      const reported = expectedOf(c);
      expect(reported).toContain('upsert var/seen');
      for (const p of ['proc/', 'sys/', 'dev/', 'var/run/', 'var/cache/apt/', 'kiln/', 'mnt/my data/']) {
        expect(reported.filter((x) => x.includes(p))).toEqual([]);
      }
    },
  },
];

/** The mountinfo a test injects: the real one plus a mount point (with an escaped space) inside the root. */
export function mountInfoWithMountIn(root: string): string {
  const escaped = `${root}/mnt/my data`.replaceAll(' ', '\\040');
  return `${fs.readFileSync('/proc/self/mountinfo', 'utf8')}999 1 0:99 / ${escaped} rw,relatime shared:9 - tmpfs tmpfs rw\n`;
}

export interface ScenarioRun {
  mode: ResolvedSnapshotMode;
  /** Makes the snapshotter for a scratch dir (outside the root) and the root it will track. */
  make(scratch: string, root: string): Snapshotter;
}

/** Runs one scenario: the ChangeSet applied to a copy of the old tree must give the new tree exactly. */
export async function runScenario(scenario: Scenario, run: ScenarioRun): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-snap-'));
  try {
    const root = `${tmp}/root`;
    fs.mkdirSync(root);
    scenario.setup(root);
    settleTimes(root);
    copyTree(root, `${tmp}/old`);
    const snapshotter = run.make(`${tmp}/scratch`, root);
    try {
      const stepRoot = await snapshotter.prepare(root);
      scenario.step(stepRoot);
      const changeSet = await snapshotter.diff();
      assertTarOrder(changeSet.changes);
      const skip = scenario.ignored ?? [];
      for (const change of changeSet.changes) {
        expect(skip.some((s) => change.path === s || change.path.startsWith(`${s}/`)), change.path).toBe(false);
      }
      if (scenario.seenBy.includes(run.mode)) {
        expect(changeSet.changes.length).toBeGreaterThan(0);
        applyChangeSet(`${tmp}/old`, changeSet);
        expect(describeTree(`${tmp}/old`, skip)).toEqual(describeTree(stepRoot, skip));
      } else {
        expect(expectedOf(changeSet.changes)).toEqual([]);
      }
      if (scenario.seenBy.includes(run.mode)) scenario.check?.(changeSet.changes, run.mode);
      await snapshotter.commit();
      expect(expectedOf((await snapshotter.diff()).changes)).toEqual([]);
    } finally {
      await snapshotter.release();
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Parents before children; a path's delete before its upsert; no path twice with the same kind. */
export function assertTarOrder(changes: readonly Change[]): void {
  const seen = new Set<string>();
  const upserted = new Set<string>();
  for (const change of changes) {
    const key = `${change.kind} ${change.path}`;
    expect(seen.has(key), key).toBe(false);
    seen.add(key);
    if (change.kind === 'delete') expect(upserted.has(change.path), `delete after upsert: ${change.path}`).toBe(false);
    if (change.kind === 'upsert') upserted.add(change.path);
    const parent = path.posix.dirname(change.path);
    if (parent !== '.' && change.kind !== 'delete') {
      const parentChanged = changes.some((c) => c.path === parent);
      if (parentChanged) expect(seen.has(`upsert ${parent}`) || seen.has(`delete ${parent}`), `parent of ${change.path}`).toBe(true);
    }
  }
}
