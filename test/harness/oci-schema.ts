/**
 * A test-only validator for OCI documents: the image-spec's draft-04 JSON schemas (the corpus in
 * test/fixtures/corpora/oci-image-spec-schema) plus the checks upstream's Go validator makes beyond
 * the schemas (FORMAT.md): the JSON must parse; `data` must be padded standard base64 (Go's []byte
 * decoding); config Env entries must be NAME=value; registered digest algorithms must have their
 * exact lower-case hex length; `uri` and `date-time` formats are asserted.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import AjvDraft04Module from 'ajv-draft-04';
import addFormatsModule from 'ajv-formats';
import type { ValidateFunction } from 'ajv';

export const ociCorpusDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/corpora/oci-image-spec-schema');

// Both packages are CommonJS with a `default` export; under NodeNext the namespace object arrives.
type AjvClass = typeof import('ajv-draft-04').default;
type AddFormats = typeof import('ajv-formats').default;
const Ajv = ((AjvDraft04Module as unknown as { default?: AjvClass }).default ?? AjvDraft04Module) as AjvClass;
const addFormats = ((addFormatsModule as unknown as { default?: AddFormats }).default ?? addFormatsModule) as AddFormats;

/** Aliases from upstream's schema/schema.go: $refs use both file names and these URLs. */
const schemaAliases: Record<string, string[]> = {
  'image-manifest-schema.json': ['https://opencontainers.org/schema/image/manifest'],
  'image-index-schema.json': ['https://opencontainers.org/schema/image/index'],
  'config-schema.json': ['https://opencontainers.org/schema/image/config'],
  'content-descriptor.json': [
    'https://opencontainers.org/schema/descriptor',
    'https://opencontainers.org/schema/image/content-descriptor.json',
  ],
  'image-layout-schema.json': ['https://opencontainers.org/schema/image/layout'],
  'defs-descriptor.json': [
    'https://opencontainers.org/schema/image/descriptor/mediaType',
    'https://opencontainers.org/schema/defs-descriptor.json',
    'https://opencontainers.org/schema/image/defs-descriptor.json',
  ],
  'defs.json': [
    'https://opencontainers.org/schema/defs.json',
    'https://opencontainers.org/schema/image/defs.json',
    'https://opencontainers.org/schema/image/descriptor/defs.json',
  ],
};

export const schemaForMediaType: Record<string, string> = {
  'application/vnd.oci.image.manifest.v1+json': 'image-manifest-schema.json',
  'application/vnd.oci.image.index.v1+json': 'image-index-schema.json',
  'application/vnd.oci.image.config.v1+json': 'config-schema.json',
  'application/vnd.oci.descriptor.v1+json': 'content-descriptor.json',
  'application/vnd.oci.layout.header.v1+json': 'image-layout-schema.json',
};

/** Docker v2.2 media types and their OCI equivalents (upstream's backwards-compatibility test). */
export const dockerToOciMediaTypes: Record<string, string> = {
  'application/vnd.docker.distribution.manifest.list.v2+json': 'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json': 'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.docker.container.image.v1+json': 'application/vnd.oci.image.config.v1+json',
};

export interface ValidationResult {
  valid: boolean;
  errors: string[];
}

export interface OciValidator {
  /** Validates `text` as a document of `mediaType` (one of the OCI types in schemaForMediaType). */
  validate(mediaType: string, text: string | Buffer): ValidationResult;
  /** As validate, but Docker media types are first rewritten to their OCI equivalents, as upstream's compat test does. */
  validateCompat(mediaType: string, text: string | Buffer): ValidationResult;
}

/** Strips `id` keywords so that one schema can be registered under several keys without clashes. */
function withoutIds(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutIds);
  if (value !== null && typeof value === 'object') {
    const copy: Record<string, unknown> = {};
    for (const [key, member] of Object.entries(value)) {
      if (key === 'id' && typeof member === 'string') continue;
      copy[key] = key === 'properties' ? propertiesWithoutIds(member) : withoutIds(member);
    }
    return copy;
  }
  return value;
}

/** Inside `properties` the keys are property names (a property may be called `id`), not keywords. */
function propertiesWithoutIds(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([name, schema]) => [name, withoutIds(schema)]));
}

