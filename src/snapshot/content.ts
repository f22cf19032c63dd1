import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { open } from 'node:fs/promises';
import { SnapshotWalkError } from './errors.js';
import { TimeSlicer, type FileState, type TreeState } from './tree.js';

/**
 * A file whose ctime lies this close to (or after) the start of the walk that recorded it is "racy"
 * (the term is git's): a later write in the same clock tick could leave ctime unchanged, so its content
 * is hashed again instead of trusted. Two seconds covers coarse kernel clocks and filesystems that keep
 * whole seconds.
 */
export const racyWindowNs = 2_000_000_000n;

/** Files up to this size are hashed with synchronous reads into one buffer; larger ones are streamed. */
const smallFileBytes = 1 << 20;
const largeFileConcurrency = 4;

export interface ContentStats {
  hashed: number;
  reused: number;
}

/**
 * Fills `hash` (regular files) and `linkTarget` (symlinks) for full mode. A value from the previous
 * walk is reused when the inode, ctime, size and mtime are unchanged and the file was not racy then:
 * the kernel moves ctime on every write, chmod, chown and link, and a program cannot set it, so an
 * unchanged ctime proves unchanged content. Everything else is read, so the cost of a diff follows
 * what changed, while content changes that keep size and mtime are still caught.
 */
export async function fillContent(next: TreeState, previous: TreeState | undefined): Promise<ContentStats> {
  const stats: ContentStats = { hashed: 0, reused: 0 };
  const trustBefore = previous === undefined ? undefined : previous.startedAtNs - racyWindowNs;
  const small: Array<[string, FileState]> = [];
  const large: Array<[string, FileState]> = [];
  for (const [rel, state] of next.entries) {
    if (state.type !== 'file' && state.type !== 'symlink') continue;
    const before = previous?.entries.get(rel);
    if (before !== undefined && trustBefore !== undefined && unchangedSince(before, state, trustBefore)) {
      if (state.type === 'file') state.hash = before.hash;
      else state.linkTarget = before.linkTarget;
      stats.reused++;
      continue;
    }
    stats.hashed++;
    if (state.type === 'symlink') {
      state.linkTarget = readLink(next.root, rel);
    } else if (state.size <= smallFileBytes) {
      small.push([rel, state]);
    } else {
      large.push([rel, state]);
    }
  }
  const buffer = Buffer.allocUnsafe(smallFileBytes);
  const slicer = new TimeSlicer();
  for (const [rel, state] of small) {
    state.hash = hashSmallFile(next.root, rel, buffer);
    await slicer.maybeYield();
  }
  let nextLarge = 0;
  const worker = async (): Promise<void> => {
    while (nextLarge < large.length) {
      const [rel, state] = large[nextLarge++]!;
      state.hash = await hashLargeFile(next.root, rel);
    }
  };
  await Promise.all(Array.from({ length: Math.min(largeFileConcurrency, large.length) }, worker));
  return stats;
}

function unchangedSince(before: FileState, now: FileState, trustBefore: bigint): boolean {
  return (
    before.type === now.type &&
    before.ino === now.ino &&
    before.dev === now.dev &&
    before.ctimeNs === now.ctimeNs &&
    before.size === now.size &&
    before.mtimeNs === now.mtimeNs &&
    before.ctimeNs < trustBefore &&
    (now.type === 'file' ? before.hash !== undefined : before.linkTarget !== undefined)
  );
}

function readLink(root: string, rel: string): string {
  try {
    return fs.readlinkSync(`${root}/${rel}`);
  } catch (error) {
    throw new SnapshotWalkError(root, rel, error);
  }
}

function hashSmallFile(root: string, rel: string, buffer: Buffer): string {
  const hash = createHash('sha256');
  let fd: number | undefined;
  try {
    fd = fs.openSync(`${root}/${rel}`, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    for (;;) {
      const n = fs.readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      hash.update(buffer.subarray(0, n));
    }
  } catch (error) {
    throw new SnapshotWalkError(root, rel, error);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  return hash.digest('hex');
}

async function hashLargeFile(root: string, rel: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    // O_NOFOLLOW: a path the walk saw as a regular file must not be read through a symlink swapped in.
    const handle = await open(`${root}/${rel}`, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    for await (const chunk of handle.createReadStream()) hash.update(chunk as Buffer);
  } catch (error) {
    throw new SnapshotWalkError(root, rel, error);
  }
  return hash.digest('hex');
}
