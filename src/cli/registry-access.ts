import type { RegistryOptions } from '../build/options.js';
import type { RegistryAccess } from '../registry/connect.js';
import { DockerConfigCredentialStore } from '../registry/credentials.js';
import { EndpointFactory } from '../registry/endpoints.js';
import type { Output } from './program.js';

/**
 * Opens what talking to registries needs (TLS material, credentials) and hands it to `use`,
 * closing the connections afterwards whatever happens.
 */
export async function withRegistryAccess<T>(
  options: RegistryOptions,
  env: NodeJS.ProcessEnv,
  stderr: Output,
  use: (access: RegistryAccess) => Promise<T>,
): Promise<T> {
  const endpoints = new EndpointFactory(options);
  try {
    const credentials = await DockerConfigCredentialStore.load({ env });
    return await use({ endpoints, credentials, warn: (line) => stderr.write(`kiln: ${line}\n`) });
  } finally {
    await endpoints.close();
  }
}
