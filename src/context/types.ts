/** The build context as the builder sees it, whatever it came from. */
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { IgnoreMatcher } from './dockerignore.js';
import type { ProcessRunner } from './process.js';

/** Where the Dockerfile came from. */
export interface DockerfileSource {
  /** Absolute path of the Dockerfile on disk; null when it came from standard input. */
  path: string | null;
  /** Its text (a Dockerfile is small; the parser needs it whole). */
  contents: string;
}

/** A local directory holding the context, ready to be walked and copied from. */
export interface BuildContext {
  /** Absolute path of the context root (after `--context-sub-path`). */
  root: string;
  dockerfile: DockerfileSource;
  /** The compiled `.dockerignore` (empty when there is none). */
  ignore: IgnoreMatcher;
  /** Which ignore file was used: `<Dockerfile>.dockerignore`, `<root>/.dockerignore`, or null. */
  ignoreFile: string | null;
  /** What the context was made from, for messages: `dir`, `tar`, `stdin`, `url` or `git`. */
  kind: ContextKind;
  /** Removes whatever was downloaded or extracted; a local directory is left alone. */
  cleanup(): Promise<void>;
}

export type ContextKind = 'dir' | 'tar' | 'stdin' | 'url' | 'git';

/** kaniko's `--git` options. */
export interface GitOptions {
  /** Branch (or any ref) to check out when the URL names none. */
  branch?: string;
  /** Fetch only that branch (default true: a build needs one commit). */
  singleBranch?: boolean;
  recurseSubmodules?: boolean;
  insecureSkipTls?: boolean;
}

/** What {@link openBuildContext} needs; mirrors kaniko's flags. */
export interface ContextOptions {
  /** `--context`: a path, `dir://…`, `tar://…`, `tar://stdin`, `-`, an https URL or a git URL. */
  context: string;
  /** `--context-sub-path`. */
  contextSubPath?: string;
  /** `--dockerfile` (default `Dockerfile`); `-` reads it from standard input. */
  dockerfile?: string;
  /** `--git` options, parsed ({@link parseGitOptions}) or as the raw key=value map. */
  git?: GitOptions | Record<string, string>;
  /** Standard input (default process.stdin). */
  stdin?: Readable;
  /** Environment for GIT_TOKEN, GIT_USERNAME, GIT_PASSWORD, GIT_PULL_METHOD (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Runs `git` (default: spawns it). */
  runner?: ProcessRunner;
  /** HTTP client for URL contexts (default: a fresh undici Agent that follows redirects). */
  dispatcher?: Dispatcher;
  /** Where downloads and clones go (default os.tmpdir()). */
  tmpDir?: string;
  /** Base for relative paths (default process.cwd()). */
  cwd?: string;
  /** Non-fatal notices (skipped device entries in a tar context, …). */
  onWarning?: (message: string) => void;
}

/** A `--context` value kiln does not understand or cannot use. */
export class ContextSpecError extends Error {
  constructor(
    readonly spec: string,
    readonly reason: string,
  ) {
    super(`invalid --context ${JSON.stringify(spec)}: ${reason}`);
    this.name = 'ContextSpecError';
  }
}

/** The context (or the Dockerfile) could not be found or prepared. */
export class ContextSourceError extends Error {
  constructor(
    readonly source: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`build context ${source}: ${message}`, options);
    this.name = 'ContextSourceError';
  }
}

/** A tar context entry that would land outside the context or write through a link. */
export class UnsafeTarEntryError extends Error {
  constructor(
    readonly entry: string,
    readonly reason: string,
  ) {
    super(`refusing tar context entry ${JSON.stringify(entry)}: ${reason}`);
    this.name = 'UnsafeTarEntryError';
  }
}

/** A URL context whose server did not answer with the archive. */
export class ContextFetchError extends Error {
  constructor(
    readonly url: string,
    readonly status: number | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`fetching build context ${url}: ${message}`, options);
    this.name = 'ContextFetchError';
  }
}

/** `git` failed while fetching a git context; the message never holds credentials. */
export class GitContextError extends Error {
  constructor(
    readonly url: string,
    readonly step: string,
    readonly stderr: string,
  ) {
    super(`git context ${url}: ${step} failed${stderr === '' ? '' : `: ${stderr.trim()}`}`);
    this.name = 'GitContextError';
  }
}
