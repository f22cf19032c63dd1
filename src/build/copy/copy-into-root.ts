/**
 * One COPY or ADD, executed into a root directory with BuildKit's semantics. The executor calls
 * {@link copyIntoRoot} once per instruction and writes the returned ChangeSet as the layer: the
 * paths are exactly those this step wrote (parents it created and directories it wrote into
 * included), in tar order, so no scan of the root is needed.
 *
 * `--link` is executed as a plain copy into the root: the files written and their metadata are the
 * same; what BuildKit gains from it (a layer independent of the base, rebased without re-running)
 * is a cache property, not a filesystem one.
 */
import { chmod, lstat, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Dispatcher } from 'undici';
import type { IgnoreMatcher } from '../../context/dockerignore.js';
import type { LayerXattrReader } from '../../layer/layer-xattrs.js';
import { compileCopyExcludes } from '../../context/copy-sources.js';
import { GlobSyntaxError } from '../../context/go-path.js';
import type { AddInstruction, CopyInstruction } from '../../dockerfile/instructions.js';
import { isGitSource } from '../../dockerfile/instructions.js';
import { type CommandRunner, runCommand } from '../../rootfs/command-runner.js';
import type { CompressionEnv } from '../../rootfs/decompress.js';
import { resolveRelativeInRoot } from '../../rootfs/resolve-in-root.js';
import type { ChangeSet } from '../../snapshot/change.js';
import { extractArchive, isArchiveFile } from './add-archive.js';
import { fetchGitSource, type GitSourceOptions } from './add-git.js';
import { downloadUrl, isHttpSource } from './add-url.js';
import { ChangeRecorder, joinRelative } from './change-recorder.js';
import { compileFileMode } from './chmod.js';
import { resolveChown } from './chown.js';
import { applyMetadata, type CopyContext, copyEntry, Limiter, type Owner } from './copy-tree.js';
import { copyCarriedXattrs } from './copy-xattrs.js';
import { type Destination, destinationOf, ensureDirectory, resolveDestinationPath } from './destination.js';
import { CopyError, type InstructionSite, SourceNotFoundError } from './errors.js';
import { contextSourceTree, followSource, matchSource, normalizeSource, rootSourceTree, splitWildcards, type SourceMatch, type SourceTree } from './select-sources.js';

export interface CopyIntoRootOptions {
  /** Already expanded (dockerfile/expand.ts). */
  instruction: CopyInstruction | AddInstruction;
  /** The build context directory, or another stage's / an image's root for `COPY --from`. */
  sourceRoot: string;
  /**
   * `context` (default): owners reset to 0:0, `ignore` applies; `root` (`--from`): owners kept.
   */
  sourceKind?: 'context' | 'root';
  /** The context's `.dockerignore`. */
  ignore?: IgnoreMatcher;
  /**
   * A source tree made once by the caller ({@link contextSourceTree} walks the context to apply
   * `.dockerignore`; a build with many COPY steps can reuse it). Overrides the three above.
   */
  sourceTree?: SourceTree;
  /** The root being built; nothing outside it is ever written. */
  destRoot: string;
  /** The stage's WORKDIR (absolute image path); relative destinations start here. */
  workdir: string;
  /** Temporary files (downloads, heredocs, git checkouts) go under here; default os.tmpdir(). */
  scratchDir?: string;
  /** For ADD of URLs. */
  dispatcher?: Dispatcher;
  /** For ADD of git repositories. */
  git?: GitSourceOptions;
  /** Makes device nodes (mknod) and sets extended attributes (setfattr); default: child_process. */
  runner?: CommandRunner;
  /**
   * With `sourceKind: 'root'`: reads the sources' extended attributes that layers carry, to keep
   * them on the copies (without it, copies have none).
   */
  xattrs?: LayerXattrReader;
  /** Told what could not be kept (an extended attribute setfattr refused); default: nowhere. */
  warn?: (message: string) => void;
  compressionEnv?: CompressionEnv;
}

export interface CopyResult {
  /** What to write as the layer. */
  changes: ChangeSet;
  /** How many top-level items (matches, URLs, repositories, heredocs) were copied. */
  items: number;
}

