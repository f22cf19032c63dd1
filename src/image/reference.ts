/**
 * Image references, parsed and normalised the way Docker's distribution/reference does
 * (ParseNormalizedNamed): `busybox` is `docker.io/library/busybox:latest`, a first path component is
 * a registry only when it contains `.` or `:`, is `localhost`, or has upper-case letters.
 *
 * Hand-written from the documented grammar: no maintained npm package matches Docker's
 * normalisation rules exactly (the `library/` prefix, `index.docker.io`, the 64-hex refusal).
 */

export const dockerHubRegistry = 'docker.io';
const legacyDockerHubRegistry = 'index.docker.io';
const officialRepositoryPrefix = 'library/';
export const defaultTag = 'latest';
const nameTotalLengthMax = 255;

// The grammar, piece by piece (distribution/reference's documented regular expressions).
const alphanumeric = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const remoteName = `${pathComponent}(?:/${pathComponent})*`;
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const ipv6Host = '\\[(?:[a-fA-F0-9:]+)\\]';
const host = `(?:${domainComponent}(?:\\.${domainComponent})*|${ipv6Host})`;
const domainAndPort = `${host}(?::[0-9]+)?`;
const tagPattern = '[\\w][\\w.-]{0,127}';
const digestPattern = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';

const anchoredDomain = new RegExp(`^${domainAndPort}$`);
const anchoredRemainder = new RegExp(`^(${remoteName})(?::(${tagPattern}))?(?:@(${digestPattern}))?$`);
const anchoredTag = new RegExp(`^${tagPattern}$`);
const anchoredHexIdentifier = /^[a-f0-9]{64}$/;
/** Hex lengths of the digest algorithms go-digest registers; others are refused. */
const digestHexLength: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

export class InvalidReferenceError extends Error {
  constructor(
    readonly reference: string,
    readonly reason: string,
  ) {
    super(`invalid reference "${reference}": ${reason}`);
    this.name = 'InvalidReferenceError';
  }
}

export class Reference {
  constructor(
    /** `docker.io`, `ghcr.io`, `localhost:5000`, `[::1]:5000` */
    readonly registry: string,
    /** `library/busybox`, `org/app` */
    readonly repository: string,
    readonly tag?: string,
    readonly digest?: string,
  ) {}

  /** `registry/repository`, Docker's Name(). */
  get name(): string {
    return `${this.registry}/${this.repository}`;
  }

  /** What a registry is asked for: the digest when there is one (it pins the content), else the tag. */
  get identifier(): string {
    return this.digest ?? this.tag ?? defaultTag;
  }

  /** The fully qualified form: `docker.io/library/busybox:latest`. */
  toString(): string {
    return `${this.name}${this.tag !== undefined ? `:${this.tag}` : ''}${this.digest !== undefined ? `@${this.digest}` : ''}`;
  }

  /** The short form Docker prints: `busybox:latest`, `user/app:1`, `ghcr.io/o/a:1`. */
  familiar(): string {
    return `${this.familiarName()}${this.tag !== undefined ? `:${this.tag}` : ''}${this.digest !== undefined ? `@${this.digest}` : ''}`;
  }

  familiarName(): string {
    if (this.registry !== dockerHubRegistry) return this.name;
    return this.repository.startsWith(officialRepositoryPrefix) && !this.repository.slice(officialRepositoryPrefix.length).includes('/')
      ? this.repository.slice(officialRepositoryPrefix.length)
      : this.repository;
  }

  withTag(tag: string): Reference {
    if (!anchoredTag.test(tag)) throw new InvalidReferenceError(`${this.name}:${tag}`, 'invalid tag format');
    return new Reference(this.registry, this.repository, tag, undefined);
  }

  withDigest(digest: string): Reference {
    checkDigest(`${this.name}@${digest}`, digest);
    return new Reference(this.registry, this.repository, this.tag, digest);
  }

  /** Same repository, without tag or digest. */
  repositoryOnly(): Reference {
    return new Reference(this.registry, this.repository);
  }
}

export interface ParseReferenceOptions {
  /** Add the `latest` tag when the reference has neither tag nor digest (default true, as `docker pull`). */
  defaultTag?: boolean;
}

