import type { ImageFormat } from '../image/media-types.js';
import type { TransportOptions } from '../registry/endpoints.js';

export type SnapshotMode = 'full' | 'redo' | 'time' | 'overlay' | 'auto';
export type Isolation = 'chroot' | 'in-place' | 'auto';
export type Compression = 'gzip' | 'zstd';
export type Verbosity = 'panic' | 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
export type LogFormat = 'text' | 'color' | 'json';

/** A `--secret id=…,src=…|env=…` value. */
export interface SecretSource {
  id: string;
  src?: string;
  env?: string;
}

/** kaniko's registry flags: transport per registry, plus retry counts. */
export interface RegistryOptions extends TransportOptions {
  imageDownloadRetry: number;
  pushRetry: number;
}

/**
 * Everything a build needs, typed and validated once at the edge (CLI flags or CI inputs);
 * modules below receive the parts they need explicitly, never a global.
 */
export interface BuildOptions {
  context: string;
  contextSubPath?: string;
  /** `--git branch=…,single-branch=…,recurse-submodules=…,insecure-skip-tls=…` */
  git: Record<string, string>;
  dockerfile: string;
  destinations: string[];
  noPush: boolean;
  noPushCache: boolean;
  tarPath?: string;
  ociLayoutPath?: string;
  digestFile?: string;
  imageNameWithDigestFile?: string;
  imageNameTagWithDigestFile?: string;
  pushIgnoreImmutableTagErrors: boolean;
  skipPushPermissionCheck: boolean;
  imageFormat: ImageFormat;
  annotations: Record<string, string>;
  snapshotMode: SnapshotMode;
  singleSnapshot: boolean;
  useNewRun: boolean;
  ignorePaths: string[];
  ignoreVarRun: boolean;
  forceBuildMetadata: boolean;
  kilnDir: string;
  cache: boolean;
  cacheRepo?: string;
  cacheDir?: string;
  cacheTtlSeconds: number;
  cacheCopyLayers: boolean;
  cacheRunLayers: boolean;
  compressedCaching: boolean;
  registry: RegistryOptions;
  /** `--build-arg K=V`; a bare `K` is resolved from the environment when the options are made. */
  buildArgs: Record<string, string>;
  target?: string;
  labels: Record<string, string>;
  customPlatform?: string;
  reproducible: boolean;
  skipUnusedStages: boolean;
  compression: Compression;
  compressionLevel?: number;
  cleanup: boolean;
  secrets: SecretSource[];
  dryRun: boolean;
  capAdd: string[];
  capDrop: string[];
  allow: string[];
  isolation: Isolation;
  verbosity: Verbosity;
  logFormat: LogFormat;
  logTimestamp: boolean;
  force: boolean;
}