/** A source already located, ready to be written. */
type Item =
  | { kind: 'local'; tree: SourceTree; match: SourceMatch; source: string }
  | { kind: 'url'; url: string }
  | { kind: 'git'; url: string }
  | { kind: 'heredoc'; name: string; content: string };

export async function copyIntoRoot(options: CopyIntoRootOptions): Promise<CopyResult> {
  const { instruction } = options;
  const site: InstructionSite = { keyword: instruction.kind === 'add' ? 'ADD' : 'COPY', line: instruction.location.startLine };
  const isAdd = instruction.kind === 'add';
  const tree =
    options.sourceTree ??
    (options.sourceKind === 'root' ? rootSourceTree(options.sourceRoot) : await contextSourceTree(options.sourceRoot, options.ignore));
  const recorder = new ChangeRecorder(options.destRoot);
  const chown = instruction.chown === undefined || instruction.chown === '' ? undefined : await resolveChown(site, instruction.chown, options.destRoot);
  const ctx: CopyContext = {
    site,
    recorder,
    hardlinks: new Map(),
    limiter: new Limiter(16),
    runner: options.runner ?? runCommand,
    ...(options.sourceKind === 'root' && options.xattrs !== undefined ? { xattrCopies: [] } : {}),
    ...(chown === undefined ? {} : { chown }),
    ...(instruction.mode === undefined ? {} : { mode: compileFileMode(instruction.mode) }),
    ...(instruction.excludes.length === 0 ? {} : { excludes: compileCopyExcludes(instruction.excludes) }),
  };
  const parents = instruction.kind === 'copy' && instruction.parents;
  const destination = destinationOf(instruction.destination, options.workdir);
  const items = await locateSources(site, instruction, tree, parents);
  // BuildKit (unlike the classic builder's "no source files were specified") lets wildcards that
  // match nothing make a step that copies nothing: no layer, and the destination is not created.
  if (items.length === 0) return { changes: recorder.changeSet(), items: 0 };
  const resolved = await resolveDestinationPath(options.destRoot, destination.imagePath);
  if (items.length > 1 && !parents && !destination.isDirectory && resolved.kind !== 'directory') {
    throw new CopyError(site, `When using ${site.keyword} with more than one source file, the destination must be a directory and end with a /`);
  }
  recorder.recordAncestors(resolved.relative);
  const createdOwner: Owner = chown ?? { uid: 0, gid: 0 };
  const scratch = await mkdtemp(path.join(options.scratchDir ?? os.tmpdir(), 'kiln-copy-'));
  try {
    let n = 0;
    for (const item of items) {
      const itemScratch = path.join(scratch, String(n++));
      await mkdir(itemScratch);
      switch (item.kind) {
        case 'local': {
          const unpack = isAdd && (instruction as AddInstruction).unpack !== false;
          if (unpack && item.match.stat.isFile() && (await isArchiveFile(item.match.host, optionalCompression(options)))) {
            // moby's Untar: the directory is made 0755 root:root, never chowned.
            const dir = await ensureDirectory(recorder, site, destination.imagePath, { uid: 0, gid: 0 });
            await extractArchive(item.match.host, dir, recorder, site, chown, ctx.runner, optionalCompression(options));
          } else if (parents) {
            await copyWithParents(ctx, item.tree, item.match, item.source, destination, createdOwner);
          } else {
            await copyMatch(ctx, item.tree, item.match, destination, createdOwner);
          }
          break;
        }
        case 'url': {
          const downloaded = await downloadUrl(site, item.url, itemScratch, {
            ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher }),
            ...((instruction as AddInstruction).checksum === undefined ? {} : { checksum: (instruction as AddInstruction).checksum as string }),
          });
          // Remote files are extracted only when asked (`--unpack`), BuildKit's default being not to.
          if ((instruction as AddInstruction).unpack === true && (await isArchiveFile(downloaded.host, optionalCompression(options)))) {
            const dir = await ensureDirectory(recorder, site, destination.imagePath, { uid: 0, gid: 0 });
            await extractArchive(downloaded.host, dir, recorder, site, chown, ctx.runner, optionalCompression(options));
          } else {
            await copyScratchFile(ctx, itemScratch, downloaded.host, downloaded.name, destination, createdOwner);
          }
          break;
        }
        case 'git': {
          if (options.git === undefined) throw new CopyError(site, `ADD of a git repository (${item.url}) needs a git runner`);
          const add = instruction as AddInstruction;
          const dir = await fetchGitSource(site, item.url, itemScratch, add.keepGitDir, add.checksum, options.git);
          // A checkout belongs to whoever ran git: copied as root's, like BuildKit's git source.
          const checkout: SourceTree = { root: itemScratch, visible: () => true, preserveOwners: false };
          const relative = path.relative(itemScratch, dir).split(path.sep).join('/');
          const match = await followSource(checkout, relative, relative);
          if (match === undefined) throw new CopyError(site, `git checkout of ${item.url} is empty`);
          await copyMatch(ctx, checkout, match, destination, createdOwner);
          break;
        }
        case 'heredoc': {
          const host = path.join(itemScratch, 'heredoc');
          await writeFile(host, item.content);
          await chmod(host, 0o644);
          await copyScratchFile(ctx, itemScratch, host, item.name, destination, createdOwner);
          break;
        }
      }
    }
    if (ctx.xattrCopies !== undefined && options.xattrs !== undefined) {
      await copyCarriedXattrs(ctx.xattrCopies, { reader: options.xattrs, run: ctx.runner, limiter: ctx.limiter, warn: options.warn ?? (() => {}) });
    }
    return { changes: recorder.changeSet(), items: items.length };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

