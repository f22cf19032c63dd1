/**
 * The GitLab component's job: registry logins merged into the Docker config, the inputs turned into
 * kaniko-style flags (the same parser as `kiln`), the build, and the dotenv report for later jobs.
 * Every step is here so the template's script stays one line.
 */
import type { BuildOptions } from '../../build/options.js';
import { buildOptionsFromArguments, CiInputError } from '../cli-options.js';
import { writeDotenvReport } from './dotenv-report.js';
import { GitLabJobError, readGitLabJobInputs, type GitLabJobInputs } from './job-inputs.js';
import { writeRegistryLogins } from './registry-auth.js';

export interface Output {
  write(text: string): void;
}

export interface GitLabJobDependencies {
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout: Output;
  stderr: Output;
  /** Builds and pushes; resolves with the manifest digest. */
  build(options: BuildOptions): Promise<{ digest: string }>;
}

export interface GitLabJobResult {
  digest: string;
  destinations: string[];
  dotenvPath: string;
  variables: Record<string, string>;
}

/** The inputs and the script's own arguments (which win, coming last) as BuildOptions. */
export function gitLabBuildOptions(inputs: GitLabJobInputs, argv: readonly string[], env: NodeJS.ProcessEnv): BuildOptions {
  const options = buildOptionsFromArguments([...inputs.buildArguments, ...argv], env);
  if (options.dryRun) throw new GitLabJobError('--dry-run makes no image to report: run `kiln --dry-run` in the script instead');
  if (options.destinations.length > 0 || options.noPush) return options;
  if (inputs.defaultDestination === undefined) {
    throw new GitLabJobError('no destination: set the `destinations` input, or enable the project container registry (CI_REGISTRY_IMAGE)');
  }
  return { ...options, destinations: [inputs.defaultDestination] };
}

export async function runGitLabJob(argv: readonly string[], deps: GitLabJobDependencies): Promise<GitLabJobResult> {
  const inputs = readGitLabJobInputs(deps.env, deps.cwd);
  const { dotenvPath, logins } = inputs;
  const options = gitLabBuildOptions(inputs, argv, deps.env);
  if (logins.length > 0) {
    const configPath = await writeRegistryLogins(logins, deps.env);
    // Names the variables and registries only: GitLab masks the password, we never print it.
    deps.stderr.write(`kiln: credentials from ${logins.map((l) => `${l.source} (${l.registry})`).join(', ')} merged into ${configPath}\n`);
  }
  const { digest } = await deps.build(options);
  const variables = await writeDotenvReport(dotenvPath, digest, options.destinations);
  deps.stderr.write(`kiln: wrote ${Object.keys(variables).join(', ')} to ${dotenvPath}\n`);
  // As `kiln` does: the digest is the last line of standard output.
  deps.stdout.write(`${digest}\n`);
  return { digest, destinations: options.destinations, dotenvPath, variables };
}

/** Runs the job and returns the exit code: 2 for a bad input, 1 for a failed build. */
export async function runGitLabEntry(argv: readonly string[], deps: GitLabJobDependencies): Promise<number> {
  try {
    await runGitLabJob(argv, deps);
    return 0;
  } catch (error) {
    deps.stderr.write(`kiln: ${error instanceof Error ? error.message : String(error)}\n`);
    return error instanceof GitLabJobError || error instanceof CiInputError ? 2 : 1;
  }
}
