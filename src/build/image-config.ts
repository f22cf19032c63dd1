import { posix } from 'node:path';
import type { CommandLine, Instruction } from '../dockerfile/instructions.js';
import { exposedPortKeys } from '../dockerfile/instructions.js';
import type { ContainerConfig } from '../image/types.js';

/** Docker's default PATH, which a stage gets when neither its base nor an ENV sets one. */
export const defaultPath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const defaultShell: readonly string[] = ['/bin/sh', '-c'];

/** The runtime config of a stage as instructions change it, plus what only the build itself tracks. */
export interface StageConfig {
  config: ContainerConfig;
  /** MAINTAINER's value, which goes into the image's top-level `author`. */
  author?: string;
  /** Whether this stage set CMD itself: a later ENTRYPOINT only clears an inherited CMD (BuildKit). */
  cmdSet: boolean;
}

export function envList(config: ContainerConfig): string[] {
  return config.Env ?? [];
}

/** Replaces or appends `KEY=value`, keeping the order of first definition as Docker does. */
export function setEnv(env: readonly string[], key: string, value: string): string[] {
  const entry = `${key}=${value}`;
  const at = env.findIndex((existing) => existing.slice(0, existing.indexOf('=')) === key);
  return at < 0 ? [...env, entry] : env.map((existing, index) => (index === at ? entry : existing));
}

export function lookupEnv(env: readonly string[], key: string): string | undefined {
  const entry = env.find((existing) => existing.slice(0, existing.indexOf('=')) === key);
  return entry === undefined ? undefined : entry.slice(entry.indexOf('=') + 1);
}

/** Shell form runs through the stage's SHELL (default `/bin/sh -c`); exec form is taken as is. */
export function commandArgv(cmd: CommandLine, shell: readonly string[] | undefined): string[] {
  return cmd.form === 'exec' ? [...cmd.args] : [...(shell ?? defaultShell), cmd.command];
}

/** WORKDIR is relative to the previous one, and cleaned (BuildKit's rule). */
export function resolveWorkdir(previous: string | undefined, path: string): string {
  return posix.resolve(previous || '/', path);
}

/**
 * Applies an (already expanded) instruction's effect on the image config. Instructions that only
 * change the filesystem (RUN, COPY, ADD) or nothing at all (ARG, FROM) leave it as it is; WORKDIR
 * changes the config here and the filesystem in the executor.
 */
export function applyToConfig(stage: StageConfig, instruction: Instruction): StageConfig {
  const config = stage.config;
  switch (instruction.kind) {
    case 'env': {
      let env = envList(config);
      for (const pair of instruction.pairs) env = setEnv(env, pair.key, pair.value);
      return { ...stage, config: { ...config, Env: env } };
    }
    case 'label': {
      const labels = { ...(config.Labels ?? {}) };
      for (const pair of instruction.labels) labels[pair.key] = pair.value;
      return { ...stage, config: { ...config, Labels: labels } };
    }
    case 'expose': {
      const ports = { ...(config.ExposedPorts ?? {}) };
      for (const spec of instruction.ports ?? []) for (const key of exposedPortKeys(spec)) ports[key] = {};
      return { ...stage, config: { ...config, ExposedPorts: ports } };
    }
    case 'volume': {
      const volumes = { ...(config.Volumes ?? {}) };
      for (const volume of instruction.volumes) {
        if (volume.trim() === '') throw new Error('VOLUME specified can not be an empty string');
        volumes[volume] = {};
      }
      return { ...stage, config: { ...config, Volumes: volumes } };
    }
    case 'user':
      return { ...stage, config: { ...config, User: instruction.user } };
    case 'workdir':
      return { ...stage, config: { ...config, WorkingDir: resolveWorkdir(config.WorkingDir, instruction.path) } };
    case 'cmd':
      return { ...stage, cmdSet: true, config: { ...config, Cmd: commandArgv(instruction.cmd, config.Shell) } };
    case 'entrypoint': {
      const entrypoint = commandArgv(instruction.cmd, config.Shell);
      return {
        ...stage,
        config: { ...config, Entrypoint: entrypoint.length === 0 ? null : entrypoint, ...(stage.cmdSet ? {} : { Cmd: null }) },
      };
    }
    case 'shell':
      return { ...stage, config: { ...config, Shell: [...instruction.shell] } };
    case 'stopsignal':
      return { ...stage, config: { ...config, StopSignal: instruction.signal } };
    case 'healthcheck': {
      const { test, interval, timeout, startPeriod, startInterval, retries } = instruction;
      return {
        ...stage,
        config: {
          ...config,
          Healthcheck: {
            Test: [...test],
            ...(interval === undefined ? {} : { Interval: interval }),
            ...(timeout === undefined ? {} : { Timeout: timeout }),
            ...(startPeriod === undefined ? {} : { StartPeriod: startPeriod }),
            ...(startInterval === undefined ? {} : { StartInterval: startInterval }),
            ...(retries === undefined ? {} : { Retries: retries }),
          },
        },
      };
    }
    case 'onbuild':
      return { ...stage, config: { ...config, OnBuild: [...(config.OnBuild ?? []), instruction.expression] } };
    case 'maintainer':
      return { ...stage, author: instruction.maintainer };
    case 'from':
    case 'arg':
    case 'run':
    case 'copy':
    case 'add':
      return stage;
  }
}

/**
 * The config a new stage starts from: its base's, with ONBUILD triggers consumed (they run now and
 * are not inherited) and a PATH when the base has none.
 */
export function stageConfigFromBase(base: ContainerConfig | undefined): StageConfig {
  const config: ContainerConfig = { ...(base ?? {}) };
  if (lookupEnv(envList(config), 'PATH') === undefined) config.Env = setEnv(envList(config), 'PATH', defaultPath);
  delete config.OnBuild;
  return { config, cmdSet: false };
}
