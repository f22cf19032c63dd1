import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import type { CommandRunner } from '../rootfs/command-runner.js';
import { hostPathInsideRoot } from './ignore.js';
import { overlayFeatureOptions, OverlaySnapshotter } from './overlay-snapshotter.js';
import type { CommonSnapshotOptions, SnapshotMode, Snapshotter } from './snapshotter.js';
import { WalkingSnapshotter } from './walking-snapshotter.js';

export interface CreateSnapshotterOptions extends CommonSnapshotOptions {
  mode: SnapshotMode;
  /** kiln's scratch space for overlay upper/work/merged dirs (outside the root, ideally on its filesystem). */
  scratchDir: string;
  run: CommandRunner;
  /** The root that will be snapshotted, if known: auto avoids overlay when the scratch dir lies inside it (root = `/`). */
  root?: string;
}

export type OverlayProbe = { usable: true } | { usable: false; reason: string };

/**
 * Whether an overlay snapshot can work here: a real mount of a tiny overlay, and getfattr to read
 * opaque directories. Nothing is guessed from capabilities or kernel versions.
 */
export async function probeOverlay(run: CommandRunner, scratchDir: string): Promise<OverlayProbe> {
  await mkdir(scratchDir, { recursive: true });
  const dir = await mkdtemp(path.join(scratchDir, 'probe-'));
  try {
    await Promise.all(['lower', 'upper', 'work', 'merged'].map((d) => mkdir(path.join(dir, d))));
    const options = `lowerdir=${dir}/lower,upperdir=${dir}/upper,workdir=${dir}/work,${overlayFeatureOptions}`;
    const mounted = await runQuietly(run, 'mount', ['-t', 'overlay', 'overlay', '-o', options, `${dir}/merged`]);
    if (mounted !== undefined) return { usable: false, reason: `overlay mount failed: ${mounted}` };
    const unmounted = await runQuietly(run, 'umount', [`${dir}/merged`]);
    if (unmounted !== undefined) return { usable: false, reason: `overlay unmount failed: ${unmounted}` };
    const getfattr = await runQuietly(run, 'getfattr', ['--version']);
    if (getfattr !== undefined) return { usable: false, reason: `getfattr (Debian package "attr") is missing: ${getfattr}` };
    return { usable: true };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs a probe command; returns why it failed, or undefined when it succeeded. */
async function runQuietly(run: CommandRunner, command: string, args: readonly string[]): Promise<string | undefined> {
  try {
    const result = await run(command, args);
    return result.exitCode === 0 ? undefined : result.stderr.trim() || `exit code ${result.exitCode}`;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/** The snapshotter for `--snapshot-mode`; `auto` mounts a probe overlay and falls back to redo, saying why. */
export async function createSnapshotter(options: CreateSnapshotterOptions): Promise<Snapshotter> {
  const { mode } = options;
  if (mode === 'full' || mode === 'redo' || mode === 'time') return new WalkingSnapshotter(mode, options);
  if (mode === 'overlay') return new OverlaySnapshotter(options);
  if (options.root !== undefined && hostPathInsideRoot(path.resolve(options.root), path.resolve(options.scratchDir)) !== undefined) {
    options.logger?.info(`snapshot mode auto: using redo (the scratch dir ${options.scratchDir} lies inside the root ${options.root})`);
    return new WalkingSnapshotter('redo', options);
  }
  const probe = await probeOverlay(options.run, options.scratchDir);
  if (probe.usable) {
    options.logger?.info('snapshot mode auto: using overlay (an overlay mount works here)');
    return new OverlaySnapshotter(options);
  }
  options.logger?.info(`snapshot mode auto: using redo (${probe.reason})`);
  return new WalkingSnapshotter('redo', options);
}
