import { mkdir } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { openBuildContext, type BuildContext } from '../context/index.js';
import { parsePlatform, type PlatformSpec } from '../dockerfile/args.js';
import { formatWarning } from '../dockerfile/checks.js';
import { parseDockerfile } from '../dockerfile/parser.js';
import { planBuild, type BuildPlan } from '../dockerfile/plan.js';
import { hostPlatform } from '../image/platform.js';
import type { BuildOptions } from './options.js';

export interface PreparedBuild {
  context: BuildContext;
  plan: BuildPlan;
  /** How the Dockerfile is named in messages (`Dockerfile`, `docker/app.Dockerfile`, `stdin`). */
  dockerfileName: string;
  platform: PlatformSpec;
}

export interface PrepareDependencies {
  env: NodeJS.ProcessEnv;
  stdin?: Readable;
  /** Build-check warnings, one located line each. */
  warn(line: string): void;
}

/** The host's platform in the Dockerfile frontend's terms (BUILDPLATFORM). */
export function buildPlatform(): PlatformSpec {
  return parsePlatform(`${hostPlatform().os}/${hostPlatform().architecture}`);
}

/**
 * Everything that happens before the first byte of an image is touched: the context opened, the
 * Dockerfile parsed and planned. Errors here are the user's (a located Dockerfile error, a bad
 * context), so they come before any registry is contacted.
 */
export async function prepareBuild(options: BuildOptions, deps: PrepareDependencies): Promise<PreparedBuild> {
  // Downloads and clones go below kiln's own directory: an in-place build keeps it, not /tmp.
  await mkdir(options.kilnDir, { recursive: true, mode: 0o700 });
  const context = await openBuildContext({
    context: options.context,
    tmpDir: options.kilnDir,
    dockerfile: options.dockerfile,
    git: options.git,
    env: deps.env,
    onWarning: deps.warn,
    ...(options.contextSubPath === undefined ? {} : { contextSubPath: options.contextSubPath }),
    ...(deps.stdin === undefined ? {} : { stdin: deps.stdin }),
  });
  try {
    const dockerfileName = context.dockerfile.path === null ? 'stdin' : options.dockerfile;
    const dockerfile = parseDockerfile(context.dockerfile.contents, dockerfileName);
    for (const warning of dockerfile.warnings) deps.warn(`${dockerfileName}:${warning.range.startLine}: warning: ${warning.message}`);
    const host = buildPlatform();
    const platform = options.customPlatform === undefined ? host : parsePlatform(options.customPlatform);
    const plan = planBuild(dockerfile, {
      file: dockerfileName,
      buildArgs: options.buildArgs,
      env: deps.env,
      platform,
      buildPlatform: host,
      skipUnusedStages: options.skipUnusedStages,
      ...(options.target === undefined ? {} : { target: options.target }),
    });
    for (const warning of plan.warnings) deps.warn(formatWarning(warning, dockerfileName));
    return { context, plan, dockerfileName, platform };
  } catch (error) {
    await context.cleanup();
    throw error;
  }
}
