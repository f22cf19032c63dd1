import path from 'node:path';
import type { Change, ChangeSet } from '../../snapshot/change.js';

/**
 * The paths one COPY/ADD wrote, in the order written (parents before children), each once: the
 * executor turns them into the layer without scanning the root. Existing directories a write
 * went through are listed too, as a diff of the root would list them (their mtime changed).
 */
export class ChangeRecorder {
  private readonly seen = new Set<string>();
  private readonly order: Change[] = [];

  constructor(readonly root: string) {}

  /** Records a root-relative path (`''`, the root itself, is never part of a layer). */
  record(relative: string): void {
    if (relative === '' || this.seen.has(relative)) return;
    this.seen.add(relative);
    this.order.push({ kind: 'upsert', path: relative });
  }

  /** Records every ancestor directory of `relative`, outermost first. */
  recordAncestors(relative: string): void {
    const parts = relative.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) this.record(parts.slice(0, i).join('/'));
  }

  /** The host path of a root-relative path. */
  host(relative: string): string {
    return relative === '' ? this.root : path.join(this.root, relative);
  }

  changeSet(): ChangeSet {
    return { root: this.root, changes: [...this.order] };
  }
}

/** Joins root-relative path parts (`''` is the root). */
export function joinRelative(parent: string, name: string): string {
  return parent === '' ? name : `${parent}/${name}`;
}
