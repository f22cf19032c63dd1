import { dryRun } from '../build/dry-run.js';
import { executeBuild } from '../build/executor.js';
import { copyImage } from '../copy/copy-image.js';
import type { CliDependencies } from './program.js';
import { withRegistryAccess } from './registry-access.js';
import { UsageError } from './values.js';
import type { RegistryFlagValues } from './registry-flags.js';
import type { RegistryOptions } from '../build/options.js';
import {
  FlagValueError,
  defaultTransportOptions,
  parseRegistryCertificates,
  parseRegistryClientCerts,
  parseRegistryMaps,
  parseRegistryMirrors,
} from '../registry/endpoints.js';

/** Registry flag values → options; malformed values fail here, before any build work. */
export function parseRegistryValues(values: RegistryFlagValues): RegistryOptions {
  try {
    return {
      ...defaultTransportOptions,
      insecure: values.insecure ?? false,
      insecurePull: values.insecurePull ?? false,
      insecureRegistries: values.insecureRegistry ?? [],
      skipTlsVerify: values.skipTlsVerify ?? false,
      skipTlsVerifyPull: values.skipTlsVerifyPull ?? false,
      skipTlsVerifyRegistries: values.skipTlsVerifyRegistry ?? [],
      registryCertificates: parseRegistryCertificates(values.registryCertificate ?? []),
      registryClientCerts: parseRegistryClientCerts(values.registryClientCert ?? []),
      registryMirrors: parseRegistryMirrors(values.registryMirror ?? []),
      registryMaps: parseRegistryMaps(values.registryMap ?? []),
      skipDefaultRegistryFallback: values.skipDefaultRegistryFallback ?? false,
      imageDownloadRetry: values.imageDownloadRetry ?? 0,
      pushRetry: values.pushRetry ?? 0,
    };
  } catch (error) {
    if (error instanceof FlagValueError) throw new UsageError(error.message);
    throw error;
  }
}

/** The real world: process streams and environment, the registry, the builder. */
export function productionDependencies(version: string): CliDependencies {
  return {
    version,
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
    parseRegistry: parseRegistryValues,
    async build(options) {
      if (options.dryRun) {
        await dryRun(options, { env: process.env, stdin: process.stdin, stdout: process.stdout, warn: (line) => process.stderr.write(`${line}\n`) });
        return;
      }
      const controller = new AbortController();
      const stop = (): void => controller.abort(new Error('the build was interrupted'));
      process.once('SIGINT', stop).once('SIGTERM', stop);
      try {
        const result = await withRegistryAccess(options.registry, process.env, process.stderr, (registry) =>
          executeBuild(options, { env: process.env, stdin: process.stdin, stderr: process.stderr, registry, signal: controller.signal }),
        );
        process.stdout.write(`${result.digest}\n`);
      } finally {
        process.off('SIGINT', stop).off('SIGTERM', stop);
      }
    },
    async copy(request) {
      const digest = await withRegistryAccess(request.registry, process.env, process.stderr, (access) => copyImage(request, access));
      process.stdout.write(`${digest}\n`);
    },
  };
}
