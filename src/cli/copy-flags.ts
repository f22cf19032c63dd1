import type { Command } from 'commander';
import type { RegistryOptions } from '../build/options.js';
import { addRegistryFlags, type ParseRegistryValues, type RegistryFlagValues } from './registry-flags.js';
import { UsageError } from './values.js';

/** Where `kiln copy` reads or writes an image, in skopeo's transport syntax. */
export type ImageLocation =
  | { transport: 'registry'; reference: string }
  | { transport: 'oci'; path: string; tag?: string }
  | { transport: 'docker-archive'; path: string; reference?: string };

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

/**
 * `oci:DIR[:tag]` and `docker-archive:FILE[:ref]` split at the first `:` after the path, as skopeo
 * does; anything else is a registry reference, with or without `docker://`.
 */
export function parseImageLocation(text: string): ImageLocation {
  if (text.startsWith('oci:')) {
    const [path, tag] = splitPathSuffix(text.slice('oci:'.length), text);
    return tag === undefined ? { transport: 'oci', path } : { transport: 'oci', path, tag };
  }
  if (text.startsWith('docker-archive:')) {
    const [path, reference] = splitPathSuffix(text.slice('docker-archive:'.length), text);
    return reference === undefined ? { transport: 'docker-archive', path } : { transport: 'docker-archive', path, reference };
  }
  const reference = text.startsWith('docker://') ? text.slice('docker://'.length) : text;
  if (reference.length === 0 || /^[a-z][a-z0-9+.-]*:\/\//i.test(reference)) {
    throw new UsageError(`unsupported image location "${text}": use docker://REF, REF, oci:DIR[:tag] or docker-archive:FILE[:ref]`);
  }
  return { transport: 'registry', reference };
}

function splitPathSuffix(rest: string, whole: string): [string, string | undefined] {
  const at = rest.indexOf(':');
  const path = at < 0 ? rest : rest.slice(0, at);
  const suffix = at < 0 ? undefined : rest.slice(at + 1);
  if (path.length === 0) throw new UsageError(`"${whole}": missing path`);
  if (suffix !== undefined && suffix.length === 0) throw new UsageError(`"${whole}": empty name after ':'`);
  return [path, suffix];
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
