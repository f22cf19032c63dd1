/**
 * The executor: prepare (context, Dockerfile, plan), build every needed stage in order, assemble
 * the target stage's image and send it to every output. The only module that knows all the others.
 */
import { readFile } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { assembleImage } from '../image/assemble.js';
import type { Image } from '../image/image.js';
import type { ImageConfig } from '../image/types.js';
import type { RegistryAccess } from '../registry/connect.js';
import { runCommand as runHostCommand } from '../rootfs/command-runner.js';
import { lstatOrUndefined } from '../rootfs/lstat.js';
import { clearRoot } from '../rootfs/tree-copy.js';
import { capabilitiesFromStatus, grantableCapabilities } from '../sandbox/capabilities.js';
import { locateKilnRuntime } from '../sandbox/kiln-runtime.js';
import { defaultStepFiles, locateSandboxTools } from '../sandbox/chroot-runner.js';
import {
  assertInPlaceUser,
  buildHostPaths,
  chooseIsolation,
  containerMarkers,
  detectContainer,
  IsolationError,
  protectedPaths,
  realOrAsGiven,
  type InPlaceRoot,
  type IsolationProbes,
} from './in-place.js';
import type { BuildOptions } from './options.js';
import { checkPushPermissions, parseDestinations, pushToDestinations, writeLocalOutputs } from './outputs.js';
import { prepareBuild } from './prepare.js';
import { createProgress, type Progress } from './progress.js';
import { buildStage, type BuildSession, type StageResult } from './stage-builder.js';
import { unsupportedOptions } from './unsupported.js';
import { createWorkspace, type Workspace } from './workspace.js';

export interface ExecutorDependencies {
  env: NodeJS.ProcessEnv;
  stdin?: Readable;
  /** Progress, warnings and RUN output. */
  stderr: Writable;
  registry: RegistryAccess;
  /** Aborting (Ctrl-C, SIGTERM) stops the running step; the work directory is removed either way. */
  signal?: AbortSignal;
  now?: () => Date;
  /** The root an in-place build replaces (default "/"): tests point it at a directory of their own. */
  inPlaceRoot?: string;
  /** How isolation is chosen (default: probing this machine). */
  isolationProbes?: IsolationProbes;
}

/** One progress step as it ended: what it was, how it ended (e.g. "cached", "layer 1.2 MiB"), how long it took. */
export interface StepTiming {
  label: string;
  outcome: string;
  seconds: number;
}

export interface BuildResult {
  image: Image;
  digest: string;
  /** Every step in the order it ended, for CI summaries. */
  steps: StepTiming[];
}

/** Progress that also records each step's outcome and duration. */
function recordingProgress(inner: Progress, steps: StepTiming[], now: () => number = () => performance.now()): Progress {
  return {
    info: (line) => inner.info(line),
    step(label) {
      const started = now();
      const done = inner.step(label);
      return (outcome) => {
        steps.push({ label, outcome, seconds: (now() - started) / 1000 });
        done(outcome);
      };
    },
  };
}

/** Reads the capability sets of kiln's own process (RUN steps cannot get more). */
async function ownCapabilities(): Promise<{ bounding: string[]; effective: string[] }> {
  return capabilitiesFromStatus(await readFile('/proc/self/status', 'utf8'));
}

export async function executeBuild(options: BuildOptions, deps: ExecutorDependencies): Promise<BuildResult> {
  const unsupported = unsupportedOptions(options);
  if (unsupported.length > 0) throw new Error(unsupported.join('; '));
  const steps: StepTiming[] = [];
  const logSettings = { verbosity: options.verbosity, format: options.logFormat, timestamp: options.logTimestamp };
  const progress = recordingProgress(createProgress((text) => deps.stderr.write(text), logSettings), steps);
  const destinations = parseDestinations(options.destinations);
  if (destinations.length === 0 && !options.noPush) {
    throw new Error('no --destination given: name where to push the image, or pass --no-push');
  }
  const prepared = await prepareBuild(options, { env: deps.env, warn: (line) => progress.info(line), ...(deps.stdin ? { stdin: deps.stdin } : {}) });
  let workspace: Workspace | undefined;
  let inPlace: InPlaceRoot | undefined;
  try {
    if (!options.noPush && !options.skipPushPermissionCheck) await checkPushPermissions(destinations, deps.registry);
    workspace = await createWorkspace(options.kilnDir);
    const plan = prepared.plan;
    const needsRun = plan.order.some((index) => plan.stages[index]?.instructions.some((i) => i.instruction.kind === 'run'));
    const granted = grantableCapabilities({ add: options.capAdd, drop: options.capDrop }, await ownCapabilities());
    if (needsRun && granted.missingDefaults.length > 0) {
      progress.info(`RUN steps get Docker's default capabilities but ${granted.missingDefaults.map((cap) => `CAP_${cap}`).join(', ')}, which this process does not hold`);
    }
    // Isolation matters only when something runs (a base's ONBUILD RUN, found later, gets chroot).
    if (needsRun) {
      const isolation = await chooseIsolation(options.isolation, options.force, deps.isolationProbes ?? machineIsolationProbes(deps.env));
      progress.info(isolation.reason);
      if (isolation.isolation === 'in-place') inPlace = await prepareInPlaceRoot(options, prepared.context.root, deps);
    }
    const sourceDateEpoch = parseSourceDateEpoch(deps.env.SOURCE_DATE_EPOCH);
    const session: BuildSession = {
      options,
      plan,
      contextRoot: prepared.context.root,
      contextIgnore: prepared.context.ignore,
      workspace,
      registry: deps.registry,
      progress,
      sandboxPath: hostPath(deps.env),
      stepFiles: await defaultStepFiles('kiln'),
      capabilities: granted.capabilities,
      ...(inPlace === undefined ? {} : { inPlace }),
      runOutput: deps.stderr,
      env: deps.env,
      created: createdTimestamp(options, sourceDateEpoch, deps.now),
      ...(sourceDateEpoch === undefined ? {} : { sourceDateEpoch }),
      results: new Map(),
      fromImageRoots: new Map(),
      ...(deps.signal ? { signal: deps.signal } : {}),
    };
    for (const index of plan.order) {
      deps.signal?.throwIfAborted();
      session.results.set(index, await buildStage(session, index));
    }
    const target = session.results.get(plan.target);
    if (target === undefined) throw new Error('the target stage was not built');
    const image = finalImage(target, session, options);
    await writeLocalOutputs(image, destinations, options);
    if (!options.noPush) await pushToDestinations(image, destinations, target.sources, options, deps.registry, progress);
    return { image, digest: image.digest, steps };
  } finally {
    // --cleanup empties the in-place root, so the container can build again.
    if (inPlace !== undefined && options.cleanup) await clearRoot(inPlace.root, inPlace.protect);
    await Promise.all([workspace?.cleanup(), prepared.context.cleanup()]);
  }
}

