/**
 * Running the build core for a CI wrapper. RUN isolation needs root; a GitHub- or Microsoft-hosted
 * runner runs the job as an ordinary user who may use passwordless sudo. So when not root, the
 * wrapper re-runs its own bundle under `sudo -n` in "privileged build" mode: the options and the
 * environment go in a 0600 request file, the report (or the error) comes back in a result file.
 */
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { executeBuild } from '../build/executor.js';
import type { BuildOptions } from '../build/options.js';
import { withRegistryAccess } from '../cli/registry-access.js';
import { dockerConfigPath } from '../registry/credentials.js';
import { buildReport, type BuildReport } from './build-report.js';
import { giveOutputsTo } from './output-owner.js';
import { PrivilegeError, privilegedInvocation, type InheritingRunner } from './privilege.js';

export interface BuildRequest {
  options: BuildOptions;
  /** The environment the build sees (sudo would otherwise reset it). */
  env: Record<string, string>;
  resultFile: string;
}

/** `unfinished` is what the child writes first: still there afterwards, the child died mid-build. */
type BuildOutcome = { ok: true; report: BuildReport } | { ok: false; message: string } | { ok: false; unfinished: true };

/** A build that failed in the privileged child; the message is the executor's own. */
export class BuildFailedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BuildFailedError';
  }
}

/** Builds in this process, closing registry connections afterwards; Ctrl-C and SIGTERM stop the build. */
export async function buildInProcess(options: BuildOptions, env: NodeJS.ProcessEnv, stderr: Writable): Promise<BuildReport> {
  const controller = new AbortController();
  const stop = (): void => controller.abort(new Error('the build was interrupted'));
  process.once('SIGINT', stop).once('SIGTERM', stop);
  try {
    const result = await withRegistryAccess(options.registry, env, stderr, (registry) =>
      executeBuild(options, { env, stderr, registry, signal: controller.signal }),
    );
    return buildReport(result, options);
  } finally {
    process.off('SIGINT', stop).off('SIGTERM', stop);
  }
}

export interface RunBuildContext {
  uid: number;
  nodePath: string;
  /** The bundle that is running now, re-run as the privileged child. */
  script: string;
  /** A private directory for the request and result files. */
  workDir: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  stderr: Writable;
  run: InheritingRunner;
}

/**
 * The environment for the privileged child. sudo gives the child root's HOME, which the build reads
 * `~/.docker/config.json` from when DOCKER_CONFIG is unset: pinning DOCKER_CONFIG keeps the logins
 * the job's user made (docker/login-action writes them to that user's home).
 */
function privilegedChildEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const defined = Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
  return { ...defined, DOCKER_CONFIG: dirname(dockerConfigPath(env, env.HOME || homedir())) };
}

/** Builds as root: here when we are root, otherwise through the privileged child under sudo. */
export async function runBuild(options: BuildOptions, context: RunBuildContext): Promise<BuildReport> {
  const requestFile = join(context.workDir, 'build-request.json');
  const resultFile = join(context.workDir, 'build-result.json');
  const invocation = privilegedInvocation(context.uid, context.nodePath, context.script, requestFile);
  if (invocation === undefined) return buildInProcess(options, context.env, context.stderr);
  const request: BuildRequest = { options, env: privilegedChildEnv(context.env), resultFile };
  await writeFile(requestFile, JSON.stringify(request), { mode: 0o600 });
  try {
    // Ctrl-C or a cancelled job: pass SIGTERM on (sudo relays it) and wait for the child to clean up.
    const controller = new AbortController();
    const stop = (): void => controller.abort();
    process.once('SIGINT', stop).once('SIGTERM', stop);
    let code: number;
    try {
      code = await context.run(invocation, { cwd: context.cwd, signal: controller.signal });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new PrivilegeError(`${invocation.command} is not installed`);
      throw error;
    } finally {
      process.off('SIGINT', stop).off('SIGTERM', stop);
    }
    const outcome = await readOutcome(resultFile);
    if (outcome === undefined) throw new PrivilegeError(`sudo exited with code ${code} before the build started`);
    if ('unfinished' in outcome) throw new BuildFailedError(`the privileged build exited with code ${code} before reporting its outcome`);
    if (!outcome.ok) throw new BuildFailedError(outcome.message);
    return outcome.report;
  } finally {
    await rm(requestFile, { force: true });
  }
}

async function readOutcome(file: string): Promise<BuildOutcome | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return JSON.parse(text) as BuildOutcome;
}

/**
 * The privileged child: reads the request, builds, and writes the outcome for the parent.
 * Returns the exit code; the parent reports errors, so nothing is printed here but progress.
 */
export async function runPrivilegedBuild(requestFile: string, stderr: Writable): Promise<number> {
  const request = JSON.parse(await readFile(requestFile, 'utf8')) as BuildRequest;
  // The parent wrote the request, so its owner is the job's user, who gets the build's outputs.
  const jobUser = await stat(requestFile);
  // 0644: the unprivileged parent reads it (and may delete it: the directory is the parent's).
  const writeOutcome = (outcome: BuildOutcome): Promise<void> => writeFile(request.resultFile, JSON.stringify(outcome), { mode: 0o644 });
  await writeOutcome({ ok: false, unfinished: true });
  let outcome: BuildOutcome;
  try {
    try {
      outcome = { ok: true, report: await buildInProcess(request.options, request.env, stderr) };
    } finally {
      await giveOutputsTo(request.options, jobUser);
    }
  } catch (error) {
    outcome = { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
  await writeOutcome(outcome);
  return outcome.ok ? 0 : 1;
}
