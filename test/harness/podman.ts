/**
 * Runs pushed images with podman (runc) as a real consumer would, with storage, runtime state and
 * containers.conf private to one test file (see containers.ts). Used by the end-to-end tests to
 * check what a built image does when run: output, files, users, environment, workdir, entrypoint.
 */
import type { ContainerConfig, HealthConfig } from '../../src/image/types.js';
import { runCommand, type CommandResult } from './command.js';
import {
  ContainerToolError,
  createContainersSandbox,
  registryFlags,
  type ContainersSandbox,
  type RegistryAccess,
  type StorageDriver,
} from './containers.js';

export interface PodmanRunOptions {
  /** The command (replaces the image's Cmd); the image's own when absent. */
  command?: readonly string[];
  /** Replaces the image's Entrypoint; `[]` clears it. */
  entrypoint?: readonly string[];
  user?: string;
  workdir?: string;
  env?: Readonly<Record<string, string>>;
  /** `none` (default) or the host's network. */
  network?: 'none' | 'host';
  /** How to reach the registry the image is pulled from (plain HTTP without credentials when absent). */
  registry?: RegistryAccess;
  /** Written to the container's standard input. */
  stdin?: string;
  /** More `podman run` flags, placed before the image. */
  extraArgs?: readonly string[];
  /** Default 120 s; podman is then stopped (SIGTERM, which it forwards). */
  timeoutMs?: number;
}

export interface PodmanImageInspect {
  /** The image config's runtime part as podman reports it. */
  config: ContainerConfig;
  architecture: string;
  os: string;
  /** The manifest digest podman pulled. */
  digest: string;
  /** Docker-format images' healthcheck, which podman reports beside the config. */
  healthcheck: HealthConfig | undefined;
  /** podman's whole answer, for fields not lifted above. */
  raw: Record<string, unknown>;
}

interface InspectJson {
  Config?: ContainerConfig;
  Architecture?: string;
  Os?: string;
  Digest?: string;
  HealthCheck?: HealthConfig;
  Healthcheck?: HealthConfig;
}

export class Podman {
  readonly #sandbox: ContainersSandbox;

  private constructor(sandbox: ContainersSandbox) {
    this.#sandbox = sandbox;
  }

  /** A podman with its own storage under a fresh temporary directory; dispose() removes it. */
  static async create(options: { storageDriver?: StorageDriver } = {}): Promise<Podman> {
    return new Podman(await createContainersSandbox('podman', options.storageDriver ?? 'overlay'));
  }

  /** Pulls (again: a new push to the same tag is picked up) and returns podman's image id. */
  async pull(reference: string, registry?: RegistryAccess): Promise<string> {
    const result = await this.#podman(['pull', '--quiet', ...registryFlags(registry), reference]);
    this.#check(result, ['pull', reference]);
    return result.stdout.trim();
  }

  /**
   * Pulls the image, runs it once (`--rm`) and returns what the container wrote and its exit code.
   * A non-zero exit is not an error here: see runOk.
   */
  async run(reference: string, options: PodmanRunOptions = {}): Promise<CommandResult> {
    await this.pull(reference, options.registry);
    const args = ['run', '--rm', '--pull=never', `--network=${options.network ?? 'none'}`];
    if (options.stdin !== undefined) args.push('--interactive');
    if (options.entrypoint !== undefined) args.push(`--entrypoint=${JSON.stringify(options.entrypoint)}`);
    if (options.user !== undefined) args.push(`--user=${options.user}`);
    if (options.workdir !== undefined) args.push(`--workdir=${options.workdir}`);
    for (const [name, value] of Object.entries(options.env ?? {})) args.push(`--env=${name}=${value}`);
    args.push(...(options.extraArgs ?? []), reference, ...(options.command ?? []));
    return this.#podman(args, { input: options.stdin, timeoutMs: options.timeoutMs ?? 120_000 });
  }

  /** run(), failing with the container's output when it exits non-zero. */
  async runOk(reference: string, options: PodmanRunOptions = {}): Promise<CommandResult> {
    const result = await this.run(reference, options);
    this.#check(result, ['run', reference, ...(options.command ?? [])]);
    return result;
  }

  /** The image's config as podman sees it after pulling it. */
  async inspectConfig(reference: string, registry?: RegistryAccess): Promise<PodmanImageInspect> {
    await this.pull(reference, registry);
    const result = await this.#podman(['image', 'inspect', reference]);
    this.#check(result, ['image', 'inspect', reference]);
    const parsed = JSON.parse(result.stdout) as (InspectJson & Record<string, unknown>)[];
    const first = parsed[0];
    if (first === undefined) throw new Error(`podman image inspect ${reference} returned no image`);
    return {
      config: first.Config ?? {},
      architecture: first.Architecture ?? '',
      os: first.Os ?? '',
      digest: first.Digest ?? '',
      healthcheck: first.HealthCheck ?? first.Healthcheck,
      raw: first,
    };
  }

  async dispose(): Promise<void> {
    await this.#sandbox.dispose();
  }

  #podman(args: readonly string[], options: { input?: string | undefined; timeoutMs?: number } = {}): Promise<CommandResult> {
    return runCommand('podman', [...this.#sandbox.storageArgs, ...args], {
      env: this.#sandbox.env,
      ...(options.input !== undefined ? { input: options.input } : {}),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    });
  }

  #check(result: CommandResult, what: readonly string[]): void {
    if (result.exitCode === 0) return;
    throw new ContainerToolError(
      `podman ${what.join(' ')} exited with ${result.exitCode}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`,
      'podman',
      what,
      result.exitCode,
      result.stderr,
    );
  }
}

/** One-shot inspect for a test that needs no container: its own storage, removed afterwards. */
export async function podmanInspectConfig(reference: string, registry?: RegistryAccess): Promise<PodmanImageInspect> {
  const podman = await Podman.create();
  try {
    return await podman.inspectConfig(reference, registry);
  } finally {
    await podman.dispose();
  }
}
