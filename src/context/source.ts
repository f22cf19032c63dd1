/**
 * `--context` values (kaniko's syntax) turned into a local directory the builder reads.
 * Entry point: {@link openBuildContext}.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { resolveDirContext } from './dir-source.js';
import { loadIgnoreFile, locateDockerfile, readDockerfile } from './dockerfile-location.js';
import { fetchGitContext, isGitContext, parseGitContext, parseGitOptions, resolveInside, displayUrl, type GitContextSpec } from './git-source.js';
import { createSpawnRunner } from './process.js';
import { detectFormat, extractTarStream, peekStream } from './tar-source.js';
import { ContextSourceError, ContextSpecError, type BuildContext, type ContextKind, type ContextOptions, type DockerfileSource } from './types.js';
import { fetchUrlContext } from './url-source.js';

/** A parsed `--context` value. */
export type ContextSpec =
  | { kind: 'dir'; path: string }
  | { kind: 'tar'; path: string }
  /** `tar://stdin` takes only an archive; `-` also takes a lone Dockerfile (`docker build -`). */
  | { kind: 'stdin'; allowDockerfile: boolean }
  | { kind: 'url'; url: string }
  | { kind: 'git'; git: GitContextSpec };

const UNSUPPORTED_SCHEMES = ['gs://', 's3://'];

export function parseContextSpec(spec: string, env: NodeJS.ProcessEnv = {}): ContextSpec {
  if (spec === '') throw new ContextSpecError(spec, 'empty');
  if (spec === '-') return { kind: 'stdin', allowDockerfile: true };
  if (spec === 'tar://stdin') return { kind: 'stdin', allowDockerfile: false };
  if (spec.startsWith('tar://')) {
    const path = spec.slice('tar://'.length);
    if (path === '') throw new ContextSpecError(spec, 'tar:// needs a path (or tar://stdin)');
    return { kind: 'tar', path };
  }
  if (spec.startsWith('dir://')) {
    const path = spec.slice('dir://'.length);
    if (path === '') throw new ContextSpecError(spec, 'dir:// needs a path');
    return { kind: 'dir', path };
  }
  if (isGitContext(spec)) return { kind: 'git', git: parseGitContext(spec, env) };
  if (/^https?:\/\//.test(spec)) return { kind: 'url', url: spec };
  for (const scheme of UNSUPPORTED_SCHEMES) {
    if (spec.startsWith(scheme)) {
      throw new ContextSpecError(spec, `${scheme} contexts are not supported by kiln; download the archive and use tar://PATH`);
    }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) {
    throw new ContextSpecError(spec, 'unknown scheme (use a path, dir://, tar://, tar://stdin, -, an http(s) URL or a git URL)');
  }
  return { kind: 'dir', path: spec };
}

/** What a context source made: its root, whether it is a fresh temporary directory, and maybe a Dockerfile. */
interface Materialized {
  root: string;
  kind: ContextKind;
  /** Temporary directory to remove on cleanup. */
  temp: string | null;
  /** A Dockerfile that came in place of a context (`-` fed a Dockerfile). */
  stdinDockerfile?: string;
}

async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

async function materialize(spec: ContextSpec, options: ContextOptions, temp: () => Promise<string>): Promise<Materialized> {
  const cwd = options.cwd ?? process.cwd();
  switch (spec.kind) {
    case 'dir':
      return { root: await resolveDirContext(spec.path, cwd), kind: 'dir', temp: null };
    case 'tar': {
      const path = resolve(cwd, spec.path);
      const dest = await temp();
      const input = createReadStream(path);
      await extractTarStream(input, dest, { label: `tar://${spec.path}`, ...warn(options) });
      return { root: dest, kind: 'tar', temp: dest };
    }
    case 'stdin': {
      const stdin = options.stdin ?? process.stdin;
      const { head, stream } = await peekStream(stdin, 512);
      const format = detectFormat(head);
      const dest = await temp();
      if (format === 'unknown') {
        if (!spec.allowDockerfile) {
          stream.destroy();
          throw new ContextSourceError('tar://stdin', 'standard input is not a tar or tar.gz archive');
        }
        // `docker build -`: a lone Dockerfile and an empty context.
        return { root: dest, kind: 'stdin', temp: dest, stdinDockerfile: await readAll(stream) };
      }
      await extractTarStream(stream, dest, { label: 'stdin', ...warn(options) });
      return { root: dest, kind: 'stdin', temp: dest };
    }
    case 'url': {
      const dest = await temp();
      await fetchUrlContext(spec.url, dest, { ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}), ...warn(options) });
      return { root: dest, kind: 'url', temp: dest };
    }
    case 'git': {
      const dest = await temp();
      const root = await fetchGitContext(spec.git, dest, {
        runner: options.runner ?? createSpawnRunner(),
        env: options.env ?? process.env,
        git: parseGitOptions(options.git),
      });
      return { root, kind: 'git', temp: dest };
    }
  }
}

function warn(options: ContextOptions): { onWarning?: (message: string) => void } {
  return options.onWarning ? { onWarning: options.onWarning } : {};
}

/**
 * Resolves `--context`, `--context-sub-path` and `--dockerfile` into a {@link BuildContext}:
 * a local directory, the Dockerfile's text and the `.dockerignore` rules. Fetched contexts live
 * in a temporary directory that `cleanup()` removes (also removed here if anything fails).
 */
export async function openBuildContext(options: ContextOptions): Promise<BuildContext> {
  const env = options.env ?? process.env;
  const spec = parseContextSpec(options.context, env);
  const dockerfileName = options.dockerfile ?? 'Dockerfile';
  if (dockerfileName === '-' && spec.kind === 'stdin') {
    throw new ContextSpecError(options.context, 'the context and the Dockerfile cannot both come from standard input');
  }
  const temps: string[] = [];
  const temp = async (): Promise<string> => {
    const dir = await mkdtemp(join(options.tmpDir ?? tmpdir(), 'kiln-context-'));
    temps.push(dir);
    return dir;
  };
  const cleanup = async (): Promise<void> => {
    await Promise.all(temps.map((dir) => rm(dir, { recursive: true, force: true })));
  };
  try {
    const made = await materialize(spec, options, temp);
    let root = made.root;
    if (options.contextSubPath !== undefined && options.contextSubPath !== '') {
      root = await resolveInside(root, options.contextSubPath, `${describeSpec(spec)} --context-sub-path`);
    }
    let dockerfile: DockerfileSource;
    if (made.stdinDockerfile !== undefined) {
      dockerfile = { path: null, contents: made.stdinDockerfile };
    } else if (dockerfileName === '-') {
      dockerfile = { path: null, contents: await readAll(options.stdin ?? process.stdin) };
    } else {
      const path = await locateDockerfile(dockerfileName, root, options.cwd ?? process.cwd(), made.kind !== 'dir');
      dockerfile = { path, contents: await readDockerfile(path) };
    }
    const { matcher, file } = await loadIgnoreFile(root, dockerfile.path);
    return { root, dockerfile, ignore: matcher, ignoreFile: file, kind: made.kind, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

function describeSpec(spec: ContextSpec): string {
  switch (spec.kind) {
    case 'dir':
    case 'tar':
      return spec.path;
    case 'stdin':
      return 'stdin';
    case 'url':
      return displayUrl(spec.url);
    case 'git':
      return displayUrl(spec.git.url);
  }
}
