/** A private Docker config for one CI job: the runner's existing logins plus the job's own. */
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { dockerConfigPath, mergeDockerConfigAuth } from '../registry/credentials.js';

export interface RegistryLogin {
  registry: string;
  username: string;
  password: string;
}

/**
 * Makes `dir` a DOCKER_CONFIG directory: a copy of the config the job already had (logins made
 * by earlier steps keep working), with `logins` merged in. The user's own file is never touched.
 */
export async function writeDockerConfig(dir: string, logins: readonly RegistryLogin[], env: NodeJS.ProcessEnv): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'config.json');
  try {
    await copyFile(dockerConfigPath(env), file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  for (const login of logins) await mergeDockerConfigAuth(file, login.registry, login.username, login.password);
  return dir;
}
