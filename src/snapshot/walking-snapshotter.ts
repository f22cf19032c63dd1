import { realpath } from 'node:fs/promises';
import type { ChangeSet } from './change.js';
import { compareTrees, type WalkingMode } from './compare.js';
import { fillContent } from './content.js';
import { SnapshotStateError } from './errors.js';
import { IgnoreList } from './ignore.js';
import {
  readProcMountInfo,
  wallClockNs,
  type CommonSnapshotOptions,
  type Snapshotter,
} from './snapshotter.js';
import { walkTree, type TreeState } from './tree.js';
import { fileCapabilities } from './xattrs.js';

interface Tracking {
  root: string;
  ignore: IgnoreList;
  baseline: TreeState;
  /** The walk the last diff() made, adopted by commit(). */
  seen?: TreeState;
}

/**
 * full / redo / time: remembers a walk of the root and compares the next walk with it. The root is
 * used in place, so steps run directly in it.
 */
export class WalkingSnapshotter implements Snapshotter {
  private tracking: Tracking | undefined;
  private capabilitiesUnreadable = false;

  constructor(
    readonly mode: WalkingMode,
    private readonly options: CommonSnapshotOptions = {},
  ) {}

  async prepare(root: string): Promise<string> {
    if (this.tracking !== undefined) throw new SnapshotStateError('prepare', 'twice without release()');
    const realRoot = await realpath(root);
    const ignore = await this.ignoreFor(realRoot);
    const baseline = await this.walk(realRoot, ignore, undefined);
    this.tracking = { root: realRoot, ignore, baseline };
    return realRoot;
  }

  async diff(): Promise<ChangeSet> {
    const t = this.requireTracking('diff');
    // Mount points may have appeared since prepare(); paths ignored at either time stay out.
    const ignore = new IgnoreList([...t.ignore.list(), ...(await this.ignoreFor(t.root)).list()]);
    const seen = await this.walk(t.root, ignore, t.baseline);
    t.ignore = ignore;
    t.seen = seen;
    return { root: t.root, changes: compareTrees(this.mode, t.baseline, seen, ignore) };
  }

  async commit(): Promise<void> {
    const t = this.requireTracking('commit');
    t.baseline = t.seen ?? (await this.walk(t.root, t.ignore, t.baseline));
    delete t.seen;
  }

  async release(): Promise<void> {
    this.tracking = undefined;
  }

  private async walk(root: string, ignore: IgnoreList, previous: TreeState | undefined): Promise<TreeState> {
    const tree = await walkTree(root, ignore, this.options.clockNs ?? wallClockNs);
    if (this.mode === 'full') await fillContent(tree, previous);
    if (this.mode !== 'time') await this.fillCapabilities(tree, previous);
    return tree;
  }

  /**
   * Records each regular file's security.capability; once getfattr has failed to start, no more.
   * Setting or removing one changes the file's ctime, so a file whose ctime the previous walk saw
   * keeps the capability read then: only new and touched files are read again.
   */
  private async fillCapabilities(tree: TreeState, previous: TreeState | undefined): Promise<void> {
    const run = this.options.xattrRunner;
    if (run === undefined || this.capabilitiesUnreadable) return;
    const files: string[] = [];
    for (const [relative, state] of tree.entries) {
      if (state.type !== 'file') continue;
      const before = previous?.entries.get(relative);
      if (before !== undefined && before.type === 'file' && before.ctimeNs === state.ctimeNs && before.ino === state.ino) {
        if (before.capability !== undefined) state.capability = before.capability;
        continue;
      }
      files.push(`${tree.root}/${relative}`);
    }
    if (files.length === 0) return;
    let capabilities: Map<string, string>;
    try {
      capabilities = await fileCapabilities(run, files);
    } catch (error) {
      this.capabilitiesUnreadable = true;
      this.options.logger?.info(`file capabilities are not compared (getfattr: ${(error as Error).message}): a setcap alone goes unseen`);
      return;
    }
    const prefix = `${tree.root}/`;
    for (const [file, capability] of capabilities) {
      const state = tree.entries.get(file.slice(prefix.length));
      if (state !== undefined) state.capability = capability;
    }
  }

  private async ignoreFor(root: string): Promise<IgnoreList> {
    const mountInfo = await (this.options.readMountInfo ?? readProcMountInfo)();
    return IgnoreList.forRoot(root, this.options, mountInfo);
  }

  private requireTracking(operation: string): Tracking {
    if (this.tracking === undefined) throw new SnapshotStateError(operation, 'before prepare()');
    return this.tracking;
  }
}