function optionalCompression(options: CopyIntoRootOptions): { compressionEnv?: CompressionEnv } {
  return options.compressionEnv === undefined ? {} : { compressionEnv: options.compressionEnv };
}

/**
 * Every source, located before anything is written: a plain path that does not exist fails the
 * step; a wildcard that matches nothing adds nothing (the `file.tx[t]` idiom for optional files,
 * moby#26332), unless the directory it looks in is missing.
 */
async function locateSources(site: InstructionSite, instruction: CopyInstruction | AddInstruction, tree: SourceTree, parents: boolean): Promise<Item[]> {
  const items: Item[] = [];
  for (const source of instruction.sources) {
    if (instruction.kind === 'add' && isGitSource(source)) {
      items.push({ kind: 'git', url: source });
      continue;
    }
    if (instruction.kind === 'add' && isHttpSource(source)) {
      items.push({ kind: 'url', url: source });
      continue;
    }
    if (instruction.kind === 'copy' && isHttpSource(source)) {
      throw new CopyError(site, `source can't be a URL for COPY: ${source} (use ADD)`);
    }
    if (instruction.kind === 'add' && instruction.checksum !== undefined) {
      throw new CopyError(site, `checksum can't be specified for non-HTTP(S) sources: ${source}`);
    }
    const pattern = parents ? source.replace('/./', '/') : source;
    let matches: SourceMatch[];
    try {
      matches = await matchSource(tree, pattern);
    } catch (error) {
      if (error instanceof GlobSyntaxError) throw new CopyError(site, `invalid source pattern ${JSON.stringify(source)}: ${error.reason}`, { cause: error });
      throw error;
    }
    if (matches.length === 0) {
      const { base, pattern: glob } = splitWildcards(normalizeSource(pattern));
      // A wildcard may match nothing, but the directory it looks in must exist (BuildKit lstats it).
      const baseDir = glob === '' ? undefined : await followSource(tree, base, base);
      if (baseDir === undefined || !baseDir.stat.isDirectory()) throw new SourceNotFoundError(site, base);
    }
    for (const match of matches) items.push({ kind: 'local', tree, match, source });
  }
  for (const heredoc of instruction.heredocSources) items.push({ kind: 'heredoc', name: heredoc.name, content: heredoc.content });
  return items;
}

/** `--exclude` paths are relative to the part of the source before its first wildcard. */
function excludePathOf(match: SourceMatch): string {
  if (match.relative === match.base) return '';
  return match.base === '' ? match.relative : match.relative.slice(match.base.length + 1);
}

