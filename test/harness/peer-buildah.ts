/**
 * The comparison peer for fidelity tests: builds a context with buildah (chroot isolation, storage
 * under a temporary root, OCI format by default) and pushes the result to the test registry, as
 * ../shared/tools/peer-buildah.sh does. Tests only: kiln never calls buildah.
 *
 * One PeerBuildah keeps its storage between builds, so a base image is pulled once per test file.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runCommand, type CommandResult } from './command.js';
import type { IgnoreRule, TreeDifference, TreeEntry } from './image-tree.js';
import {
  ContainerToolError,
  createContainersSandbox,
  registryFlags,
  type ContainersSandbox,
  type RegistryAccess,
  type StorageDriver,
} from './containers.js';

export interface PeerBuildOptions {
  /** The build context directory. */
  context: string;
  /** The Dockerfile (default `<context>/Dockerfile`). */
  dockerfile?: string;
  /** Where to push: `host:port/repository:tag`. */
  destination: string;
  /** How to reach the registry for FROM pulls and the push (plain HTTP without credentials when absent). */
  registry?: RegistryAccess;
  buildArgs?: Readonly<Record<string, string>>;
  target?: string;
  /** `oci` (default) or `docker` (Docker schema 2 media types; keeps HEALTHCHECK, ONBUILD, SHELL). */
  format?: 'oci' | 'docker';
  /**
   * How RUN steps are isolated: `chroot` (default, like kiln's) or `oci` (runc). buildah's chroot
   * isolation cannot take RUN steps off the network, so `network: 'none'` needs `oci`.
   */
  isolation?: 'chroot' | 'oci';
  /** The network RUN steps get: the host's (default, as Docker's default bridge reaches out) or none. */
  network?: 'host' | 'none';
  platform?: string;
  /** `--secret id=…,src=…` entries. */
  secrets?: readonly { id: string; src: string }[];
  /** More `buildah build` flags. */
  extraArgs?: readonly string[];
  /** Default 300 s. */
  timeoutMs?: number;
}

export interface PeerBuildResult {
  /** The pushed tag: the destination. */
  reference: string;
  /** The pushed manifest's digest. */
  digest: string;
  /** `host:port/repository@sha256:…` */
  digestReference: string;
  /** buildah's output (build steps), for a failing test's message. */
  log: string;
}

/**
 * What buildah 1.28 does differently from Docker/BuildKit whatever the Dockerfile, as diffTrees
 * rules; `side` is the side (a or b) buildah's image is on. Measured on this machine:
 * - it labels every image `io.buildah.version`;
 * - with `--layers=false` it commits all steps as one layer, and writes the classic builder's
 *   history texts (`/bin/sh -c #(nop) COPY file:… in …`), so history is not comparable;
 * - a RUN leaves empty 0755 files /etc/hosts, /etc/resolv.conf, /etc/hostname and an empty /run
 *   where the base had none (its mount points). Only those exact stubs are ignored: a kiln image
 *   with its own /etc/hosts content would still differ.
 */
export function buildahExceptions(side: 'a' | 'b'): IgnoreRule[] {
  const only = side === 'a' ? 'only-in-a' : 'only-in-b';
  const stubFiles = new Set(['/etc/hosts', '/etc/resolv.conf', '/etc/hostname']);
  return [
    { config: 'Labels', keys: ['io.buildah.version'], reason: 'buildah labels every image with its version' },
    { history: 'all', reason: 'buildah --layers=false squashes the steps and writes classic-builder history' },
    {
      reason: "buildah's RUN mount-point stubs where the base image had no such path",
      match: (difference: TreeDifference) => {
        if (difference.kind !== only) return false;
        const entry = (side === 'a' ? difference.a : difference.b) as TreeEntry | undefined;
        if (entry === undefined) return false;
        if (stubFiles.has(difference.where)) return entry.type === 'file' && entry.size === 0;
        return difference.where === '/run' && entry.type === 'directory';
      },
    },
  ];
}

export class PeerBuildah {
  readonly #sandbox: ContainersSandbox;

  private constructor(sandbox: ContainersSandbox) {
    this.#sandbox = sandbox;
  }

  /** overlay is the faster driver here (2.9 s vs 4.8 s cold for example-context). */
  static async create(options: { storageDriver?: StorageDriver } = {}): Promise<PeerBuildah> {
    return new PeerBuildah(await createContainersSandbox('buildah', options.storageDriver ?? 'overlay'));
  }

  async build(options: PeerBuildOptions): Promise<PeerBuildResult> {
    // Unique per build: two builds may share this storage at the same time.
    const localName = `localhost/kiln-peer:${randomUUID()}`;
    const isolation = options.isolation ?? 'chroot';
    if (isolation === 'chroot' && options.network === 'none') {
      throw new Error("buildah's chroot isolation runs RUN steps on the host network only: pass isolation: 'oci' with network: 'none'");
    }
    const args = [
      'build',
      `--isolation=${isolation}`,
      `--network=${options.network ?? 'host'}`,
      '--layers=false',
      `--format=${options.format ?? 'oci'}`,
      '--pull=missing',
      ...registryFlags(options.registry),
      `--file=${options.dockerfile ?? path.join(options.context, 'Dockerfile')}`,
      `--tag=${localName}`,
    ];
    for (const [name, value] of Object.entries(options.buildArgs ?? {})) args.push(`--build-arg=${name}=${value}`);
    if (options.target !== undefined) args.push(`--target=${options.target}`);
    if (options.platform !== undefined) args.push(`--platform=${options.platform}`);
    for (const secret of options.secrets ?? []) args.push(`--secret=id=${secret.id},src=${secret.src}`);
    args.push(...(options.extraArgs ?? []), options.context);
    const built = await this.#buildah(args, options.timeoutMs ?? 300_000);
    this.#check(built, 'build', options.context);

    const scratch = await mkdtemp(path.join(os.tmpdir(), 'kiln-peer-push-'));
    try {
      const digestFile = path.join(scratch, 'digest');
      const pushed = await this.#buildah(
        ['push', '--quiet', ...registryFlags(options.registry), `--digestfile=${digestFile}`, localName, `docker://${options.destination}`],
        options.timeoutMs ?? 300_000,
      );
      this.#check(pushed, 'push', options.destination);
      const digest = (await readFile(digestFile, 'utf8')).trim();
      const repository = options.destination.replace(/(@[^@]*|:[^:/]*)$/, '');
      // The local tag is only a handle for the push; the layers stay cached for the next build.
      this.#check(await this.#buildah(['rmi', localName], 60_000), 'rmi', localName);
      return { reference: options.destination, digest, digestReference: `${repository}@${digest}`, log: built.stdout + built.stderr };
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  async dispose(): Promise<void> {
    await this.#sandbox.dispose();
  }

  #buildah(args: readonly string[], timeoutMs: number): Promise<CommandResult> {
    return runCommand('buildah', [...this.#sandbox.storageArgs, ...args], { env: this.#sandbox.env, timeoutMs });
  }

  #check(result: CommandResult, step: string, subject: string): void {
    if (result.exitCode === 0) return;
    throw new ContainerToolError(
      `buildah ${step} ${subject} exited with ${result.exitCode}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`,
      'buildah',
      [step, subject],
      result.exitCode,
      result.stderr,
    );
  }
}
