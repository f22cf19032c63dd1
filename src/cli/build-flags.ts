import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import type { BuildOptions, Compression, Isolation, LogFormat, SecretSource, SnapshotMode, Verbosity } from '../build/options.js';
import type { ImageFormat } from '../image/media-types.js';
import { addRegistryFlags, type ParseRegistryValues, type RegistryFlagValues } from './registry-flags.js';
import {
  UsageError,
  collect,
  keyValueRecord,
  nonNegativeInteger,
  oneOf,
  parseBoolean,
  parseDurationSeconds,
  splitKeyValue,
} from './values.js';

const snapshotModes: readonly SnapshotMode[] = ['full', 'redo', 'time', 'overlay', 'auto'];
const isolations: readonly Isolation[] = ['chroot', 'in-place', 'auto'];
const compressions: readonly Compression[] = ['gzip', 'zstd'];
const verbosities: readonly Verbosity[] = ['panic', 'fatal', 'error', 'warn', 'info', 'debug', 'trace'];
const logFormats: readonly LogFormat[] = ['text', 'color', 'json'];
const imageFormats: readonly ImageFormat[] = ['oci', 'docker'];

/** What commander hands back for the build flags (camel-cased flag names). */
export interface BuildFlagValues extends RegistryFlagValues {
  context?: string;
  contextSubPath?: string;
  git?: string[];
  dockerfile?: string;
  destination?: string[];
  noPush?: boolean;
  noPushCache?: boolean;
  tarPath?: string;
  ociLayoutPath?: string;
  digestFile?: string;
  imageNameWithDigestFile?: string;
  imageNameTagWithDigestFile?: string;
  pushIgnoreImmutableTagErrors?: boolean;
  skipPushPermissionCheck?: boolean;
  imageFormat?: ImageFormat;
  annotation?: string[];
  snapshotMode?: SnapshotMode;
  singleSnapshot?: boolean;
  useNewRun?: boolean;
  ignorePath?: string[];
  ignoreVarRun?: boolean;
  forceBuildMetadata?: boolean;
  kanikoDir?: string;
  cache?: boolean;
  cacheRepo?: string;
  cacheDir?: string;
  cacheTtl?: number;
  cacheCopyLayers?: boolean;
  cacheRunLayers?: boolean;
  compressedCaching?: boolean;
  buildArg?: string[];
  target?: string;
  label?: string[];
  customPlatform?: string;
  reproducible?: boolean;
  skipUnusedStages?: boolean;
  compression?: Compression;
  compressionLevel?: number;
  cleanup?: boolean;
  secret?: string[];
  dryRun?: boolean;
  dryrun?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  allow?: string[];
  isolation?: Isolation;
  verbosity?: Verbosity;
  logFormat?: LogFormat;
  logTimestamp?: boolean;
  force?: boolean;
}

/**
 * commander reads `--no-X` as the negation of `--X`; kaniko's `--no-push` is a flag of its own that
 * also takes `=true|false`, so the negation is switched off.
 */
function literalNoOption(flags: string, description: string, parse: (value: string | undefined) => boolean): Option {
  const option = new Option(flags, description).argParser(parse);
  option.negate = false;
  return option;
}

