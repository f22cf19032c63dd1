import type { Command } from 'commander';
import type { RegistryOptions } from '../build/options.js';
import { addRegistryFlags, type ParseRegistryValues, type RegistryFlagValues } from './registry-flags.js';
import type { ImageLocation } from '../copy/copy-image.js';
import { InvalidLocationError, parseLayoutLocation } from '../layout/location.js';
import { UsageError } from './values.js';

export interface CopyRequest {
  source: ImageLocation;
  destination: ImageLocation;
  /** `os/arch[/variant]`: copy that one image of an index instead of the whole index. */
  platform?: string;
  registry: RegistryOptions;
}

export interface CopyFlagValues extends RegistryFlagValues {
  platform?: string;
}

export function addCopyFlags(command: Command): Command {
  command.option('--platform <os/arch[/variant]>', 'copy only this platform of an index (default: the whole index)');
  return addRegistryFlags(command);
}

/** skopeo's transport syntax: `oci:…` and `docker-archive:…` (src/layout/location.ts), else a registry reference. */
export function parseImageLocation(text: string): ImageLocation {
  try {
    const layout = parseLayoutLocation(text);
    if (layout !== undefined) return layout;
  } catch (error) {
    if (error instanceof InvalidLocationError) throw new UsageError(error.message);
    throw error;
  }
  const reference = text.startsWith('docker://') ? text.slice('docker://'.length) : text;
  if (reference.length === 0 || /^[a-z][a-z0-9+.-]*:\/\//i.test(reference)) {
    throw new UsageError(`unsupported image location "${text}": use docker://REF, REF, oci:DIR[:tag] or docker-archive:FILE[:ref]`);
  }
  return { transport: 'registry', reference };
}

export function toCopyRequest(
  source: string,
  destination: string,
  values: CopyFlagValues,
  env: NodeJS.ProcessEnv,
  parseRegistry: ParseRegistryValues,
): CopyRequest {
  const request: CopyRequest = {
    source: parseImageLocation(source),
    destination: parseImageLocation(destination),
    registry: parseRegistry(values, env),
    ...(values.platform === undefined ? {} : { platform: values.platform }),
  };
  return request;
}
