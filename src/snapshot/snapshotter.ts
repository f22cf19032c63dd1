import type { CommandRunner } from '../rootfs/command-runner.js';
import { readFile } from 'node:fs/promises';
import type { ChangeSet } from './change.js';
import type { IgnoreOptions } from './ignore.js';

/** kaniko's `--snapshot-mode` values plus kiln's `overlay` and `auto`. */
export type SnapshotMode = 'full' | 'redo' | 'time' | 'overlay' | 'auto';
export type ResolvedSnapshotMode = Exclude<SnapshotMode, 'auto'>;

/**
 * Finds what build steps changed under a root. The executor's protocol, per stage:
 *
 *   const stepRoot = await s.prepare(root);   // baseline (or overlay mount); run steps in stepRoot
 *   for each step:                            // (with --single-snapshot: run all steps, then one diff)
 *     run the step with stepRoot as its `/`
 *     const changes = await s.diff();         // what the step changed; root of upserts = changes.root
 *     write the layer from `changes`
 *     await s.commit();                       // the current state becomes the next diff's baseline
 *   await s.release();                        // root holds the final state; stepRoot is gone
 *
 * diff() does not move the baseline, so it may be called again (a retried layer write sees the same
 * changes). commit() adopts the state the last diff() saw (or walks again if there was none).
 *
 * ChangeSet conventions beyond change.ts: an `opaque` change always follows the `upsert` of the same
 * directory (the upsert writes the directory entry, the opaque its `.wh..wh..opq`); a path whose file
 * type changed between directory and non-directory gets `delete` then `upsert`; unchanged parent
 * directories of a changed path are not listed by the walking modes (overlay lists the ones it copied
 * up), so a layer writer that wants parent entries adds them.
 */
export interface Snapshotter {
  readonly mode: ResolvedSnapshotMode;
  /** Starts tracking `root`; returns the directory steps must run in and write to. */
  prepare(root: string): Promise<string>;
  /** Changes since prepare() or the last commit(), in tar order. */
  diff(): Promise<ChangeSet>;
  commit(): Promise<void>;
  /** Stops tracking. Safe to call after a failure, and more than once. */
  release(): Promise<void>;
}

export interface SnapshotLogger {
  info(message: string): void;
}

export interface CommonSnapshotOptions extends IgnoreOptions {
  logger?: SnapshotLogger;
  /** Text of /proc/self/mountinfo; injected so tests can feed a sample. */
  readMountInfo?: () => Promise<string>;
  /** Wall clock in nanoseconds (full mode's racy-file window). */
  clockNs?: () => bigint;
  /** Runs getfattr, so full and redo walks compare file capabilities; without it they are not compared. */
  xattrRunner?: CommandRunner;
}

export const readProcMountInfo = (): Promise<string> => readFile('/proc/self/mountinfo', 'utf8');
export const wallClockNs = (): bigint => BigInt(Date.now()) * 1_000_000n;
