/**
 * Registry credentials for the job, merged into the Docker config the build reads: a GitLab runner
 * (or the user, through DOCKER_AUTH_CONFIG or an earlier script line) may already have written
 * entries there, and those must survive.
 */
import { dockerConfigPath, mergeDockerConfigAuth } from '../../registry/credentials.js';
import type { RegistryLogin } from './job-inputs.js';

/** Merges each login into `$DOCKER_CONFIG/config.json` (or ~/.docker/config.json); returns the file. */
export async function writeRegistryLogins(logins: readonly RegistryLogin[], env: NodeJS.ProcessEnv): Promise<string> {
  const path = dockerConfigPath(env);
  for (const login of logins) await mergeDockerConfigAuth(path, login.registry, login.username, login.password);
  return path;
}
