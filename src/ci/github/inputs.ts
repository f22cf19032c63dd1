/**
 * The action's inputs (named like docker/build-push-action's) as a typed object, and that object as
 * kiln CLI arguments: the CLI's own parser then makes the BuildOptions.
 */
import { join } from 'node:path';
import { CiInputError, splitArguments } from '../cli-options.js';
import { parseBooleanInput, parseInlineSecrets, parseList, type InlineSecret } from '../inputs.js';

/** Reads one input by its action.yml name; blank when unset (like `core.getInput`). */
export type InputReader = (name: string) => string;

export interface ActionInputs {
  context: string;
  file: string;
  tags: string[];
  push: boolean;
  buildArgs: string[];
  target: string;
  labels: string[];
  annotations: string[];
  caps: string[];
  snapshotMode: string;
  singleSnapshot: boolean;
  cache: boolean;
  cacheRepo: string;
  cacheTtl: string;
  platform: string;
  secrets: InlineSecret[];
  registry: string;
  username: string;
  password: string;
  githubToken: string;
  insecureRegistries: string[];
  extraArgs: string[];
}

/** A context that is fetched (tar, URL, git) holds its Dockerfile at its root. */
function isRemoteContext(context: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(context) || context === '-';
}

export function readActionInputs(read: InputReader): ActionInputs {
  const context = read('context') || '.';
  const platforms = parseList(read('platform'));
  if (platforms.length > 1) throw new CiInputError(`input "platform": kiln builds one platform per run, got ${platforms.join(', ')} (use a matrix)`);
  return {
    context,
    file: read('file') || (isRemoteContext(context) ? 'Dockerfile' : join(context, 'Dockerfile')),
    tags: parseList(read('tags')),
    push: parseBooleanInput('push', read('push'), true),
    buildArgs: parseList(read('build-args'), { ignoreComma: true }),
    target: read('target'),
    labels: parseList(read('labels'), { ignoreComma: true }),
    annotations: parseList(read('annotations'), { ignoreComma: true }),
    caps: parseList(read('caps')),
    snapshotMode: read('snapshot-mode'),
    singleSnapshot: parseBooleanInput('single-snapshot', read('single-snapshot'), false),
    cache: parseBooleanInput('cache', read('cache'), false),
    cacheRepo: read('cache-repo'),
    cacheTtl: read('cache-ttl'),
    platform: platforms[0] ?? '',
    secrets: parseInlineSecrets('secrets', read('secrets')),
    registry: read('registry'),
    username: read('username'),
    password: read('password'),
    githubToken: read('github-token'),
    insecureRegistries: parseList(read('insecure-registries')),
    extraArgs: splitArguments(read('extra-args')),
  };
}

/** Where the wrapper put what the CLI flags point at. */
export interface ArgumentPaths {
  kilnDir: string;
  /** Secret id → the 0600 file holding its value. */
  secretFiles: ReadonlyMap<string, string>;
}

const repeat = (flag: string, values: readonly string[]): string[] => values.flatMap((value) => [flag, value]);
const optional = (flag: string, value: string): string[] => (value === '' ? [] : [flag, value]);

/** The inputs as kiln flags; `extra-args` come last so they override anything set here. */
export function toCliArguments(inputs: ActionInputs, paths: ArgumentPaths): string[] {
  return [
    '--context', inputs.context,
    '--dockerfile', inputs.file,
    '--kaniko-dir', paths.kilnDir,
    ...repeat('--destination', inputs.tags),
    ...(inputs.push ? [] : ['--no-push']),
    ...repeat('--build-arg', inputs.buildArgs),
    ...optional('--target', inputs.target),
    ...repeat('--label', inputs.labels),
    ...repeat('--annotation', inputs.annotations),
    ...repeat('--cap-add', inputs.caps),
    ...optional('--snapshot-mode', inputs.snapshotMode),
    ...(inputs.singleSnapshot ? ['--single-snapshot'] : []),
    ...(inputs.cache ? ['--cache'] : []),
    ...optional('--cache-repo', inputs.cacheRepo),
    ...optional('--cache-ttl', inputs.cacheTtl),
    ...optional('--custom-platform', inputs.platform),
    ...inputs.secrets.flatMap((secret) => {
      const file = paths.secretFiles.get(secret.id);
      if (file === undefined) throw new CiInputError(`secret "${secret.id}" was not written to a file`);
      return ['--secret', `id=${secret.id},src=${file}`];
    }),
    ...repeat('--insecure-registry', inputs.insecureRegistries),
    ...inputs.extraArgs,
  ];
}
