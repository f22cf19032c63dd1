/**
 * Builds one stage: its base (scratch, an image, or an earlier stage), then each instruction in
 * order, one layer per filesystem change, with the config and history BuildKit would write.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BuildPlan, ResolvedInstruction, StageState } from '../dockerfile/plan.js';
import { parseOnbuildTriggers, resolveStage } from '../dockerfile/plan.js';
import type { Layer } from '../image/image.js';
import { parseReference, type Reference } from '../image/reference.js';
import type { HistoryEntry, ImageConfig, Platform } from '../image/types.js';
import { GetfattrLayerXattrs, type LayerXattrReader } from '../layer/layer-xattrs.js';
import { writeLayer } from '../layer/write-layer.js';
import { withRegistry, type RegistryAccess } from '../registry/connect.js';
import { pullImage } from '../registry/remote-image.js';
import { type CommandRunner, runCommand as runHostCommand } from '../rootfs/command-runner.js';
import { resolveInRoot } from '../rootfs/resolve-in-root.js';
import { unpackImage } from '../rootfs/unpack.js';
import { clearRoot, copyTree } from '../rootfs/tree-copy.js';
import { resolveUser, type ResolvedUser } from '../rootfs/users.js';
import { allCapabilities } from '../sandbox/capabilities.js';
import { locateSandboxTools, runChrootStep, type SandboxTools, type StepFile } from '../sandbox/chroot-runner.js';
import { prepareInPlaceMounts } from '../sandbox/in-place-mounts.js';
import { runThroughRuntime } from '../sandbox/kiln-runtime.js';
import { runInPlaceStep } from '../sandbox/in-place-runner.js';
import { toRunMountRequest } from '../sandbox/run-mounts.js';
import { runIsInsecure, sandboxNetwork } from '../sandbox/step-options.js';
import type { ChangeSet } from '../snapshot/change.js';
import { createSnapshotter } from '../snapshot/create-snapshotter.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import { contextView, createSpawnRunner, type IgnoreMatcher } from '../context/index.js';
import { ChangeRecorder } from './copy/change-recorder.js';
import { copyIntoRoot, contextSourceTree, type SourceTree } from './copy/index.js';
import { ensureDirectory, resolveDestinationPath } from './copy/destination.js';
import { applyToConfig, stageConfigFromBase, type StageConfig } from './image-config.js';
import type { BuildOptions } from './options.js';
import { formatBytes, type Progress } from './progress.js';
import { environmentOf, goQuotedList, runCommand, runHistory } from './run-command.js';
import type { InPlaceRoot } from './in-place.js';
import type { Workspace } from './workspace.js';

const execFileAsync = promisify(execFile);

/** What a finished stage leaves for the stages after it and for the final image. */
export interface StageResult {
  root: string;
  stage: StageConfig;
  platform: Platform;
  layers: Layer[];
  history: HistoryEntry[];
  state: StageState;
  /** Repositories the base layers came from: a push to the same registry mounts instead of uploading. */
  sources: Reference[];
}

export class BuildStepError extends Error {
  constructor(file: string, line: number, message: string, options?: { cause?: unknown }) {
    super(`${file}:${line}: ${message}`, options);
    this.name = 'BuildStepError';
  }
}

export interface BuildSession {
  options: BuildOptions;
  plan: BuildPlan;
  contextRoot: string;
  contextIgnore: IgnoreMatcher;
  workspace: Workspace;
  registry: RegistryAccess;
  progress: Progress;
  /** Where util-linux's tools for chroot isolation are looked for (the host's PATH), once a step needs them. */
  sandboxPath: string;
  sandbox?: SandboxTools;
  /** resolv.conf, hosts and hostname as every RUN sees them (private copies per step). */
  stepFiles: StepFile[];
  /** Capabilities RUN steps get (Docker's defaults with --cap-add/--cap-drop applied). */
  capabilities: string[];
  /** RUN output goes here (stderr: stdout ends with the digest). */
  runOutput: import("node:stream").Writable;
  /** The process environment: git credentials for ADD of repositories. */
  env: NodeJS.ProcessEnv;
  created: string;
  /** SOURCE_DATE_EPOCH, seconds: layer mtimes are clamped to it. */
  sourceDateEpoch?: number;
  results: Map<number, StageResult>;
  signal?: AbortSignal;
  /** Images named by `COPY --from`/`--mount=from=`, unpacked once per build: reference → root. */
  fromImageRoots: Map<string, string>;
  /** The context's source tree, walked once and shared by every COPY/ADD from the context. */
  contextTree?: SourceTree;
  /** The context without what .dockerignore leaves out, for RUN --mount=type=bind (context-view.ts). */
  contextMountRoot?: string;
  /** With in-place isolation: the root stages that run commands are built in, and what in it stays. */
  inPlace?: InPlaceRoot;
  /** Reads the extended attributes layers carry; made on the first layer, shared so a missing getfattr is told once. */
  layerXattrs?: LayerXattrReader;
}

