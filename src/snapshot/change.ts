/**
 * What a step changed in a root filesystem: the contract between snapshotters (who find changes)
 * and the layer writer (who turns them into a tar). Paths are relative to the root, `/`-separated,
 * without a leading `/` (`usr/bin/x`).
 */
export type Change =
  /** The path was added or modified: write its current state (file, dir, link, device...). */
  | { kind: 'upsert'; path: string }
  /** The path was removed: write a `.wh.<name>` whiteout. */
  | { kind: 'delete'; path: string }
  /** The directory was replaced wholesale (overlay opaque dir): write `.wh..wh..opq` then its contents. */
  | { kind: 'opaque'; path: string };

export interface ChangeSet {
  /** The root directory the upserted paths are read from when the layer is written. */
  root: string;
  /** In tar order: parents before children; deletions of a path before anything re-created there. */
  changes: Change[];
}