export function createOciValidator(corpusDir: string = ociCorpusDir): OciValidator {
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true });
  addFormats(ajv);
  const schemaDir = path.join(corpusDir, 'schema');
  for (const file of readdirSync(schemaDir).filter((name) => name.endsWith('.json'))) {
    const schema = JSON.parse(readFileSync(path.join(schemaDir, file), 'utf8')) as object;
    for (const key of [file, ...(schemaAliases[file] ?? [])]) ajv.addSchema(withoutIds(schema) as object, key);
  }
  const compiled = new Map<string, ValidateFunction>();
  const validatorFor = (mediaType: string): ValidateFunction => {
    const schemaFile = schemaForMediaType[mediaType];
    if (schemaFile === undefined) throw new Error(`no OCI schema for media type ${mediaType}`);
    let validate = compiled.get(schemaFile);
    if (validate === undefined) {
      validate = ajv.getSchema(schemaFile);
      if (validate === undefined) throw new Error(`schema ${schemaFile} did not compile`);
      compiled.set(schemaFile, validate);
    }
    return validate;
  };

  const validate = (mediaType: string, text: string | Buffer): ValidationResult => {
    const source = typeof text === 'string' ? text : text.toString('utf8');
    let document: unknown;
    try {
      document = JSON.parse(source);
    } catch (error) {
      return { valid: false, errors: [`invalid JSON: ${(error as Error).message}`] };
    }
    const validateSchema = validatorFor(mediaType);
    const errors: string[] = [];
    if (!validateSchema(document)) {
      for (const error of validateSchema.errors ?? []) errors.push(`schema: ${error.instancePath || '/'} ${error.message ?? ''}`);
    }
    errors.push(...extraChecks(mediaType, document));
    return { valid: errors.length === 0, errors };
  };

  return {
    validate,
    validateCompat(mediaType: string, text: string | Buffer): ValidationResult {
      let source = typeof text === 'string' ? text : text.toString('utf8');
      for (const [docker, oci] of Object.entries(dockerToOciMediaTypes)) source = source.split(docker).join(oci);
      return validate(dockerToOciMediaTypes[mediaType] ?? mediaType, source);
    },
  };
}

const paddedBase64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const registeredDigestLengths: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

/** The checks upstream's Go validator makes besides the schema (FORMAT.md, "What valid means"). */
function extraChecks(mediaType: string, document: unknown): string[] {
  const errors: string[] = [];
  if (document === null || typeof document !== 'object') return errors;
  const record = document as Record<string, unknown>;
  const descriptors: Array<[string, unknown]> = [];
  switch (mediaType) {
    case 'application/vnd.oci.descriptor.v1+json':
      descriptors.push(['', record]);
      break;
    case 'application/vnd.oci.image.manifest.v1+json':
      descriptors.push(['/config', record.config], ['/subject', record.subject]);
      if (Array.isArray(record.layers)) record.layers.forEach((layer, i) => descriptors.push([`/layers/${i}`, layer]));
      break;
    case 'application/vnd.oci.image.index.v1+json':
      descriptors.push(['/subject', record.subject]);
      if (Array.isArray(record.manifests)) record.manifests.forEach((entry, i) => descriptors.push([`/manifests/${i}`, entry]));
      break;
    case 'application/vnd.oci.image.config.v1+json': {
      const env = (record.config as Record<string, unknown> | undefined)?.Env;
      if (Array.isArray(env)) {
        env.forEach((entry, i) => {
          if (typeof entry !== 'string' || !/^[^=]+=.*$/.test(entry)) errors.push(`go-extra: /config/Env/${i} ${JSON.stringify(entry)} is not NAME=value`);
        });
      }
      break;
    }
    default:
      break;
  }
  for (const [at, value] of descriptors) {
    if (value === null || typeof value !== 'object') continue;
    const descriptor = value as Record<string, unknown>;
    if (typeof descriptor.data === 'string' && !paddedBase64.test(descriptor.data)) {
      errors.push(`go-typed-unmarshal: ${at}/data is not padded standard base64`);
    }
    if (typeof descriptor.digest === 'string') {
      const [algorithm, encoded = ''] = descriptor.digest.split(':', 2) as [string, string?];
      const length = registeredDigestLengths[algorithm];
      if (length !== undefined && !new RegExp(`^[a-f0-9]{${length}}$`).test(encoded)) {
        errors.push(`go-extra: ${at}/digest ${descriptor.digest} is not ${length} lower-case hex characters`);
      }
    }
  }
  return errors;
}

/** Created once when a test file imports the harness; the validator itself holds no per-test state. */
export const ociValidator: OciValidator = createOciValidator();

/** Throws with the validator's messages unless `text` is a valid document of `mediaType` (Docker types via compat). */
export function assertValidOci(mediaType: string, text: string | Buffer): void {
  const result =
    dockerToOciMediaTypes[mediaType] !== undefined ? ociValidator.validateCompat(mediaType, text) : ociValidator.validate(mediaType, text);
  if (!result.valid) throw new Error(`not a valid ${mediaType}:\n  ${result.errors.join('\n  ')}`);
}
