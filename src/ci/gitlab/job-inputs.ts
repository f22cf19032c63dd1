/**
 * The GitLab component's inputs as the job sees them: the template maps each free-form input to a
 * `KILN_*` job variable (never into the shell line, so no quoting can break it), and GitLab's own
 * predefined variables supply the defaults kaniko's GitLab documentation spells out by hand.
 */
import { isAbsolute, resolve } from 'node:path';

/** A GitLab input or predefined variable that does not make a job; the message names it. */
export class GitLabJobError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GitLabJobError';
  }
}

/** Credentials for one registry, from GitLab's predefined variables. */
export interface RegistryLogin {
  /** Which variables it came from, for messages (`CI_REGISTRY`, `CI_DEPENDENCY_PROXY_SERVER`). */
  source: string;
  registry: string;
  username: string;
  password: string;
}

export interface GitLabJobInputs {
  /** kaniko-style build flags made from the inputs; the script's own arguments come after them. */
  buildArguments: string[];
  /** Used when neither the inputs nor the script's arguments name a destination. */
  defaultDestination: string | undefined;
  /** Where the dotenv report goes (absolute). */
  dotenvPath: string;
  logins: RegistryLogin[];
}

function value(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const text = env[name]?.trim();
  return text === undefined || text === '' ? undefined : text;
}

/** Destinations and capabilities may be separated by commas, spaces or newlines. */
export function splitList(text: string | undefined): string[] {
  return (text ?? '').split(/[\s,]+/).filter((item) => item !== '');
}

/** Build arguments are one `KEY=VALUE` per line: values may hold commas and spaces. */
export function splitLines(text: string | undefined): string[] {
  return (text ?? '').split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== '');
}

/** A local context path relative to the project; URLs (`git://`, `tar://`, `https://`) and `-` pass through. */
function resolveContext(context: string, projectDir: string): string {
  if (context === '-' || context.includes('://') || isAbsolute(context)) return context;
  return resolve(projectDir, context);
}

/** A registry is logged in to only when the server, user and password are all set. */
function login(env: NodeJS.ProcessEnv, source: string, server: string, user: string, password: string): RegistryLogin[] {
  const registry = value(env, server);
  const username = value(env, user);
  const secret = env[password];
  if (registry === undefined || username === undefined || secret === undefined || secret === '') return [];
  return [{ source, registry, username, password: secret }];
}

export function gitLabRegistryLogins(env: NodeJS.ProcessEnv): RegistryLogin[] {
  return [
    ...login(env, 'CI_DEPENDENCY_PROXY_SERVER', 'CI_DEPENDENCY_PROXY_SERVER', 'CI_DEPENDENCY_PROXY_USER', 'CI_DEPENDENCY_PROXY_PASSWORD'),
    ...login(env, 'CI_REGISTRY', 'CI_REGISTRY', 'CI_REGISTRY_USER', 'CI_REGISTRY_PASSWORD'),
  ];
}

/**
 * Reads KILN_CONTEXT, KILN_DOCKERFILE, KILN_DESTINATIONS, KILN_BUILD_ARGS, KILN_CAPS,
 * KILN_CACHE_REPO and KILN_DOTENV, with GitLab's CI_PROJECT_DIR, CI_REGISTRY_IMAGE and
 * CI_COMMIT_REF_SLUG for the defaults.
 */
export function readGitLabJobInputs(env: NodeJS.ProcessEnv, cwd: string): GitLabJobInputs {
  const projectDir = value(env, 'CI_PROJECT_DIR') ?? cwd;
  const args = ['--context', resolveContext(value(env, 'KILN_CONTEXT') ?? projectDir, projectDir)];
  args.push('--dockerfile', value(env, 'KILN_DOCKERFILE') ?? 'Dockerfile');
  for (const destination of splitList(env.KILN_DESTINATIONS)) args.push('--destination', destination);
  for (const buildArg of splitLines(env.KILN_BUILD_ARGS)) args.push('--build-arg', buildArg);
  for (const cap of splitList(env.KILN_CAPS)) args.push('--cap-add', cap);
  const cacheRepo = value(env, 'KILN_CACHE_REPO');
  if (cacheRepo !== undefined) args.push('--cache-repo', cacheRepo);

  const image = value(env, 'CI_REGISTRY_IMAGE');
  const slug = value(env, 'CI_COMMIT_REF_SLUG');
  return {
    buildArguments: args,
    defaultDestination: image !== undefined && slug !== undefined ? `${image}:${slug}` : undefined,
    dotenvPath: resolve(projectDir, value(env, 'KILN_DOTENV') ?? 'kiln.env'),
    logins: gitLabRegistryLogins(env),
  };
}
