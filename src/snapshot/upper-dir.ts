import fs from 'node:fs';
import { SnapshotWalkError } from './errors.js';
import { TimeSlicer, joinRelative } from './tree.js';

export type UpperEntryKind = 'whiteout' | 'dir' | 'other';

export interface UpperEntry {
  path: string;
  kind: UpperEntryKind;
}

/**
 * Lists an overlay upper directory in pre-order (a directory before its children, names sorted).
 * overlayfs marks a deleted lower path with a character device 0/0 (a "whiteout").
 */
export async function listUpperDir(upper: string): Promise<UpperEntry[]> {
  const entries: UpperEntry[] = [];
  const slicer = new TimeSlicer();
  const visit = async (dir: string): Promise<void> => {
    let dirents: fs.Dirent[];
    try {
      dirents = fs.readdirSync(dir === '' ? upper : `${upper}/${dir}`, { withFileTypes: true });
    } catch (error) {
      throw new SnapshotWalkError(upper, dir, error);
    }
    dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const dirent of dirents) {
      const rel = joinRelative(dir, dirent.name);
      if (dirent.isDirectory()) {
        entries.push({ path: rel, kind: 'dir' });
        await visit(rel);
      } else if (dirent.isCharacterDevice() && isWhiteout(`${upper}/${rel}`)) {
        entries.push({ path: rel, kind: 'whiteout' });
      } else {
        entries.push({ path: rel, kind: 'other' });
      }
    }
    await slicer.maybeYield();
  };
  await visit('');
  return entries;
}

function isWhiteout(absPath: string): boolean {
  return fs.lstatSync(absPath, { bigint: true }).rdev === 0n;
}