export function parseReference(text: string, options: ParseReferenceOptions = {}): Reference {
  if (text === '') throw new InvalidReferenceError(text, 'repository name must have at least one component');
  if (anchoredHexIdentifier.test(text)) {
    throw new InvalidReferenceError(text, 'cannot specify 64-byte hexadecimal strings as a repository name');
  }
  const [registry, remainder] = splitRegistry(text);
  const tagSeparator = remainder.indexOf(':');
  const repositoryPart = tagSeparator >= 0 ? remainder.slice(0, tagSeparator) : remainder;
  if (repositoryPart.toLowerCase() !== repositoryPart) {
    throw new InvalidReferenceError(text, `repository name (${repositoryPart.split('@')[0]}) must be lowercase`);
  }
  if (!anchoredDomain.test(registry)) throw new InvalidReferenceError(text, `invalid registry host "${registry}"`);
  const match = anchoredRemainder.exec(remainder);
  if (match === null) throw new InvalidReferenceError(text, describeRemainderProblem(remainder));
  const repository = match[1] as string;
  const tag = match[2];
  const digest = match[3];
  if (registry.length + 1 + repository.length > nameTotalLengthMax) {
    throw new InvalidReferenceError(text, `repository name must not be more than ${nameTotalLengthMax} characters`);
  }
  if (digest !== undefined) checkDigest(text, digest);
  const withDefault = options.defaultTag ?? true;
  return new Reference(registry, repository, tag ?? (digest === undefined && withDefault ? defaultTag : undefined), digest);
}

/** Whether `text` is a valid reference, for callers that branch rather than report. */
export function isValidReference(text: string): boolean {
  try {
    parseReference(text);
    return true;
  } catch (error) {
    if (error instanceof InvalidReferenceError) return false;
    throw error;
  }
}

function splitRegistry(text: string): [string, string] {
  const slash = text.indexOf('/');
  let registry: string;
  let remainder: string;
  const first = slash >= 0 ? text.slice(0, slash) : '';
  const firstIsRegistry =
    slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost' || first.toLowerCase() !== first);
  if (firstIsRegistry) {
    registry = first;
    remainder = text.slice(slash + 1);
  } else {
    registry = dockerHubRegistry;
    remainder = text;
  }
  if (registry === legacyDockerHubRegistry) registry = dockerHubRegistry;
  if (registry === dockerHubRegistry && !remainder.includes('/')) remainder = officialRepositoryPrefix + remainder;
  return [registry, remainder];
}

/** Names the first thing wrong with a remainder that failed the grammar, for a useful message. */
function describeRemainderProblem(remainder: string): string {
  const at = remainder.indexOf('@');
  const beforeDigest = at >= 0 ? remainder.slice(0, at) : remainder;
  if (at >= 0 && !new RegExp(`^${digestPattern}$`).test(remainder.slice(at + 1))) return 'invalid digest format';
  const colon = beforeDigest.lastIndexOf(':');
  const name = colon >= 0 && !beforeDigest.slice(colon).includes('/') ? beforeDigest.slice(0, colon) : beforeDigest;
  if (name === '' ) return 'repository name must have at least one component';
  if (!new RegExp(`^${remoteName}$`).test(name)) {
    return `invalid repository name "${name}" (path components are lowercase letters, digits and single separators . _ __ -)`;
  }
  if (colon >= 0 && name !== beforeDigest && !anchoredTag.test(beforeDigest.slice(colon + 1))) {
    return `invalid tag format "${beforeDigest.slice(colon + 1)}" (up to 128 of [A-Za-z0-9_.-], not starting with . or -)`;
  }
  return 'invalid reference format';
}

function checkDigest(text: string, digest: string): void {
  if (!new RegExp(`^${digestPattern}$`).test(digest)) throw new InvalidReferenceError(text, 'invalid digest format');
  const colon = digest.indexOf(':');
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  const length = digestHexLength[algorithm];
  if (length === undefined) throw new InvalidReferenceError(text, `unsupported digest algorithm "${algorithm}"`);
  if (hex.length !== length) throw new InvalidReferenceError(text, `invalid ${algorithm} digest length ${hex.length} (want ${length})`);
  if (!/^[a-f0-9]+$/.test(hex)) throw new InvalidReferenceError(text, 'invalid digest format (hex must be lowercase)');
}
