/**
 * `RUN --mount` for the chroot sandbox, with BuildKit's semantics:
 * - bind: a file or directory of the build context or of another stage's root (resolved inside that
 *   root), read-only by default; `rw` gives an overlay (a copy, for a file) on a tmpfs private to the
 *   step, so writes are seen by that RUN only and the source on disk never changes.
 * - cache: a directory per id under the build's cache root, kept across builds (cache-mounts.ts).
 * - tmpfs: a fresh tmpfs, optionally sized.
 * - secret: from `--secret`, as a read-only file on a tmpfs that exists only inside the step's mount
 *   namespace (bytes go down a pipe, never to disk, argv or logs), and/or as an environment variable.
 * - ssh: refused with a clear error (not supported yet).
 * Every mount lives in the step's own mount namespace and vanishes with it. Mount points missing
 * from the image are created for the step and removed afterwards (mount-points.ts says exactly what
 * is left: directories the step itself wrote into, and the ctime of the directory that held them).
 */
import { lstat, mkdtemp, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import type { CommandRunner } from '../rootfs/command-runner.js';
import { pathComponents, resolveInRoot } from '../rootfs/resolve-in-root.js';
import { acquireCacheDirectory, type CacheSharing, type HeldLock } from './cache-mounts.js';
import { secretDescriptors, type SandboxMount } from './chroot-command.js';
import { MountPointStubs, touchMtime, type MountPointKind } from './mount-points.js';
import { findSecret, type AvailableSecret, type SecretSource } from './secrets.js';

/** A path inside a directory tree (the build context, another stage's root), resolved inside it. */
export interface RootedPath {
  root: string;
  path: string;
}

/**
 * One `RUN --mount` as the sandbox takes it: the executor fills it from the Dockerfile's RunMount,
 * having turned `from=` into a directory (the context, or a stage's root) and applied BuildKit's
 * defaults (cache id = target, secret target = /run/secrets/<id>, …).
 */
export type RunMountRequest =
  | { type: 'bind'; target: string; source: RootedPath; readonly: boolean }
  | {
      type: 'cache';
      target: string;
      id: string;
      sharing: CacheSharing;
      readonly: boolean;
      mode?: number;
      uid?: number;
      gid?: number;
      /** `from=`/`source=`: what a new cache starts with. */
      seed?: RootedPath;
    }
  | { type: 'tmpfs'; target: string; sizeBytes?: number }
  | { type: 'secret'; id: string; target?: string; env?: string; required: boolean; mode?: number; uid?: number; gid?: number }
  | { type: 'ssh'; id: string; target?: string; required: boolean };

export class RunMountError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunMountError';
  }
}

/** What a build gives every step's mounts. */
export interface RunMountContext {
  /** Where cache mounts live across builds, e.g. `<kilnDir>/cache-mounts`. */
  cacheRoot?: string;
  /** `--secret` values, and the environment `env=` ones are read from. */
  secrets: readonly SecretSource[];
  hostEnv: Readonly<Record<string, string | undefined>>;
  /** A host directory for the step's staging directory (kiln's work directory). */
  scratchDir: string;
  /** Runs cp (seeding caches) and touch (restoring times); src/rootfs/command-runner.ts's runCommand. */
  runCommand: CommandRunner;
}

/** What the runner adds: util-linux's flock for cache locks, and the build's abort signal. */
export interface RunMountHelpers {
  flock: string;
  signal?: AbortSignal;
}

/** The mounts made ready for one step; {@link release} must run once the step is over. */
export interface PreparedMounts {
  mounts: SandboxMount[];
  stagingDir?: string;
  /** `env=` secrets, added to the step's environment. */
  env: Record<string, string>;
  /** What to write to each secret's file descriptor once the step is spawned. */
  secretInputs: { fd: number; open: () => Readable }[];
  /** Mount points kiln could not remove because the step wrote into them (host paths). */
  release(): Promise<{ kept: string[] }>;
}

/**
 * Checks made before touching anything: refusals BuildKit would make, and ones kiln makes for now.
 * `maxSecretFiles`: the chroot sandbox hands each secret file down a descriptor of its own.
 * Pure; throws {@link RunMountError}.
 */
