import type { CliDependencies } from './program.js';
import { UsageError } from './values.js';
import type { RegistryFlagValues } from './registry-flags.js';
import type { RegistryOptions } from '../build/options.js';

export function parseRegistryValues(values: RegistryFlagValues): RegistryOptions {
  return {
    insecure: values.insecure ?? false,
    insecurePull: values.insecurePull ?? false,
    insecureRegistries: values.insecureRegistry ?? [],
    skipTlsVerify: values.skipTlsVerify ?? false,
    skipTlsVerifyPull: values.skipTlsVerifyPull ?? false,
    skipTlsVerifyRegistries: values.skipTlsVerifyRegistry ?? [],
    registryCertificates: {},
    registryClientCerts: {},
    registryMirrors: values.registryMirror ?? [],
    registryMaps: {},
    skipDefaultRegistryFallback: values.skipDefaultRegistryFallback ?? false,
    imageDownloadRetry: values.imageDownloadRetry ?? 0,
    pushRetry: values.pushRetry ?? 0,
  };
}

/** The real world: process streams and environment, the registry, the builder. */
export function productionDependencies(version: string): CliDependencies {
  return {
    version,
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
    parseRegistry: parseRegistryValues,
    async build() {
      throw new UsageError('building images is not available in this version yet (the executor lands with issue 5); use `kiln copy` or --dry-run');
    },
    async copy() {
      throw new UsageError('copy is not wired yet');
    },
  };
}
