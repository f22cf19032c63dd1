export type { Change, ChangeSet } from './change.js';
export type {
  CommonSnapshotOptions,
  ResolvedSnapshotMode,
  SnapshotLogger,
  SnapshotMode,
  Snapshotter,
} from './snapshotter.js';
export { createSnapshotter, probeOverlay, type CreateSnapshotterOptions, type OverlayProbe } from './create-snapshotter.js';
export { WalkingSnapshotter } from './walking-snapshotter.js';
export { OverlaySnapshotter, type OverlayOptions } from './overlay-snapshotter.js';
export { IgnoreList, type IgnoreOptions } from './ignore.js';
export { parseMountInfo, type MountInfoEntry } from './mountinfo.js';
export * from './errors.js';
