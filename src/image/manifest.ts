import { canonicalJson } from './canonical-json.js';
import { MediaType, isImageManifestMediaType, isIndexMediaType, type ManifestMediaType } from './media-types.js';
import type { Descriptor, ImageIndex, ImageManifest, Manifest, Platform } from './types.js';

/**
 * Reading the four manifest media types from raw bytes, with validation that names the broken
 * field. A manifest may omit `mediaType` (umoci writes none); it is then taken from the
 * Content-Type a registry sent, or inferred from the document's shape.
 */

export class InvalidManifestError extends Error {
  constructor(
    /** Where the document came from, e.g. `manifest sha256:…` or `oci layout /x index.json`. */
    readonly source: string,
    readonly reason: string,
  ) {
    super(`${source}: ${reason}`);
    this.name = 'InvalidManifestError';
  }
}

export type ParsedManifest =
  | { kind: 'image'; mediaType: ManifestMediaType; manifest: ImageManifest }
  | { kind: 'index'; mediaType: ManifestMediaType; index: ImageIndex };

const mediaTypePattern = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;
const digestSyntax = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
/** Registered algorithms must have exactly this many lower-case hex characters (OCI descriptor.md). */
const registeredDigestLengths: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

export interface ParseManifestOptions {
  /** The Content-Type header that came with the bytes, if any (parameters are ignored). */
  contentType?: string;
  /** Names the document in errors. */
  source?: string;
}

export function parseManifest(raw: Buffer | string, options: ParseManifestOptions = {}): ParsedManifest {
  const source = options.source ?? 'manifest';
  const document = parseJsonObject(raw, source);
  if (document.schemaVersion === 1) {
    throw new InvalidManifestError(source, 'Docker image manifest schema 1 is not supported (push the image again with a current client)');
  }
  if (document.schemaVersion !== 2) {
    throw new InvalidManifestError(source, `schemaVersion must be 2, got ${JSON.stringify(document.schemaVersion)}`);
  }
  const mediaType = resolveManifestMediaType(document, options.contentType, source);
  if (isIndexMediaType(mediaType)) {
    return { kind: 'index', mediaType, index: validateIndex(document, source) };
  }
  return { kind: 'image', mediaType, manifest: validateImageManifest(document, source) };
}

/** Parses bytes that must be an image manifest (not an index). */
export function parseImageManifest(raw: Buffer | string, options: ParseManifestOptions = {}): ImageManifest {
  const parsed = parseManifest(raw, options);
  if (parsed.kind !== 'image') {
    throw new InvalidManifestError(options.source ?? 'manifest', `expected an image manifest, got an index (${parsed.mediaType})`);
  }
  return parsed.manifest;
}

/** Parses bytes that must be an index or manifest list. */
export function parseImageIndex(raw: Buffer | string, options: ParseManifestOptions = {}): ImageIndex {
  const parsed = parseManifest(raw, options);
  if (parsed.kind !== 'index') {
    throw new InvalidManifestError(options.source ?? 'manifest', `expected an image index, got an image manifest (${parsed.mediaType})`);
  }
  return parsed.index;
}

/** The bytes kiln writes for a manifest or index: canonical JSON. */
export function serializeManifest(manifest: Manifest): Buffer {
  return canonicalJson(manifest);
}

/** The media type a parsed document has, inferring it as parseManifest does. */
export function manifestMediaTypeOf(manifest: Manifest): ManifestMediaType {
  return resolveManifestMediaType(manifest as unknown as Record<string, unknown>, undefined, 'manifest');
}

function resolveManifestMediaType(document: Record<string, unknown>, contentType: string | undefined, source: string): ManifestMediaType {
  const declared = document.mediaType;
  if (declared !== undefined) {
    if (typeof declared !== 'string') throw new InvalidManifestError(source, 'mediaType must be a string');
    if (isIndexMediaType(declared) || isImageManifestMediaType(declared)) return declared as ManifestMediaType;
    throw new InvalidManifestError(source, `unsupported manifest media type "${declared}"`);
  }
  const header = contentType?.split(';')[0]?.trim().toLowerCase();
  if (header !== undefined && (isIndexMediaType(header) || isImageManifestMediaType(header))) return header as ManifestMediaType;
  if (Array.isArray(document.manifests)) return MediaType.ociIndex;
  if (document.config !== null && typeof document.config === 'object') {
    const configType = (document.config as Record<string, unknown>).mediaType;
    return configType === MediaType.dockerConfig ? MediaType.dockerManifest : MediaType.ociManifest;
  }
  throw new InvalidManifestError(source, 'neither an image manifest (no "config") nor an index (no "manifests")');
}

