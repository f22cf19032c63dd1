/**
 * `--isolation in-place` (kaniko's model): in a job container that may not mount or create
 * namespaces, a stage that runs commands is built in the container's own "/". The base image is
 * unpacked over it, RUN steps execute directly, snapshots walk it. What must survive that is
 * protected: kiln's runtime and work directories, the build context and every file the build still
 * reads or writes, mount points (resolv.conf, hosts, volumes), /proc, /sys and /dev.
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { RootPaths } from '../rootfs/root-paths.js';
import type { KilnRuntime } from '../sandbox/kiln-runtime.js';
import { hostPathInsideRoot, imagePathToRelative } from '../snapshot/ignore.js';
import { parseMountInfo } from '../snapshot/mountinfo.js';
import type { BuildOptions, Isolation } from './options.js';

/** The root an in-place build replaces, what in it must stay, and the runtime RUN steps go through. */
export interface InPlaceRoot {
  root: string;
  protect: RootPaths;
  runtime: KilnRuntime;
}

export interface IsolationProbes {
  inContainer(): Promise<boolean>;
  /** Undefined when kiln may create namespaces here; else why not. */
  namespacesUnavailable(): Promise<string | undefined>;
}

export interface IsolationChoice {
  isolation: Exclude<Isolation, 'auto'>;
  /** One line saying what was chosen and why (printed as progress). */
  reason: string;
}

export class IsolationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IsolationError';
  }
}

/**
 * Files container runtimes leave in a container's root (Docker's, podman's). Protected too: a build
 * that removed them would make the next build in the same container think it is not in one.
 */
export const containerMarkers: readonly string[] = ['/.dockerenv', '/run/.containerenv'];

/** The signs container runtimes leave: the marker files, $container, Kubernetes' environment. */
export async function detectContainer(exists: (path: string) => Promise<boolean>, env: NodeJS.ProcessEnv): Promise<boolean> {
  if ((env.container ?? '') !== '' || (env.KUBERNETES_SERVICE_HOST ?? '') !== '') return true;
  for (const marker of containerMarkers) if (await exists(marker)) return true;
  return false;
}

/**
 * chroot where namespaces work; in-place only inside a container (or with kaniko's --force), since
 * it replaces the filesystem kiln runs on.
 */
export async function chooseIsolation(requested: Isolation, force: boolean, probes: IsolationProbes): Promise<IsolationChoice> {
  if (requested === 'chroot') return { isolation: 'chroot', reason: 'isolation: chroot (as asked)' };
  if (requested === 'in-place') {
    if (!force && !(await probes.inContainer())) {
      throw new IsolationError(
        '--isolation in-place replaces the filesystem kiln runs on with the image being built; it is meant for a dedicated job container, and this does not look like one. ' +
          'Pass --force if it is one (as with kaniko), or use --isolation chroot.',
      );
    }
    return { isolation: 'in-place', reason: 'isolation: in-place (as asked): RUN steps run in this container\'s own "/"' };
  }
  const unavailable = await probes.namespacesUnavailable();
  if (unavailable === undefined) return { isolation: 'chroot', reason: 'isolation: chroot (auto: kiln may create namespaces here)' };
  if (force || (await probes.inContainer())) {
    return { isolation: 'in-place', reason: `isolation: in-place (auto: namespaces are not available, ${unavailable}; running in a container)` };
  }
  throw new IsolationError(
    `RUN steps need namespaces (${unavailable}), and in-place isolation is only for a dedicated job container. ` +
      'Run kiln as root on the host, or in a container (its executor image) where in-place isolation takes over.',
  );
}

/**
 * In-place steps run as any USER and unpacking sets any owner: only root in the job container can
 * (as with kaniko). Said up front rather than as a failed chown halfway through the base image.
 */
export function assertInPlaceUser(uid: number | undefined): void {
  if (uid === undefined || uid === 0) return;
  throw new IsolationError(
    `in-place isolation must run as root inside the job container (it runs as uid ${uid}): ` +
      'start the container as user 0 (Kubernetes: securityContext.runAsUser: 0; docker/podman: --user 0). It needs no extra capability.',
  );
}

/** What an in-place build must leave alone, as host paths (real or not yet existing). */
export interface ProtectedInputs {
  root: string;
  /** /proc/self/mountinfo: every mount point strictly inside the root is protected. */
  mountInfo: string;
  runtimeDir: string;
  /** Directories and files the build reads or writes while the root is replaced. */
  hostPaths: readonly string[];
  /** `--ignore-path` values (image paths): never unpacked over, never snapshotted. */
  ignorePaths: readonly string[];
}

const alwaysProtected = ['proc', 'sys', 'dev'];

export function protectedPaths(inputs: ProtectedInputs): RootPaths {
  const paths = new Set(alwaysProtected);
  const add = (hostPath: string): void => {
    const relative = hostPathInsideRoot(inputs.root, hostPath);
    if (relative === '') throw new IsolationError(`${hostPath} is the root an in-place build replaces; kiln needs it elsewhere`);
    if (relative !== undefined) paths.add(relative);
  };
  add(inputs.runtimeDir);
  for (const hostPath of inputs.hostPaths) add(hostPath);
  for (const mount of parseMountInfo(inputs.mountInfo)) {
    const relative = hostPathInsideRoot(inputs.root, mount.mountPoint);
    if (relative !== undefined && relative !== '') paths.add(relative);
  }
  for (const ignored of inputs.ignorePaths) {
    const relative = imagePathToRelative(ignored);
    if (relative !== '') paths.add(relative);
  }
  return new RootPaths(paths);
}

/**
 * Every host path the build reads or writes after the root is replaced: kiln's work and cache
 * directories, the context, Docker's config, certificates, secrets and the local outputs.
 */
export function buildHostPaths(options: BuildOptions, contextRoot: string, env: NodeJS.ProcessEnv): string[] {
  const transport = options.registry;
  const home = env.HOME ?? '/root';
  return [
    options.kilnDir,
    ...(options.cacheDir === undefined ? [] : [options.cacheDir]),
    contextRoot,
    env.DOCKER_CONFIG ?? path.join(home, '.docker'),
    ...Object.values(transport.registryCertificates),
    ...Object.values(transport.registryClientCerts).flatMap((pair) => [pair.cert, pair.key]),
    ...options.secrets.flatMap((secret) => (secret.src === undefined ? [] : [secret.src])),
    ...[options.tarPath, options.ociLayoutPath, options.digestFile, options.imageNameWithDigestFile, options.imageNameTagWithDigestFile].filter(
      (output): output is string => output !== undefined,
    ),
  ].map((hostPath) => path.resolve(hostPath));
}

/** A path's real location when it exists (a link to a mount is protected where it leads), else itself. */
export async function realOrAsGiven(hostPath: string): Promise<string> {
  return realpath(hostPath).catch(() => hostPath);
}
