/** Which registry login the action's inputs ask for. */
import { InvalidReferenceError, parseReference } from '../../image/reference.js';
import { CiInputError } from '../cli-options.js';
import type { RegistryLogin } from '../docker-config.js';
import type { ActionInputs } from './inputs.js';

const githubRegistry = 'ghcr.io';

function registryOf(reference: string): string | undefined {
  try {
    return parseReference(reference).registry;
  } catch (error) {
    // An invalid tag is reported by the build with its own message; here it just names no registry.
    if (error instanceof InvalidReferenceError) return undefined;
    throw error;
  }
}

/**
 * `password` given: log in to `registry` (default: the first tag's registry) as `username`
 * (default: the workflow's actor). No password but a tag on ghcr.io: log in there with the job's
 * GITHUB_TOKEN, as docker/login-action is usually configured to.
 */
export function resolveRegistryLogin(inputs: Pick<ActionInputs, 'registry' | 'username' | 'password' | 'githubToken' | 'tags'>, env: NodeJS.ProcessEnv): RegistryLogin | undefined {
  const actor = env.GITHUB_ACTOR ?? '';
  if (inputs.password !== '') {
    const registry = inputs.registry || (inputs.tags[0] ? registryOf(inputs.tags[0]) : undefined);
    if (!registry) throw new CiInputError('input "password" is set but neither "registry" nor a tag names the registry to log in to');
    const username = inputs.username || actor;
    if (!username) throw new CiInputError('input "password" is set without "username" (and GITHUB_ACTOR is not set)');
    return { registry, username, password: inputs.password };
  }
  const wantsGithub = inputs.registry === githubRegistry || inputs.tags.some((tag) => registryOf(tag) === githubRegistry);
  const token = inputs.githubToken || env.GITHUB_TOKEN || '';
  if (!wantsGithub || token === '') return undefined;
  return { registry: githubRegistry, username: inputs.username || actor || 'github-actions', password: token };
}