export function checkMountRequests(requests: readonly RunMountRequest[], maxSecretFiles: number = secretDescriptors.length): void {
  const ssh = requests.find((request) => request.type === 'ssh');
  if (ssh !== undefined) {
    throw new RunMountError(
      `RUN --mount=type=ssh (id ${ssh.id}) is not supported by kiln yet: forward the key with a secret mount (--secret id=…,src=… and RUN --mount=type=secret) instead`,
    );
  }
  const targets = requests.flatMap((request) => (request.target === undefined ? [] : [{ request, target: `/${pathComponents(request.target).join('/')}` }]));
  for (const { target } of targets) {
    if (pathComponents(target).includes('..')) throw new RunMountError(`mount target ${target} must not contain ".."`);
    // The sandbox mounts its own /proc, /dev and /sys over the root's: a mount inside them would be hidden or fail.
    if (/^\/(proc|sys|dev)(\/|$)/.test(target) && target !== '/dev/shm') {
      throw new RunMountError(`mount target ${target} lies inside /proc, /sys or /dev, which the sandbox provides itself`);
    }
  }
  for (const outer of targets) {
    for (const inner of targets) {
      if (outer === inner) continue;
      if (inner.target === outer.target) throw new RunMountError(`two RUN mounts share the target ${inner.target}`);
      if (outer.target === '/' || inner.target.startsWith(`${outer.target}/`)) {
        throw new RunMountError(`mount target ${inner.target} lies inside another mount's target ${outer.target}; nested RUN mounts are not supported by kiln yet`);
      }
    }
  }
  const secretFiles = requests.filter((request) => request.type === 'secret' && request.target !== undefined).length;
  if (secretFiles > maxSecretFiles) {
    throw new RunMountError(`a RUN step may mount at most ${maxSecretFiles} secrets as files (it asks for ${secretFiles})`);
  }
}

/**
 * Prepares a step's mounts: checks them, resolves every target inside the root (creating missing
 * mount points, removed again by release), locks and creates cache directories, finds secrets. On
 * failure everything done so far is undone before the error is thrown.
 */
export async function prepareRunMounts(
  root: string,
  requests: readonly RunMountRequest[],
  context: RunMountContext,
  helpers: RunMountHelpers,
): Promise<PreparedMounts> {
  checkMountRequests(requests);
  const stubs = new MountPointStubs(root, touchMtime(context.runCommand));
  const locks: HeldLock[] = [];
  const mounts: SandboxMount[] = [];
  const env: Record<string, string> = {};
  const secretInputs: { fd: number; open: () => Readable }[] = [];
  let stagingDir: string | undefined;
  const release = async (): Promise<{ kept: string[] }> => {
    // Locks go last: the next user must find the mount points already gone.
    const kept = await stubs.remove();
    if (stagingDir !== undefined) await rm(stagingDir, { recursive: true, force: true });
    for (const lock of locks.splice(0).reverse()) await lock.release();
    return { kept };
  };
  const needStaging = async (): Promise<void> => {
    stagingDir ??= await mkdtemp(join(context.scratchDir, 'kiln-mounts-'));
  };
  try {
    for (const request of requests) {
      switch (request.type) {
        case 'bind': {
          const { source, kind } = await resolveBindSource(request.source);
          const target = (await stubs.prepare(request.target, kind)).host;
          if (request.readonly) {
            mounts.push({ kind: 'bind', source, target, readonly: true });
          } else {
            await needStaging();
            mounts.push({ kind: kind === 'directory' ? 'overlay' : 'file-copy', source, target });
          }
          break;
        }
        case 'cache': {
          if (context.cacheRoot === undefined) throw new RunMountError('RUN --mount=type=cache needs a cache directory, and the build gave none');
          const seed = await resolveCacheSeed(request.seed);
          const cache = await acquireCacheDirectory(
            context.cacheRoot,
            { id: request.id, sharing: request.sharing, mode: request.mode, uid: request.uid, gid: request.gid, seed },
            { flock: helpers.flock, runCommand: context.runCommand },
            helpers.signal,
          );
          locks.push(cache.lock);
          const target = (await stubs.prepare(request.target, 'directory')).host;
          mounts.push({ kind: 'bind', source: cache.directory, target, readonly: request.readonly });
          break;
        }
        case 'tmpfs': {
          const target = (await stubs.prepare(request.target, 'directory')).host;
          mounts.push({ kind: 'tmpfs', target, sizeBytes: request.sizeBytes });
          break;
        }
        case 'secret': {
          const secret = await findMountSecret(request, context);
          if (secret === undefined) break;
          if (request.env !== undefined) env[request.env] = (await secret.read()).toString('utf8');
          if (request.target !== undefined) {
            await needStaging();
            const fd = secretDescriptors[secretInputs.length] ?? 3;
            const target = (await stubs.prepare(request.target, 'file')).host;
            mounts.push({ kind: 'secret', fd, target, mode: request.mode ?? 0o400, uid: request.uid ?? 0, gid: request.gid ?? 0 });
            secretInputs.push({ fd, open: secret.open });
          }
          break;
        }
        case 'ssh':
          break;
      }
    }
    await stubs.seal();
  } catch (error) {
    await release();
    throw error;
  }
  return { mounts, stagingDir, env, secretInputs, release };
}