/**
 * fsutil's rules for one match: a directory's contents go into the destination directory (made
 * when missing, with the source directory's metadata unless the destination ended in `/`); a
 * file goes into a destination directory under its own name, or becomes the destination.
 */
async function copyMatch(
  ctx: CopyContext,
  tree: SourceTree,
  match: SourceMatch,
  destination: Destination,
  createdOwner: Owner,
  name = path.posix.basename(match.relative),
): Promise<void> {
  const { recorder, site } = ctx;
  const resolved = await resolveDestinationPath(recorder.root, destination.imagePath);
  const intoDirectory = destination.isDirectory || resolved.kind === 'directory';
  let target: string;
  if (intoDirectory) {
    const dir = await ensureDirectory(recorder, site, destination.imagePath, createdOwner);
    target = match.stat.isDirectory() ? dir : joinRelative(dir, name);
  } else {
    if (match.stat.isDirectory() && resolved.kind === 'other') {
      throw new CopyError(site, `cannot copy to non-directory: ${destination.imagePath}`);
    }
    const parent = await ensureDirectory(recorder, site, '/' + path.posix.dirname(resolved.relative), createdOwner);
    target = joinRelative(parent, path.posix.basename(resolved.relative));
  }
  await copyEntry(ctx, { tree, source: match.resolved, stat: match.stat, target, excludePath: excludePathOf(match), overwriteMetadata: false });
}

/** A file made in the scratch directory (download, heredoc) copied like a context file. */
async function copyScratchFile(ctx: CopyContext, scratchRoot: string, host: string, name: string, destination: Destination, createdOwner: Owner): Promise<void> {
  const tree: SourceTree = { root: scratchRoot, visible: () => true, preserveOwners: false };
  const relative = path.relative(scratchRoot, host).split(path.sep).join('/');
  const match: SourceMatch = { relative, resolved: relative, host, stat: await lstat(host), base: relative };
  await copyMatch(ctx, tree, match, destination, createdOwner, name);
}

/**
 * `COPY --parents`: each match keeps its path below the pivot (the part of the source before
 * `/./`, or the tree root) inside the destination directory. Directories on the way are made
 * with their source's metadata, as BuildKit's include-pattern copy makes them.
 */
async function copyWithParents(ctx: CopyContext, tree: SourceTree, match: SourceMatch, source: string, destination: Destination, createdOwner: Owner): Promise<void> {
  const { recorder, site } = ctx;
  const at = source.indexOf('/./');
  const pivot = at < 0 ? '' : normalizeSource(source.slice(0, at));
  const below = pivot === '' ? match.relative : match.relative.slice(pivot.length + 1);
  let target = await ensureDirectory(recorder, site, destination.imagePath, createdOwner);
  let sourceDir = pivot;
  const parts = below === '' ? [] : below.split('/');
  // Their times are set last: writing inside them moves their mtime.
  const made: { host: string; stat: import('node:fs').Stats; source: string }[] = [];
  for (const part of parts.slice(0, -1)) {
    sourceDir = joinRelative(sourceDir, part);
    target = joinRelative(target, part);
    const sourceResolved = await resolveRelativeInRoot(tree.root, sourceDir);
    const sourceDirHost = sourceResolved === '' ? tree.root : path.join(tree.root, sourceResolved);
    const sourceStat = await lstat(sourceDirHost);
    const host = recorder.host(target);
    let existing: import('node:fs').Stats | undefined;
    try {
      existing = await lstat(host);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (existing === undefined) {
      await mkdir(host, { mode: 0o700 });
      recorder.record(target);
      made.push({ host, stat: sourceStat, source: sourceDirHost });
    } else if (!existing.isDirectory()) {
      throw new CopyError(site, `cannot copy to non-directory: /${target}`);
    } else {
      recorder.record(target);
    }
  }
  const last = parts[parts.length - 1];
  if (last !== undefined) target = joinRelative(target, last);
  await copyEntry(ctx, { tree, source: match.resolved, stat: match.stat, target, excludePath: excludePathOf(match), overwriteMetadata: false });
  for (const dir of made.reverse()) await applyMetadata(ctx, tree, dir.stat, dir.host, dir.source);
}
