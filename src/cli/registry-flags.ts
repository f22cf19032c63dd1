import type { Command } from 'commander';
import type { RegistryOptions } from '../build/options.js';
import { collect, nonNegativeInteger, parseBoolean } from './values.js';

/** The raw values commander collects for kaniko's registry flags. */
export interface RegistryFlagValues {
  insecure?: boolean;
  insecurePull?: boolean;
  insecureRegistry?: string[];
  skipTlsVerify?: boolean;
  skipTlsVerifyPull?: boolean;
  skipTlsVerifyRegistry?: string[];
  registryCertificate?: string[];
  registryClientCert?: string[];
  registryMirror?: string[];
  registryMap?: string[];
  skipDefaultRegistryFallback?: boolean;
  imageDownloadRetry?: number;
  pushRetry?: number;
}

/** Registry flags shared by `build` and `copy`, with kaniko's names. */
export function addRegistryFlags(command: Command): Command {
  return command
    .option('--insecure [bool]', 'push to registries over plain HTTP', parseBoolean('insecure'))
    .option('--insecure-pull [bool]', 'pull from registries over plain HTTP', parseBoolean('insecure-pull'))
    .option('--insecure-registry <host>', 'use plain HTTP for this registry (repeatable)', collect)
    .option('--skip-tls-verify [bool]', 'push over HTTPS without verifying certificates', parseBoolean('skip-tls-verify'))
    .option('--skip-tls-verify-pull [bool]', 'pull over HTTPS without verifying certificates', parseBoolean('skip-tls-verify-pull'))
    .option('--skip-tls-verify-registry <host>', 'skip certificate verification for this registry (repeatable)', collect)
    .option('--registry-certificate <host=path>', 'CA bundle to trust for a registry (repeatable)', collect)
    .option('--registry-client-cert <host=cert,key>', 'client certificate for a registry (repeatable)', collect)
    .option('--registry-mirror <host>', 'mirror for docker.io pulls (repeatable; env KANIKO_REGISTRY_MIRROR)', collect)
    .option('--registry-map <orig=new;...>', 'replace a registry by others for pulls (repeatable)', collect)
    .option('--skip-default-registry-fallback [bool]', 'fail instead of falling back to the original registry after mirrors', parseBoolean('skip-default-registry-fallback'))
    .option('--image-download-retry <n>', 'retries for pulling the base image', nonNegativeInteger('image-download-retry'))
    .option('--push-retry <n>', 'retries for pushing', nonNegativeInteger('push-retry'));
}

export type ParseRegistryValues = (values: RegistryFlagValues, env: NodeJS.ProcessEnv) => RegistryOptions;
