/** The task's inputs (named like Docker@2's) from the agent's `INPUT_*` and `ENDPOINT_*` environment. */
import { dirname, isAbsolute, join } from 'node:path';
import { CiInputError, splitArguments } from '../cli-options.js';
import type { RegistryLogin } from '../docker-config.js';
import { parseBooleanInput, parseList } from '../inputs.js';

/** The agent's spelling: upper case, spaces and dots as underscores (task-lib's getInput). */
export function readTaskInput(env: NodeJS.ProcessEnv, name: string): string {
  return (env[`INPUT_${name.replace(/[ .]/g, '_').toUpperCase()}`] ?? '').trim();
}

export interface TaskInputs {
  /** Service connection id, blank when none. */
  containerRegistry: string;
  repository: string;
  dockerfile: string;
  buildContext: string;
  tags: string[];
  push: boolean;
  caps: string[];
  snapshotMode: string;
  arguments: string[];
}

/** Relative paths start at the sources directory the agent names, else at `cwd`. */
export function readTaskInputs(env: NodeJS.ProcessEnv, cwd: string): TaskInputs {
  const base = env.SYSTEM_DEFAULTWORKINGDIRECTORY || cwd;
  const dockerfileInput = readTaskInput(env, 'Dockerfile') || 'Dockerfile';
  if (/[*?[]/.test(dockerfileInput)) throw new CiInputError(`input "Dockerfile": kiln takes a path, not a pattern ("${dockerfileInput}")`);
  const dockerfile = isAbsolute(dockerfileInput) ? dockerfileInput : join(base, dockerfileInput);
  const contextInput = readTaskInput(env, 'buildContext');
  // Docker@2's default `**` means "the Dockerfile's directory".
  const buildContext = contextInput === '' || contextInput === '**' ? dirname(dockerfile) : isAbsolute(contextInput) ? contextInput : join(base, contextInput);
  return {
    containerRegistry: readTaskInput(env, 'containerRegistry'),
    repository: readTaskInput(env, 'repository'),
    dockerfile,
    buildContext,
    tags: parseList(readTaskInput(env, 'tags')),
    push: parseBooleanInput('push', readTaskInput(env, 'push'), true),
    caps: parseList(readTaskInput(env, 'caps')),
    snapshotMode: readTaskInput(env, 'snapshotMode'),
    arguments: splitArguments(readTaskInput(env, 'arguments')),
  };
}

function endpointVariable(env: NodeJS.ProcessEnv, prefix: string, id: string, suffix = ''): string | undefined {
  // The agent upper-cases the id when it names the variable; the input holds it as typed.
  return env[`${prefix}${id.toUpperCase()}${suffix}`] ?? env[`${prefix}${id}${suffix}`];
}

/** The registry a Docker registry service connection names, and its credentials. */
export function readServiceConnection(env: NodeJS.ProcessEnv, id: string): RegistryLogin {
  const registryUrl = endpointVariable(env, 'ENDPOINT_AUTH_PARAMETER_', id, '_REGISTRY') || endpointVariable(env, 'ENDPOINT_URL_', id);
  const username = endpointVariable(env, 'ENDPOINT_AUTH_PARAMETER_', id, '_USERNAME') ?? '';
  const password = endpointVariable(env, 'ENDPOINT_AUTH_PARAMETER_', id, '_PASSWORD') ?? '';
  if (!registryUrl) throw new CiInputError(`service connection "${id}": the agent passed no registry URL (ENDPOINT_URL_${id.toUpperCase()})`);
  return { registry: registryHost(registryUrl), username, password };
}

/** `https://index.docker.io/v1/` → `docker.io`; `https://myacr.azurecr.io/` → `myacr.azurecr.io`. */
export function registryHost(url: string): string {
  const host = url.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/\/.*$/, '');
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? 'docker.io' : host;
}

/** Docker@2's image names: `REGISTRY/REPOSITORY:TAG` for each tag (the repository alone when no connection). */
export function imageReferences(inputs: Pick<TaskInputs, 'repository' | 'tags'>, registry: string | undefined): string[] {
  if (inputs.repository === '') return [];
  const name = registry === undefined ? inputs.repository : `${registry}/${inputs.repository}`;
  return (inputs.tags.length === 0 ? ['latest'] : inputs.tags).map((tag) => `${name}:${tag}`);
}

export function toCliArguments(inputs: TaskInputs, destinations: readonly string[], kilnDir: string): string[] {
  return [
    '--context', inputs.buildContext,
    '--dockerfile', inputs.dockerfile,
    '--kaniko-dir', kilnDir,
    ...destinations.flatMap((destination) => ['--destination', destination]),
    ...(inputs.push ? [] : ['--no-push']),
    ...inputs.caps.flatMap((cap) => ['--cap-add', cap]),
    ...(inputs.snapshotMode === '' ? [] : ['--snapshot-mode', inputs.snapshotMode]),
    ...inputs.arguments,
  ];
}