/** A bind mount's source inside its own root, and whether it mounts as a directory or a file. */
export async function resolveBindSource(source: RootedPath): Promise<{ source: string; kind: MountPointKind }> {
  const host = await resolveInRoot(source.root, source.path);
  const stats = await lstat(host).catch(missingAsUndefined);
  if (stats === undefined) throw new RunMountError(`RUN --mount=type=bind: source ${source.path} not found`);
  return { source: host, kind: stats.isDirectory() ? 'directory' : 'file' };
}

/** A cache mount's `from=`/`source=` directory inside its own root. */
export async function resolveCacheSeed(seed: RootedPath | undefined): Promise<string | undefined> {
  if (seed === undefined) return undefined;
  const host = await resolveInRoot(seed.root, seed.path);
  const stats = await lstat(host).catch(missingAsUndefined);
  if (!stats?.isDirectory()) throw new RunMountError(`RUN --mount=type=cache: source ${seed.path} is not a directory`);
  return host;
}

/** A secret mount's secret; undefined when it was not given and the mount does not require it. */
export async function findMountSecret(
  request: Extract<RunMountRequest, { type: 'secret' }>,
  context: Pick<RunMountContext, 'secrets' | 'hostEnv'>,
): Promise<AvailableSecret | undefined> {
  const secret = await findSecret(request.id, context.secrets, context.hostEnv);
  if (secret === undefined && request.required) {
    throw new RunMountError(`secret ${request.id} is required by RUN --mount=type=secret but was not given (pass --secret id=${request.id},src=FILE or env=VARIABLE)`);
  }
  return secret;
}

function missingAsUndefined(error: NodeJS.ErrnoException): undefined {
  if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
  throw error;
}

/**
 * The fields of the Dockerfile's `RunMount` (src/dockerfile/run-mount.ts) the sandbox reads,
 * restated so sandbox/ need not import dockerfile/: the executor passes its RunMount as is.
 */
export interface RunMountFields {
  type: 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
  target?: string;
  source?: string;
  from?: string;
  readonly: boolean;
  id?: string;
  sharing?: CacheSharing;
  mode?: number;
  uid?: number;
  gid?: number;
  required?: boolean;
  env?: string;
  size?: number;
}

/**
 * A parsed `RUN --mount` as a sandbox request, with BuildKit's meaning of `from`/`source`:
 * a bind mounts `source` (default: the whole tree) of the build context, or of `from` (a stage's or
 * image's root, which `rootOf` finds); a cache starts from `from`'s `source` when it is new, and
 * `source` alone means nothing for it. A relative target is read from `workdir`, as BuildKit does.
 */
export function toRunMountRequest(mount: RunMountFields, rootOf: (from: string | undefined) => string, workdir = '/'): RunMountRequest {
  const target = (): string => {
    if (mount.target === undefined || mount.target === '') throw new RunMountError(`mount type=${mount.type} requires a target`);
    return inWorkdir(mount.target, workdir);
  };
  switch (mount.type) {
    case 'bind':
      return { type: 'bind', target: target(), source: { root: rootOf(mount.from), path: mount.source ?? '/' }, readonly: mount.readonly };
    case 'cache':
      return {
        type: 'cache',
        target: target(),
        id: mount.id ?? target(),
        sharing: mount.sharing ?? 'shared',
        readonly: mount.readonly,
        mode: mount.mode,
        uid: mount.uid,
        gid: mount.gid,
        seed: mount.from === undefined ? undefined : { root: rootOf(mount.from), path: mount.source ?? '/' },
      };
    case 'tmpfs':
      return { type: 'tmpfs', target: target(), sizeBytes: mount.size };
    case 'secret': {
      const id = mount.id ?? mount.target?.replace(/\/+$/, '').split('/').pop();
      if (id === undefined || id === '') throw new RunMountError('RUN --mount=type=secret needs an id or a target');
      return {
        type: 'secret',
        id,
        target: mount.target !== undefined ? inWorkdir(mount.target, workdir) : mount.env === undefined ? `/run/secrets/${id}` : undefined,
        env: mount.env,
        required: mount.required ?? false,
        mode: mount.mode,
        uid: mount.uid,
        gid: mount.gid,
      };
    }
    case 'ssh':
      return { type: 'ssh', id: mount.id ?? 'default', target: mount.target, required: mount.required ?? false };
  }
}

/** BuildKit reads a relative mount target from the step's WORKDIR. */
function inWorkdir(target: string, workdir: string): string {
  return target.startsWith('/') ? target : posix.join('/', workdir, target);
}