/** kaniko's executor flags (../shared/kaniko-flags.md), same names and meanings, plus kiln's own. */
export function addBuildFlags(command: Command): Command {
  command
    .option('-c, --context <path|url>', 'build context: a directory, dir://, tar://file, tar://stdin, -, https://…, git://…', '/workspace/')
    .option('--context-sub-path <path>', 'sub-directory of the context to build from')
    .option('--git <options>', 'git context options: branch=…,single-branch=…,recurse-submodules=…,insecure-skip-tls=…', collect)
    .option('-f, --dockerfile <path>', 'path to the Dockerfile (relative to the context), or - for standard input', 'Dockerfile')
    .option('-d, --destination <ref>', 'image reference to push to (repeatable)', collect)
    .addOption(literalNoOption('--no-push [bool]', 'build without pushing (env KANIKO_NO_PUSH)', parseBoolean('no-push')))
    .addOption(literalNoOption('--no-push-cache [bool]', 'do not push cache layers', parseBoolean('no-push-cache')))
    .option('--tar-path <file>', 'also write the image as a docker-archive tarball')
    .option('--oci-layout-path <dir>', 'also write the image into an OCI image-layout directory')
    .option('--digest-file <file>', 'write the image digest to this file')
    .option('--image-name-with-digest-file <file>', 'write REPO@DIGEST lines to this file')
    .option('--image-name-tag-with-digest-file <file>', 'write REPO:TAG@DIGEST lines to this file')
    .option('--push-ignore-immutable-tag-errors [bool]', 'treat a refused overwrite of an immutable tag as success', parseBoolean('push-ignore-immutable-tag-errors'))
    .option('--skip-push-permission-check [bool]', 'do not probe push permissions before building', parseBoolean('skip-push-permission-check'))
    .addOption(new Option('--image-format <format>', 'manifest and config media types').choices(imageFormats).argParser(oneOf('image-format', imageFormats)))
    .option('--annotation <k=v>', 'manifest annotation (repeatable)', collect)
    .addOption(new Option('--snapshot-mode <mode>', 'how changes are found after each step').choices(snapshotModes).argParser(oneOf('snapshot-mode', snapshotModes)))
    .option('--single-snapshot [bool]', 'take one snapshot at the end of the build', parseBoolean('single-snapshot'))
    .option('--use-new-run [bool]', "kaniko's experimental RUN snapshotting (accepted; kiln's RUN snapshots are always per step)", parseBoolean('use-new-run'))
    .option('--ignore-path <path>', 'path to leave out of snapshots (repeatable)', collect)
    .option('--ignore-var-run [bool]', 'leave /var/run out of snapshots (default true)', parseBoolean('ignore-var-run'))
    .option('--force-build-metadata [bool]', 'always write build metadata into the image', parseBoolean('force-build-metadata'))
    .option('--kaniko-dir <dir>', "kiln's own work directory (env KANIKO_DIR)")
    .option('--cache [bool]', 'use the layer cache', parseBoolean('cache'))
    .option('--cache-repo <repo>', 'repository for cached layers (oci:DIR for a layout)')
    .option('--cache-dir <dir>', 'local directory of cached base images')
    .option('--cache-ttl <duration>', 'cache lifetime (default 336h)', parseDurationSeconds('cache-ttl'))
    .option('--cache-copy-layers [bool]', 'cache COPY layers', parseBoolean('cache-copy-layers'))
    .option('--cache-run-layers [bool]', 'cache RUN layers (default true)', parseBoolean('cache-run-layers'))
    .option('--compressed-caching [bool]', 'compress cached layers (default true)', parseBoolean('compressed-caching'))
    .option('--build-arg <K=V>', 'build argument; a bare K takes its value from the environment (repeatable)', collect)
    .option('--target <stage>', 'stage to build')
    .option('--label <k=v>', 'image label (repeatable)', collect)
    .option('--custom-platform <os/arch[/variant]>', 'platform of the image to build')
    .option('--reproducible [bool]', 'strip timestamps so the same inputs give the same digest', parseBoolean('reproducible'))
    .option('--skip-unused-stages [bool]', 'build only the stages the target needs', parseBoolean('skip-unused-stages'))
    .addOption(new Option('--compression <algorithm>', 'layer compression').choices(compressions).argParser(oneOf('compression', compressions)))
    .option('--compression-level <n>', 'compression level', nonNegativeInteger('compression-level'))
    .option('--cleanup [bool]', 'empty the filesystem after the build (in-place isolation)', parseBoolean('cleanup'))
    .option('--secret <id=…,src=…|env=…>', 'secret for RUN --mount=type=secret (repeatable)', collect)
    .option('--dry-run [bool]', 'print the resolved build plan; contact no registry, run nothing', parseBoolean('dry-run'))
    .addOption(new Option('--dryrun [bool]', 'alias of --dry-run').argParser(parseBoolean('dryrun')).hideHelp())
    .option('--cap-add <cap>', 'capability to grant RUN steps (repeatable)', collect)
    .option('--cap-drop <cap>', 'capability to take from RUN steps (repeatable)', collect)
    .option('--allow <entitlement>', 'entitlement such as security.insecure (repeatable)', collect)
    .addOption(new Option('--isolation <mode>', 'how RUN steps are isolated: chroot (namespaces), in-place (the job container\'s own root, kaniko\'s model) or auto (chroot where namespaces work, else in-place in a container)').choices(isolations).argParser(oneOf('isolation', isolations)))
    .addOption(new Option('-v, --verbosity <level>', 'log level').choices(verbosities).argParser(oneOf('verbosity', verbosities)))
    .addOption(new Option('--log-format <format>', 'log format').choices(logFormats).argParser(oneOf('log-format', logFormats)))
    .option('--log-timestamp [bool]', 'prefix log lines with a timestamp', parseBoolean('log-timestamp'))
    .option('--force [bool]', 'allow --isolation in-place outside a container (it replaces the filesystem kiln runs on)', parseBoolean('force'));
  return addRegistryFlags(command);
}

function parseSecret(entry: string): SecretSource {
  const fields: Record<string, string> = {};
  for (const part of entry.split(',')) {
    const [key, value] = splitKeyValue('secret', part);
    fields[key] = value ?? '';
  }
  const { id, src, source, env, type } = fields;
  if (!id) throw new UsageError(`--secret: missing id= in "${entry}"`);
  if (type !== undefined && type !== 'file' && type !== 'env') throw new UsageError(`--secret: type must be file or env in "${entry}"`);
  const named = src ?? source;
  // buildx reads `src` as the variable's name when type=env.
  if (type === 'env') return { id, env: env ?? named ?? id };
  const file = named;
  if (file === undefined && env === undefined) return { id, env: id };
  return { id, ...(file === undefined ? {} : { src: file }), ...(env === undefined ? {} : { env }) };
}