function validateImageManifest(document: Record<string, unknown>, source: string): ImageManifest {
  const config = validateDescriptor(document.config, 'config', source);
  if (!Array.isArray(document.layers)) throw new InvalidManifestError(source, 'layers must be an array');
  const layers = document.layers.map((layer, i) => validateDescriptor(layer, `layers[${i}]`, source));
  if (document.subject !== undefined) validateDescriptor(document.subject, 'subject', source);
  validateAnnotations(document.annotations, 'annotations', source);
  optionalMediaTypeField(document.artifactType, 'artifactType', source);
  return { ...(document as unknown as ImageManifest), config, layers };
}

function validateIndex(document: Record<string, unknown>, source: string): ImageIndex {
  if (!Array.isArray(document.manifests)) throw new InvalidManifestError(source, 'manifests must be an array');
  const manifests = document.manifests.map((entry, i) => {
    const descriptor = validateDescriptor(entry, `manifests[${i}]`, source);
    if (descriptor.platform !== undefined) validatePlatform(descriptor.platform, `manifests[${i}].platform`, source);
    return descriptor;
  });
  if (document.subject !== undefined) validateDescriptor(document.subject, 'subject', source);
  validateAnnotations(document.annotations, 'annotations', source);
  optionalMediaTypeField(document.artifactType, 'artifactType', source);
  return { ...(document as unknown as ImageIndex), manifests };
}

/** Checks one descriptor's required fields; `at` names it in the error (`layers[2]`). */
export function validateDescriptor(value: unknown, at: string, source: string): Descriptor {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidManifestError(source, `${at} must be a descriptor object`);
  }
  const descriptor = value as Record<string, unknown>;
  if (typeof descriptor.mediaType !== 'string' || !mediaTypePattern.test(descriptor.mediaType)) {
    throw new InvalidManifestError(source, `${at}.mediaType ${JSON.stringify(descriptor.mediaType)} is not a valid media type`);
  }
  if (typeof descriptor.digest !== 'string') throw new InvalidManifestError(source, `${at}.digest must be a string`);
  checkDescriptorDigest(descriptor.digest, `${at}.digest`, source);
  if (typeof descriptor.size !== 'number' || !Number.isSafeInteger(descriptor.size) || descriptor.size < 0) {
    throw new InvalidManifestError(source, `${at}.size ${JSON.stringify(descriptor.size)} must be a non-negative integer`);
  }
  if (descriptor.urls !== undefined && !(Array.isArray(descriptor.urls) && descriptor.urls.every((u) => typeof u === 'string'))) {
    throw new InvalidManifestError(source, `${at}.urls must be an array of strings`);
  }
  validateAnnotations(descriptor.annotations, `${at}.annotations`, source);
  optionalMediaTypeField(descriptor.artifactType, `${at}.artifactType`, source);
  return descriptor as unknown as Descriptor;
}

/** OCI digest grammar, plus the exact hex length for the algorithms the spec registers. */
export function checkDescriptorDigest(digest: string, at: string, source: string): void {
  if (!digestSyntax.test(digest)) throw new InvalidManifestError(source, `${at} "${digest}" is not a valid digest`);
  const [algorithm, encoded] = digest.split(':', 2) as [string, string];
  const length = registeredDigestLengths[algorithm];
  if (length !== undefined && (encoded.length !== length || !/^[a-f0-9]+$/.test(encoded))) {
    throw new InvalidManifestError(source, `${at} "${digest}": a ${algorithm} digest is ${length} lower-case hex characters`);
  }
}

function validatePlatform(value: unknown, at: string, source: string): Platform {
  if (value === null || typeof value !== 'object') throw new InvalidManifestError(source, `${at} must be an object`);
  const platform = value as Record<string, unknown>;
  if (typeof platform.architecture !== 'string') throw new InvalidManifestError(source, `${at}.architecture must be a string`);
  if (typeof platform.os !== 'string') throw new InvalidManifestError(source, `${at}.os must be a string`);
  if (platform.variant !== undefined && typeof platform.variant !== 'string') {
    throw new InvalidManifestError(source, `${at}.variant must be a string`);
  }
  return platform as unknown as Platform;
}

function validateAnnotations(value: unknown, at: string, source: string): void {
  if (value === undefined) return;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidManifestError(source, `${at} must be an object of strings`);
  }
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== 'string') throw new InvalidManifestError(source, `${at}["${key}"] must be a string`);
  }
}

function optionalMediaTypeField(value: unknown, at: string, source: string): void {
  if (value === undefined) return;
  if (typeof value !== 'string' || !mediaTypePattern.test(value)) {
    throw new InvalidManifestError(source, `${at} ${JSON.stringify(value)} is not a valid media type`);
  }
}

export function parseJsonObject(raw: Buffer | string, source: string): Record<string, unknown> {
  let document: unknown;
  try {
    document = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
  } catch (error) {
    throw new InvalidManifestError(source, `not valid JSON (${(error as Error).message})`);
  }
  if (document === null || typeof document !== 'object' || Array.isArray(document)) {
    throw new InvalidManifestError(source, 'expected a JSON object');
  }
  return document as Record<string, unknown>;
}