/** Runs getfattr and setfattr: kiln's runtime's copies with in-place isolation, which replaces the host's. */
function toolRunner(session: BuildSession): CommandRunner {
  return session.inPlace === undefined ? runHostCommand : runThroughRuntime(session.inPlace.runtime, runHostCommand);
}

function platformOf(plan: BuildPlan, stagePlatform: string | undefined): Platform {
  const [os = 'linux', architecture = 'amd64', variant] = (stagePlatform ?? plan.platform).split('/');
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

interface Base {
  /** Where the stage is built: its own directory, or the in-place root. */
  root: string;
  config: ImageConfig | undefined;
  layers: Layer[];
  history: HistoryEntry[];
  parentState?: StageState;
  sources: Reference[];
}

async function prepareBase(session: BuildSession, index: number): Promise<Base> {
  const planned = session.plan.stages[index];
  if (planned === undefined) throw new Error(`no stage ${index}`);
  const base = planned.base;
  if (base.kind === 'scratch') {
    const root = await stageRoot(session, index, []);
    return { root, config: undefined, layers: [], history: [], sources: [] };
  }
  if (base.kind === 'stage') {
    const parent = session.results.get(base.index);
    if (parent === undefined) throw new Error(`stage ${base.index} was not built before stage ${index}`);
    const root = await stageRoot(session, index, []);
    if (session.inPlace === undefined) {
      // Reflinks where the filesystem has them; `cp -a` keeps owners, modes, links and times.
      await execFileAsync('cp', ['-a', '--reflink=auto', `${parent.root}/.`, root]);
    } else {
      // The host's cp may already be gone (replaced by an image in "/"): node copies it.
      await copyTree(parent.root, root, { skip: session.inPlace.protect, warn: (line) => session.progress.info(`  warning: ${line}`) });
    }
    const config: ImageConfig = { ...parent.platform, config: parent.stage.config, rootfs: { type: 'layers', diff_ids: parent.layers.map((l) => l.diffId) } };
    return { root, config, layers: [...parent.layers], history: [...parent.history], parentState: parent.state, sources: parent.sources };
  }
  const reference = parseReference(base.ref);
  const platform = platformOf(session.plan, planned.platform);
  const done = session.progress.step(`[${planned.displayName}] FROM ${reference.familiar()}`);
  const image = await withRegistry(session.registry, reference, 'pull', ({ client, repository }) =>
    pullImage(client, repository, reference.identifier, { platform }),
  );
  const onbuild = image.config.config?.OnBuild ?? [];
  const root = await stageRoot(session, index, onbuild);
  const size = formatBytes(image.layers.reduce((n, l) => n + l.descriptor.size, 0));
  const warn = (line: string): void => session.progress.info(`  warning: ${line}`);
  const protect = root === session.inPlace?.root ? { protect: session.inPlace.protect } : {};
  if (copyOnlyStage(session, index) && onbuild.length === 0) {
    // Nothing in this stage reads a base file's bytes: only where things are (directories, links,
    // modes) and who users are. The layers it adds are the same; writing the base's files is skipped.
    await unpackImage(root, image, { warn, keepContent: isUserDatabase, runner: toolRunner(session) });
    done(`laid out ${image.layers.length} layer(s), ${size}, without file contents (COPY-only stage)`);
  } else {
    await unpackImage(root, image, { warn, runner: toolRunner(session), ...protect });
    done(`unpacked ${image.layers.length} layer(s), ${size}${root === session.inPlace?.root ? ` over ${root} (in-place)` : ''}`);
  }
  return { root, config: image.config, layers: [...image.layers], history: [...(image.config.history ?? [])], sources: [reference] };
}

/**
 * Where stage `index` is built, made ready: with in-place isolation a stage that runs commands (its
 * own RUN or its base's ONBUILD RUN) gets the in-place root, emptied but for what is protected;
 * every other stage, a directory of the workspace.
 */
async function stageRoot(session: BuildSession, index: number, onbuild: readonly string[]): Promise<string> {
  const inPlace = session.inPlace;
  const stage = session.plan.stages[index];
  const runs = stage?.instructions.some((planned) => planned.instruction.kind === 'run') || onbuild.some((trigger) => /^\s*RUN\b/i.test(trigger));
  if (inPlace !== undefined && runs) {
    await clearRoot(inPlace.root, inPlace.protect);
    return inPlace.root;
  }
  const root = session.workspace.stageRoot(index);
  await mkdir(root, { recursive: true, mode: 0o755 });
  return root;
}

/** True when a later stage builds on, copies from or mounts stage `index`. */
function hasDependents(plan: BuildPlan, index: number): boolean {
  return plan.stages.some((other) => other.dependsOn.some((dependency) => dependency.stage === index));
}

/**
 * A stage that runs nothing and that no other stage builds on, copies from or mounts: its base
 * files' contents can never be read, so the base need not be written out in full.
 */
export function copyOnlyStage(session: Pick<BuildSession, 'plan' | 'options'>, index: number): boolean {
  const { plan, options } = session;
  if (options.singleSnapshot) return false;
  const stage = plan.stages[index];
  if (stage === undefined || stage.instructions.some((planned) => planned.instruction.kind === 'run')) return false;
  return !hasDependents(plan, index);
}

/** `--chown` by name reads the image's user database, wherever its files are. */
function isUserDatabase(relativePath: string): boolean {
  return /(^|\/)(passwd|group)$/.test(relativePath);
}

/** Builds stage `index` of the plan; its base must be built already. */
export async function buildStage(session: BuildSession, index: number): Promise<StageResult> {
  const planned = session.plan.stages[index];
  if (planned === undefined) throw new Error(`no stage ${index}`);
  const file = session.plan.file;
  const base = await prepareBase(session, index);
  const root = base.root;
  const resolved = resolveStage(session.plan, index, {
    baseImageEnv: base.config?.config?.Env ?? [],
    ...(base.parentState === undefined ? {} : { parent: base.parentState }),
    baseOnbuild: base.parentState === undefined ? parseOnbuildTriggers(base.config?.config?.OnBuild ?? [], file, planned.line, session.plan.escape) : [],
    ...(base.config?.config?.WorkingDir === undefined ? {} : { baseImageWorkdir: base.config.config.WorkingDir }),
  });
  for (const warning of resolved.warnings) session.progress.info(`${file}:${warning.line}: warning: ${warning.message}`);

  const builder = new StageBuilder(session, index, root, base);
  try {
    for (const instruction of resolved.instructions) await builder.apply(instruction);
    await builder.finish();
  } finally {
    await builder.releaseSnapshotter();
  }
  return {
    root: await keepStageRoot(session, index, root),
    stage: builder.stage,
    platform: base.config ? { os: base.config.os, architecture: base.config.architecture, ...(base.config.variant ? { variant: base.config.variant } : {}) } : platformOf(session.plan, planned.platform),
    layers: builder.layers,
    history: builder.history,
    state: resolved.state,
    sources: base.sources,
  };
}

/**
 * The root later stages read this stage from. An in-place root is replaced by the next stage that
 * runs commands, so a stage others depend on is first copied out to the workspace.
 */
async function keepStageRoot(session: BuildSession, index: number, root: string): Promise<string> {
  if (root !== session.inPlace?.root || !hasDependents(session.plan, index)) return root;
  const kept = session.workspace.stageRoot(index);
  const done = session.progress.step(`[${session.plan.stages[index]?.displayName ?? index}] keeping the stage's files for the stages after it`);
  await copyTree(root, kept, { skip: session.inPlace.protect, warn: (line) => session.progress.info(`  warning: ${line}`) });
  done(`copied to ${kept}`);
  return kept;
}

/** What a RUN step runs with, whatever the isolation. */
interface StepSettings {
  workdir: string;
  user: ResolvedUser;
  capabilities: readonly string[];
  /** The directory a `RUN --mount` source lives in: the context, or a stage or image by `from=`. */
  rootOf: (from: string | undefined) => string;
}

interface StepOutcome {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

class StageBuilder {
  stage: StageConfig;
  readonly layers: Layer[];
  readonly history: HistoryEntry[];
  private snapshotter: Snapshotter | undefined;
  /** Where steps read and write: the root, or the snapshotter's view of it once one is running. */
  private workRoot: string;
  private readonly name: string;

  constructor(
    private readonly session: BuildSession,
    private readonly index: number,
    private readonly root: string,
    base: Base,
  ) {
    this.stage = stageConfigFromBase(base.config?.config);
    this.layers = base.layers;
    this.history = base.history;
    this.workRoot = root;
    this.name = session.plan.stages[index]?.displayName ?? String(index);
  }

  private get single(): boolean {
    return this.session.options.singleSnapshot;
  }

  async apply(resolved: ResolvedInstruction): Promise<void> {
    const instruction = resolved.instruction;
    const label = `[${this.name}] ${resolved.fromOnbuild ? 'ONBUILD ' : ''}${resolved.line}: ${resolved.text.split('\n')[0]}`;
    switch (instruction.kind) {
      case 'run': {
        if (this.single) await this.ensureSnapshotter();
        const done = this.session.progress.step(label);
        const argv = await this.run(resolved);
        done(await this.commitLayer(runHistory(argv, resolved.historyArgs ?? []), () => this.snapshotDiff()));
        return;
      }
      case 'copy':
      case 'add': {
        const done = this.session.progress.step(label);
        const changes = await this.copy(resolved);
        done(await this.commitLayer(`${resolved.text} # buildkit`, async () => changes));
        return;
      }
      case 'workdir': {
        this.session.progress.info(label);
        this.stage = applyToConfig(this.stage, instruction);
        const changes = await this.makeWorkdir(instruction.path);
        if (changes.changes.length > 0) {
          await this.commitLayer(`WORKDIR ${instruction.path}`, async () => changes);
        } else {
          this.history.push({ created: this.session.created, created_by: `WORKDIR ${instruction.path}`, comment: 'buildkit.dockerfile.v0', empty_layer: true });
        }
        return;
      }
      default: {
        this.session.progress.info(label);
        this.stage = applyToConfig(this.stage, instruction);
        this.history.push({ created: this.session.created, created_by: this.metadataHistory(resolved), comment: 'buildkit.dockerfile.v0', empty_layer: true });
      }
    }
  }

  private metadataHistory(resolved: ResolvedInstruction): string {
    const config = this.stage.config;
    switch (resolved.instruction.kind) {
      case 'cmd':
        return `CMD ${goQuotedList(config.Cmd ?? [])}`;
      case 'entrypoint':
        return `ENTRYPOINT ${goQuotedList(config.Entrypoint ?? [])}`;
      default:
        return resolved.text;
    }
  }

  /** Writes the layer for what a step changed (or, with --single-snapshot, only records the step). */
  private async commitLayer(createdBy: string, changes: () => Promise<ChangeSet>): Promise<string> {
    if (this.single) {
      this.history.push({ created: this.session.created, created_by: createdBy, comment: 'buildkit.dockerfile.v0', empty_layer: true });
      return 'recorded (single snapshot)';
    }
    const set = await changes();
    const written = await this.writeStepLayer(set);
    if (this.snapshotter) await this.snapshotter.commit();
    if (written === null) {
      this.history.push({ created: this.session.created, created_by: createdBy, comment: 'buildkit.dockerfile.v0', empty_layer: true });
      return 'no changes';
    }
    this.layers.push(written.layer);
    this.history.push({ created: this.session.created, created_by: createdBy, comment: 'buildkit.dockerfile.v0' });
    return `layer ${formatBytes(written.size)} (${set.changes.length} change(s))`;
  }

  private writeStepLayer(set: ChangeSet): ReturnType<typeof writeLayer> {
    const options = this.session.options;
    return writeLayer(set, {
      compression: options.compression,
      ...(options.compressionLevel === undefined ? {} : { level: options.compressionLevel }),
      reproducible: options.reproducible,
      ...(this.session.sourceDateEpoch === undefined ? {} : { sourceDateEpoch: this.session.sourceDateEpoch }),
      outputDir: this.session.workspace.blobs,
      format: options.imageFormat,
      xattrs: this.layerXattrs(),
    });
  }

  private layerXattrs(): LayerXattrReader {
    this.session.layerXattrs ??= new GetfattrLayerXattrs(toolRunner(this.session), (line) => this.session.progress.info(`  warning: ${line}`));
    return this.session.layerXattrs;
  }

  private async ensureSnapshotter(): Promise<void> {
    if (this.snapshotter) return;
    const options = this.session.options;
    const scratchDir = join(this.session.workspace.scratch, `snapshot-${this.index}`);
    this.snapshotter = await createSnapshotter({
      mode: options.snapshotMode,
      scratchDir,
      run: runHostCommand,
      root: this.root,
      kilnDir: this.session.workspace.dir,
      ignorePaths: this.root === this.session.inPlace?.root ? [...options.ignorePaths, ...this.session.inPlace.protect.list().map((p) => `/${p}`)] : options.ignorePaths,
      ignoreVarRun: options.ignoreVarRun,
      xattrRunner: toolRunner(this.session),
      logger: { info: (line) => this.session.progress.info(`  ${line}`) },
    });
    this.workRoot = await this.snapshotter.prepare(this.root);
  }

  private async snapshotDiff(): Promise<ChangeSet> {
    if (!this.snapshotter) throw new Error('no snapshot was taken before this step');
    return this.snapshotter.diff();
  }

  async releaseSnapshotter(): Promise<void> {
    if (!this.snapshotter) return;
    const snapshotter = this.snapshotter;
    this.snapshotter = undefined;
    this.workRoot = this.root;
    await snapshotter.release();
  }

  /** With --single-snapshot, the stage's one layer: everything since the stage's base. */
  async finish(): Promise<void> {
    if (!this.single || !this.snapshotter) return;
    const written = await this.writeStepLayer(await this.snapshotter.diff());
    if (written !== null) {
      this.layers.push(written.layer);
      this.history.push({ created: this.session.created, created_by: 'kiln single snapshot', comment: 'buildkit.dockerfile.v0' });
    }
  }

  private async currentUser(): Promise<ResolvedUser> {
    return resolveUser(this.workRoot, this.stage.config.User || '0');
  }

  /** WORKDIR creates what is missing, owned by the current USER; an existing directory is no change. */
  private async makeWorkdir(path: string): Promise<ChangeSet> {
    if ((await resolveDestinationPath(this.workRoot, path)).kind === 'directory') return { root: this.workRoot, changes: [] };
    const user = await this.currentUser();
    const recorder = new ChangeRecorder(this.workRoot);
    await ensureDirectory(recorder, { keyword: 'WORKDIR', line: 0 }, path, { uid: user.uid, gid: user.gid });
    return recorder.changeSet();
  }

  private async run(resolved: ResolvedInstruction): Promise<string[]> {
    const instruction = resolved.instruction;
    if (instruction.kind !== 'run') throw new Error('not a RUN');
    const file = this.session.plan.file;
    const insecure = runIsInsecure(instruction.security, this.session.options.allow);
    const capabilities = insecure ? allCapabilities() : this.session.capabilities;
    const mounts = instruction.mounts ?? [];
    // `from=` roots are found (and images pulled) before the step: the sandbox wants them at hand.
    const fromRoots = new Map<string, string>();
    for (const mount of mounts) if (mount.from !== undefined) fromRoots.set(mount.from, await this.fromRoot(mount.from, resolved.line));
    const contextRoot = mounts.some((mount) => mount.from === undefined) ? await this.contextForMounts() : this.session.contextRoot;
    const rootOf = (from: string | undefined): string => (from === undefined ? contextRoot : (fromRoots.get(from) ?? contextRoot));
    await this.ensureSnapshotter();
    const user = await this.currentUser();
    const workdir = this.stage.config.WorkingDir || '/';
    await mkdir(await resolveInRoot(this.workRoot, workdir), { recursive: true, mode: 0o755 });
    const scriptDir = `/.kiln-run-${this.index}`;
    const command = runCommand(instruction, this.stage.config.Shell, scriptDir);
    const scriptHostDir = await resolveInRoot(this.workRoot, scriptDir);
    if (command.script) {
      await mkdir(scriptHostDir, { recursive: true, mode: 0o755 });
      const scriptPath = await resolveInRoot(this.workRoot, command.script.name);
      await writeFile(scriptPath, command.script.content);
      await chmod(scriptPath, 0o755);
    }
    try {
      const step = { workdir, user, capabilities, rootOf };
      const result = this.root === this.session.inPlace?.root ? await this.runInPlace(resolved, command.argv, step) : await this.runChrooted(resolved, command.argv, step);
      if (result.exitCode !== 0) {
        const how = result.signal === null ? `exit code ${result.exitCode}` : `signal ${result.signal}`;
        throw new BuildStepError(file, resolved.line, `RUN ${resolved.text.replace(/^RUN\s+/, '').split('\n')[0]} failed: ${how}`);
      }
    } finally {
      if (command.script) await rm(scriptHostDir, { recursive: true, force: true });
    }
    return command.argv;
  }

  /** A RUN step chrooted in namespaces of its own (chroot-runner.ts). */
  private async runChrooted(resolved: ResolvedInstruction, argv: readonly string[], step: StepSettings): Promise<StepOutcome> {
    const instruction = resolved.instruction;
    if (instruction.kind !== 'run') throw new Error('not a RUN');
    const mounts = instruction.mounts ?? [];
    return runChrootStep(
      {
        root: this.workRoot,
        argv,
        workdir: step.workdir,
        uid: step.user.uid,
        gid: step.user.gid,
        groups: step.user.groups,
        capabilities: step.capabilities,
        network: sandboxNetwork(instruction.network),
        ...(mounts.length === 0
          ? {}
          : {
              runMounts: {
                requests: mounts.map((mount) => toRunMountRequest(mount, step.rootOf, step.workdir)),
                context: { ...this.mountContext(), runCommand: runHostCommand },
              },
            }),
        hostname: 'kiln',
        env: this.stepEnvironment(resolved),
        stdout: this.session.runOutput,
        stderr: this.session.runOutput,
        hostFiles: this.session.stepFiles,
        ...(this.session.signal === undefined ? {} : { signal: this.session.signal }),
      },
      await this.chrootTools(),
    );
  }

  /** What every step's RUN --mounts draw on, whatever the isolation. */
  private mountContext(): { cacheRoot: string; secrets: BuildOptions['secrets']; hostEnv: NodeJS.ProcessEnv; scratchDir: string } {
    return {
      cacheRoot: join(this.session.options.kilnDir, 'cache-mounts'),
      secrets: this.session.options.secrets,
      hostEnv: this.session.env,
      scratchDir: this.session.workspace.scratch,
    };
  }

  /** The context as a step's bind mounts see it: what .dockerignore keeps (laid out once per build). */
  private async contextForMounts(): Promise<string> {
    this.session.contextMountRoot ??= await contextView(this.session.contextRoot, this.session.contextIgnore, this.session.workspace.scratch);
    return this.session.contextMountRoot;
  }

  private async chrootTools(): Promise<SandboxTools> {
    this.session.sandbox ??= await locateSandboxTools(this.session.sandboxPath);
    return this.session.sandbox;
  }

  private stepEnvironment(resolved: ResolvedInstruction): Record<string, string> {
    return { ...environmentOf(resolved.runEnv ?? []), ...this.session.plan.proxyEnv };
  }

  /**
   * A RUN step in the job container's own "/": no namespace can be made there, so a network of its
   * own is refused rather than quietly done without; RUN --mount is emulated without mounts
   * (in-place-mounts.ts), its content gone again before the snapshot.
   */
  private async runInPlace(
    resolved: ResolvedInstruction,
    argv: readonly string[],
    step: StepSettings,
  ): Promise<StepOutcome> {
    const instruction = resolved.instruction;
    const inPlace = this.session.inPlace;
    if (instruction.kind !== 'run' || inPlace === undefined) throw new Error('not an in-place RUN');
    const file = this.session.plan.file;
    if (sandboxNetwork(instruction.network) === 'none') {
      throw new BuildStepError(file, resolved.line, 'RUN --network=none needs a network namespace, which in-place isolation does not have: use --isolation chroot');
    }
    const mounts = await prepareInPlaceMounts(
      inPlace.root,
      (instruction.mounts ?? []).map((mount) => toRunMountRequest(mount, step.rootOf, step.workdir)),
      {
        ...this.mountContext(),
        protect: inPlace.protect,
        warn: (line) => this.session.progress.info(`  warning: ${line}`),
      },
    );
    try {
      return await runInPlaceStep(
        {
          argv,
          // The same path when the root is "/"; a test's root directory keeps the step inside it.
          workdir: await resolveInRoot(inPlace.root, step.workdir),
          uid: step.user.uid,
          gid: step.user.gid,
          groups: step.user.groups,
          capabilities: step.capabilities,
          env: { ...this.stepEnvironment(resolved), ...mounts.env },
          stdout: this.session.runOutput,
          stderr: this.session.runOutput,
          ...(this.session.signal === undefined ? {} : { signal: this.session.signal }),
        },
        inPlace.runtime.tool('setpriv'),
      );
    } finally {
      // Before the snapshot, and whether or not the step succeeded: no layer may hold a mount's content.
      await mounts.release();
    }
  }

  private async copy(resolved: ResolvedInstruction): Promise<ChangeSet> {
    const instruction = resolved.instruction;
    if (instruction.kind !== 'copy' && instruction.kind !== 'add') throw new Error('not a COPY/ADD');
    const from = instruction.kind === 'copy' ? instruction.from : undefined;
    const common = {
      instruction,
      destRoot: this.workRoot,
      workdir: resolved.workdir,
      scratchDir: this.session.workspace.scratch,
      git: { runner: createSpawnRunner(), env: this.session.env },
      runner: toolRunner(this.session),
    };
    if (from === undefined) {
      this.session.contextTree ??= await contextSourceTree(this.session.contextRoot, this.session.contextIgnore);
      return (await copyIntoRoot({ ...common, sourceRoot: this.session.contextRoot, sourceTree: this.session.contextTree })).changes;
    }
    const sourceRoot = await this.fromRoot(from, resolved.line);
    const warn = (line: string): void => this.session.progress.info(`  warning: ${line}`);
    return (await copyIntoRoot({ ...common, sourceRoot, sourceKind: 'root', xattrs: this.layerXattrs(), warn })).changes;
  }

  /** `COPY --from`: a stage by name or index, else an image pulled and unpacked once per build. */
  private async fromRoot(from: string, line: number): Promise<string> {
    const plan = this.session.plan;
    const stage = plan.stages.find((s) => s.name === from.toLowerCase()) ?? (/^\d+$/.test(from) ? plan.stages[Number(from)] : undefined);
    if (stage !== undefined) {
      const result = this.session.results.get(stage.index);
      if (result === undefined) throw new BuildStepError(plan.file, line, `COPY --from=${from}: stage ${stage.displayName} has not been built`);
      return result.root;
    }
    const reference = parseReference(from);
    const key = reference.toString();
    const cache = this.session.fromImageRoots;
    const known = cache.get(key);
    if (known !== undefined) return known;
    const root = this.session.workspace.imageRoot(cache.size);
    await mkdir(root, { recursive: true });
    const platform = platformOf(plan, undefined);
    const image = await withRegistry(this.session.registry, reference, 'pull', ({ client, repository }) => pullImage(client, repository, reference.identifier, { platform }));
    await unpackImage(root, image, { runner: toolRunner(this.session) });
    cache.set(key, root);
    return root;
  }
}
