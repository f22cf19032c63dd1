/** Errors of COPY/ADD, carrying the instruction's line and the path a user has to fix. */

/** Where in the Dockerfile the failing instruction is, for messages. */
export interface InstructionSite {
  /** `COPY` or `ADD`. */
  keyword: string;
  line: number;
}

export class CopyError extends Error {
  constructor(
    readonly site: InstructionSite,
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${site.keyword} (line ${site.line}): ${detail}`, options);
    this.name = 'CopyError';
  }
}

/** A source path (or the directory a wildcard looks in) that does not exist in the source tree. */
export class SourceNotFoundError extends CopyError {
  constructor(
    site: InstructionSite,
    readonly source: string,
  ) {
    super(site, `failed to compute cache key: ${JSON.stringify('/' + source.replace(/^\/+/, ''))}: not found`);
    this.name = 'SourceNotFoundError';
  }
}

/** `--checksum` did not match what was downloaded. */
export class ChecksumMismatchError extends CopyError {
  constructor(
    site: InstructionSite,
    readonly url: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(site, `checksum mismatch for ${url}: expected ${expected}, got ${actual}`);
    this.name = 'ChecksumMismatchError';
  }
}

/** A remote source could not be fetched (HTTP status or transport error). */
export class RemoteSourceError extends CopyError {
  constructor(
    site: InstructionSite,
    readonly url: string,
    readonly status: number | undefined,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(site, `cannot fetch ${url}: ${reason}`, options);
    this.name = 'RemoteSourceError';
  }
}

/** A `--chmod` value BuildKit would refuse. */
export class FileModeError extends Error {
  constructor(
    readonly expression: string,
    reason: string,
  ) {
    super(`invalid --chmod ${JSON.stringify(expression)}: ${reason}`);
    this.name = 'FileModeError';
  }
}