function parseGitOptions(entries: readonly string[]): Record<string, string> {
  const allowed = ['branch', 'single-branch', 'recurse-submodules', 'insecure-skip-tls'];
  const options: Record<string, string> = {};
  for (const entry of entries.flatMap((value) => value.split(','))) {
    const [key, value] = splitKeyValue('git', entry);
    if (!allowed.includes(key)) throw new UsageError(`--git: unknown option "${key}" (expected ${allowed.join(', ')})`);
    options[key] = value ?? '';
  }
  return options;
}

function buildArgs(entries: readonly string[], env: NodeJS.ProcessEnv): Record<string, string> {
  const args: Record<string, string> = {};
  for (const entry of entries) {
    const [key, value] = splitKeyValue('build-arg', entry, true);
    // A bare `--build-arg K` takes K from the environment, and is left out when the environment has none.
    const resolved = value ?? env[key];
    if (resolved !== undefined) args[key] = resolved;
  }
  return args;
}

function envBoolean(env: NodeJS.ProcessEnv, name: string): boolean | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : parseBoolean(name)(value);
}

/** Turns collected flag values into one validated BuildOptions; environment fallbacks as kaniko has them. */
export function toBuildOptions(values: BuildFlagValues, env: NodeJS.ProcessEnv, parseRegistry: ParseRegistryValues): BuildOptions {
  const mirrors = values.registryMirror ?? (env.KANIKO_REGISTRY_MIRROR ? env.KANIKO_REGISTRY_MIRROR.split(',') : undefined);
  const registry = parseRegistry({ ...values, ...(mirrors ? { registryMirror: mirrors } : {}) }, env);
  const options: BuildOptions = {
    context: values.context ?? '/workspace/',
    git: parseGitOptions(values.git ?? []),
    dockerfile: values.dockerfile ?? 'Dockerfile',
    destinations: values.destination ?? [],
    noPush: values.noPush ?? envBoolean(env, 'KANIKO_NO_PUSH') ?? false,
    noPushCache: values.noPushCache ?? false,
    pushIgnoreImmutableTagErrors: values.pushIgnoreImmutableTagErrors ?? false,
    skipPushPermissionCheck: values.skipPushPermissionCheck ?? false,
    imageFormat: values.imageFormat ?? 'oci',
    annotations: keyValueRecord('annotation', values.annotation ?? []),
    snapshotMode: values.snapshotMode ?? 'full',
    singleSnapshot: values.singleSnapshot ?? false,
    useNewRun: values.useNewRun ?? false,
    ignorePaths: values.ignorePath ?? [],
    ignoreVarRun: values.ignoreVarRun ?? true,
    forceBuildMetadata: values.forceBuildMetadata ?? false,
    kilnDir: values.kanikoDir ?? env.KANIKO_DIR ?? env.KILN_DIR ?? join(tmpdir(), 'kiln'),
    cache: values.cache ?? false,
    cacheTtlSeconds: values.cacheTtl ?? 336 * 3600,
    cacheCopyLayers: values.cacheCopyLayers ?? false,
    cacheRunLayers: values.cacheRunLayers ?? true,
    compressedCaching: values.compressedCaching ?? true,
    registry,
    buildArgs: buildArgs(values.buildArg ?? [], env),
    labels: keyValueRecord('label', values.label ?? []),
    reproducible: values.reproducible ?? false,
    skipUnusedStages: values.skipUnusedStages ?? true,
    compression: values.compression ?? 'gzip',
    cleanup: values.cleanup ?? false,
    secrets: (values.secret ?? []).map(parseSecret),
    dryRun: values.dryRun ?? values.dryrun ?? false,
    capAdd: values.capAdd ?? [],
    capDrop: values.capDrop ?? [],
    allow: values.allow ?? [],
    isolation: values.isolation ?? 'auto',
    verbosity: values.verbosity ?? 'info',
    logFormat: values.logFormat ?? 'text',
    logTimestamp: values.logTimestamp ?? false,
    force: values.force ?? false,
    ...(values.contextSubPath === undefined ? {} : { contextSubPath: values.contextSubPath }),
    ...(values.tarPath === undefined ? {} : { tarPath: values.tarPath }),
    ...(values.ociLayoutPath === undefined ? {} : { ociLayoutPath: values.ociLayoutPath }),
    ...(values.digestFile === undefined ? {} : { digestFile: values.digestFile }),
    ...(values.imageNameWithDigestFile === undefined ? {} : { imageNameWithDigestFile: values.imageNameWithDigestFile }),
    ...(values.imageNameTagWithDigestFile === undefined ? {} : { imageNameTagWithDigestFile: values.imageNameTagWithDigestFile }),
    ...(values.cacheRepo === undefined ? {} : { cacheRepo: values.cacheRepo }),
    ...(values.cacheDir === undefined ? {} : { cacheDir: values.cacheDir }),
    ...(values.target === undefined ? {} : { target: values.target }),
    ...(values.customPlatform === undefined ? {} : { customPlatform: values.customPlatform }),
    ...(values.compressionLevel === undefined ? {} : { compressionLevel: values.compressionLevel }),
  };
  if (options.tarPath !== undefined && options.destinations.length === 0 && !options.noPush) {
    throw new UsageError('--tar-path needs a --destination to name the image (or --no-push)');
  }
  return options;
}
