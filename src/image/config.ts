import { canonicalJson } from './canonical-json.js';
import { checkDescriptorDigest, parseJsonObject, InvalidManifestError } from './manifest.js';
import type { ImageConfig } from './types.js';

/** Image configs (OCI config.md; Docker's image JSON has the same shape). */

export class InvalidImageConfigError extends Error {
  constructor(
    readonly source: string,
    readonly reason: string,
  ) {
    super(`${source}: ${reason}`);
    this.name = 'InvalidImageConfigError';
  }
}

export interface ParseImageConfigOptions {
  /** The number of layers in the manifest: rootfs.diff_ids must have one entry per layer. */
  layerCount?: number;
  source?: string;
}

const envEntryPattern = /^[^=]+=.*$/;

export function parseImageConfig(raw: Buffer | string, options: ParseImageConfigOptions = {}): ImageConfig {
  const source = options.source ?? 'image config';
  let document: Record<string, unknown>;
  try {
    document = parseJsonObject(raw, source);
  } catch (error) {
    if (error instanceof InvalidManifestError) throw new InvalidImageConfigError(source, error.reason);
    throw error;
  }
  return validateImageConfig(document, options.layerCount, source);
}

export function validateImageConfig(document: Record<string, unknown>, layerCount: number | undefined, source: string): ImageConfig {
  for (const field of ['architecture', 'os'] as const) {
    if (typeof document[field] !== 'string') throw new InvalidImageConfigError(source, `${field} must be a string`);
  }
  for (const field of ['variant', 'created', 'author', 'os.version'] as const) {
    if (document[field] !== undefined && typeof document[field] !== 'string') {
      throw new InvalidImageConfigError(source, `${field} must be a string`);
    }
  }
  const rootfs = document.rootfs as Record<string, unknown> | undefined;
  if (rootfs === null || typeof rootfs !== 'object') throw new InvalidImageConfigError(source, 'rootfs is missing');
  if (rootfs.type !== 'layers') throw new InvalidImageConfigError(source, `rootfs.type must be "layers", got ${JSON.stringify(rootfs.type)}`);
  if (!Array.isArray(rootfs.diff_ids)) throw new InvalidImageConfigError(source, 'rootfs.diff_ids must be an array');
  rootfs.diff_ids.forEach((diffId, i) => {
    if (typeof diffId !== 'string') throw new InvalidImageConfigError(source, `rootfs.diff_ids[${i}] must be a string`);
    try {
      checkDescriptorDigest(diffId, `rootfs.diff_ids[${i}]`, source);
    } catch (error) {
      if (error instanceof InvalidManifestError) throw new InvalidImageConfigError(source, error.reason);
      throw error;
    }
  });
  if (layerCount !== undefined && rootfs.diff_ids.length !== layerCount) {
    throw new InvalidImageConfigError(
      source,
      `rootfs.diff_ids has ${rootfs.diff_ids.length} entries but the manifest has ${layerCount} layers`,
    );
  }
  if (document.history !== undefined && !Array.isArray(document.history)) {
    throw new InvalidImageConfigError(source, 'history must be an array');
  }
  const container = document.config;
  if (container !== undefined && container !== null) {
    if (typeof container !== 'object' || Array.isArray(container)) throw new InvalidImageConfigError(source, 'config must be an object');
    const env = (container as Record<string, unknown>).Env;
    if (env !== undefined && env !== null) {
      if (!Array.isArray(env)) throw new InvalidImageConfigError(source, 'config.Env must be an array');
      env.forEach((entry, i) => {
        if (typeof entry !== 'string' || !envEntryPattern.test(entry)) {
          throw new InvalidImageConfigError(source, `config.Env[${i}] ${JSON.stringify(entry)} is not NAME=value`);
        }
      });
    }
  }
  return document as unknown as ImageConfig;
}

/** The bytes kiln writes for a config: canonical JSON. */
export function serializeImageConfig(config: ImageConfig): Buffer {
  return canonicalJson(config);
}
