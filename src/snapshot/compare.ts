import type { Change } from './change.js';
import type { IgnoreList } from './ignore.js';
import { joinRelative, type FileState, type TreeState } from './tree.js';

/** The walking modes, with kaniko's `--snapshot-mode` meanings. */
export type WalkingMode = 'full' | 'redo' | 'time';

/**
 * Whether a path present in both walks, with the same file type, changed. A type change is always a
 * change (delete + upsert) in every mode: the layer could not reproduce the tree otherwise.
 */
export function stateChanged(mode: WalkingMode, before: FileState, after: FileState): boolean {
  if (before.mtimeNs !== after.mtimeNs) return true;
  if (mode === 'time') return false;
  // `setcap` on a file changes neither its mtime nor its content: BuildKit's walking diff sees it all the same.
  if (before.capability !== after.capability) return true;
  if (before.mode !== after.mode || before.uid !== after.uid || before.gid !== after.gid) return true;
  if (before.size !== after.size || before.rdev !== after.rdev) return true;
  if (mode === 'redo') {
    // A replaced inode (`mv new old`, `cp -p` then rename) is a different file even with equal size and
    // mtime. ctime is deliberately not compared: a no-op `chown -R` or `chmod` moves it on every file and
    // would put the whole tree in the layer, where kaniko's redo mode reports nothing.
    return before.type !== 'dir' && (before.ino !== after.ino || before.dev !== after.dev);
  }
  // full: content and link target decide; metadata-only no-ops are not changes.
  if (after.type === 'file') return before.hash !== after.hash;
  if (after.type === 'symlink') return before.linkTarget !== after.linkTarget;
  return false;
}

/**
 * The changes that turn `before` into `after`, in tar order: a directory before its children, the
 * delete of a path before whatever replaces it there, and one delete for a removed tree.
 */
export function compareTrees(mode: WalkingMode, before: TreeState, after: TreeState, ignore?: IgnoreList): Change[] {
  const changes: Change[] = [];
  const visit = (dir: string, oldNames: readonly string[], newNames: readonly string[]): void => {
    let i = 0;
    let j = 0;
    while (i < oldNames.length || j < newNames.length) {
      const oldName = oldNames[i];
      const newName = newNames[j];
      let name: string;
      let inOld = false;
      let inNew = false;
      if (newName === undefined || (oldName !== undefined && oldName < newName)) {
        name = oldName!;
        inOld = true;
        i++;
      } else if (oldName === undefined || newName < oldName) {
        name = newName;
        inNew = true;
        j++;
      } else {
        name = newName;
        inOld = inNew = true;
        i++;
        j++;
      }
      const rel = joinRelative(dir, name);
      // The baseline may hold paths that became ignored since (a mount point that appeared during the step).
      if (ignore?.has(rel)) continue;
      const was = inOld ? before.entries.get(rel) : undefined;
      const now = inNew ? after.entries.get(rel) : undefined;
      if (now === undefined) {
        if (was !== undefined) changes.push({ kind: 'delete', path: rel });
        continue;
      }
      if (was === undefined) {
        changes.push({ kind: 'upsert', path: rel });
        if (now.type === 'dir') visit(rel, [], after.children.get(rel) ?? []);
        continue;
      }
      if (was.type !== now.type) {
        // The old entry (a whole tree, if it was a directory) goes first; everything below the new one is new.
        changes.push({ kind: 'delete', path: rel }, { kind: 'upsert', path: rel });
        if (now.type === 'dir') visit(rel, [], after.children.get(rel) ?? []);
        continue;
      }
      if (stateChanged(mode, was, now)) changes.push({ kind: 'upsert', path: rel });
      if (now.type === 'dir') visit(rel, before.children.get(rel) ?? [], after.children.get(rel) ?? []);
    }
  };
  visit('', before.children.get('') ?? [], after.children.get('') ?? []);
  return changes;
}