function hostPath(env: NodeJS.ProcessEnv): string {
  return env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin';
}

async function exists(path: string): Promise<boolean> {
  return (await lstatOrUndefined(path)) !== undefined;
}

/** Asks this machine: a container's marks, and whether util-linux's unshare can make namespaces. */
function machineIsolationProbes(env: NodeJS.ProcessEnv): IsolationProbes {
  return {
    inContainer: () => detectContainer(exists, env),
    async namespacesUnavailable() {
      let tools;
      try {
        tools = await locateSandboxTools(hostPath(env));
      } catch (error) {
        return (error as Error).message;
      }
      let result;
      try {
        result = await runHostCommand(tools.unshare, ['--mount', '--pid', '--fork', '--uts', '--ipc', tools.unshare, '--version']);
      } catch (error) {
        // After an in-place build with --cleanup the libraries it links are gone with the old root:
        // it cannot start, so neither could chroot isolation.
        return `${tools.unshare} cannot start: ${(error as Error).message}`;
      }
      return result.exitCode === 0 ? undefined : `unshare: ${result.stderr.trim() || `exit code ${result.exitCode}`}`;
    },
  };
}

/** The in-place root, what in it must stay, and kiln's own runtime that RUN steps are started through. */
async function prepareInPlaceRoot(options: BuildOptions, contextRoot: string, deps: ExecutorDependencies): Promise<InPlaceRoot> {
  assertInPlaceUser(process.getuid?.());
  const runtime = await locateKilnRuntime({ env: deps.env, execPath: process.execPath, exists });
  if (runtime === undefined) {
    throw new IsolationError(
      `in-place isolation replaces the filesystem, and node (${process.execPath}) lives in it: run kiln from its executor image, ` +
        'or set KILN_RUNTIME_DIR to a directory holding node, lib/ld.so and bin/setpriv (images/executor/collect-runtime.sh makes one)',
    );
  }
  const root = await realOrAsGiven(deps.inPlaceRoot ?? '/');
  const kept = [];
  for (const marker of containerMarkers) if (await exists(marker)) kept.push(marker);
  // The directory kiln was started in (the executor image's /workspace) stays, even when it is
  // not the context: the job's shell goes on in it after the build.
  const cwd = await realOrAsGiven(process.cwd());
  if (cwd !== root) kept.push(cwd);
  const hostPaths = await Promise.all([...buildHostPaths(options, contextRoot, deps.env), ...kept].map(realOrAsGiven));
  const protect = protectedPaths({
    root,
    mountInfo: await readFile('/proc/self/mountinfo', 'utf8'),
    runtimeDir: await realOrAsGiven(runtime.dir),
    hostPaths,
    ignorePaths: options.ignorePaths,
  });
  return { root, protect, runtime };
}

/** SOURCE_DATE_EPOCH as reproducible-builds.org defines it: whole seconds since the epoch. */
export function parseSourceDateEpoch(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^\d+$/.test(value)) throw new Error(`SOURCE_DATE_EPOCH must be a whole number of seconds, got "${value}"`);
  return Number(value);
}

/** The image's `created` and every history entry's: SOURCE_DATE_EPOCH, else 0 with --reproducible, else now. */
function createdTimestamp(options: BuildOptions, sourceDateEpoch: number | undefined, now: (() => Date) | undefined): string {
  if (sourceDateEpoch !== undefined) return new Date(sourceDateEpoch * 1000).toISOString();
  if (options.reproducible) return new Date(0).toISOString();
  return (now?.() ?? new Date()).toISOString();
}

function finalImage(target: StageResult, session: BuildSession, options: BuildOptions): Image {
  const config = { ...target.stage.config };
  if (Object.keys(options.labels).length > 0) config.Labels = { ...(config.Labels ?? {}), ...options.labels };
  if (!config.WorkingDir) config.WorkingDir = '/';
  const imageConfig: ImageConfig = {
    architecture: target.platform.architecture,
    os: target.platform.os,
    ...(target.platform.variant ? { variant: target.platform.variant } : {}),
    created: session.created,
    ...(target.stage.author === undefined ? {} : { author: target.stage.author }),
    config,
    rootfs: { type: 'layers', diff_ids: target.layers.map((layer) => layer.diffId) },
    history: target.history,
  };
  return assembleImage({
    config: imageConfig,
    layers: target.layers,
    format: options.imageFormat,
    ...(Object.keys(options.annotations).length > 0 ? { annotations: options.annotations } : {}),
  });
}
