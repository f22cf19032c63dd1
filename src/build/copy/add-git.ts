/**
 * ADD of a git repository (`https://host/repo.git#ref:subdir`, `git@host:repo.git#ref`): fetched
 * with the system git through the context module's fetcher (same credentials handling), then
 * copied like a directory source. `.git` is left out unless `--keep-git-dir`; `--checksum` is the
 * commit the ref must resolve to.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { displayUrl, fetchGitContext, parseGitContext } from '../../context/git-source.js';
import type { ProcessRunner } from '../../context/process.js';
import type { GitOptions } from '../../context/types.js';
import { CopyError, type InstructionSite } from './errors.js';

export interface GitSourceOptions {
  runner: ProcessRunner;
  /** The environment git runs with (GIT_TOKEN etc. are read from it). */
  env: NodeJS.ProcessEnv;
  git?: GitOptions;
}

/** Fetches `source` into `scratchDir` and returns the directory whose contents are to be copied. */
export async function fetchGitSource(
  site: InstructionSite,
  source: string,
  scratchDir: string,
  keepGitDir: boolean,
  checksum: string | undefined,
  options: GitSourceOptions,
): Promise<string> {
  const spec = parseGitContext(source, options.env);
  let root: string;
  try {
    root = await fetchGitContext(spec, scratchDir, { runner: options.runner, env: options.env, git: options.git ?? {} });
  } catch (error) {
    throw new CopyError(site, `cannot fetch git repository ${displayUrl(spec.url)}: ${(error as Error).message}`, { cause: error });
  }
  if (checksum !== undefined) {
    const head = await options.runner.run('git', ['rev-parse', 'HEAD'], { cwd: scratchDir, env: options.env });
    const commit = head.stdout.trim();
    if (head.exitCode !== 0 || commit !== checksum) {
      throw new CopyError(site, `expected checksum to match ${checksum}, got ${commit === '' ? head.stderr.trim() : commit}`);
    }
  }
  if (!keepGitDir) await rm(path.join(scratchDir, '.git'), { recursive: true, force: true });
  return root;
}
