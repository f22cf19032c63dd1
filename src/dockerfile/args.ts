/**
 * Build arguments: `--build-arg` values, the predefined proxy ARGs and the automatic platform ARGs
 * BuildKit defines in the global scope.
 */

/** os/architecture[/variant], the shape of the OCI platform (kept local: dockerfile/ imports nothing of ours). */
export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

/** Predefined ARGs: usable in RUN without an ARG line, and left out of the history unless declared. */
export const PROXY_ARGS: readonly string[] = [
  'HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy',
  'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy',
];

export class BuildArgError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BuildArgError';
  }
}

/**
 * `--build-arg K=V` sets K; a bare `--build-arg K` takes K from `env` (the process environment) and is
 * dropped when K is unset there, as with `docker build`. Later values win.
 */
export function resolveBuildArgs(list: readonly string[], env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    if (key === '') throw new BuildArgError(`invalid build-arg "${item}": expected KEY=VALUE or KEY`);
    if (eq >= 0) {
      out[key] = item.slice(eq + 1);
    } else {
      const v = Object.hasOwn(env, key) ? env[key] : undefined;
      if (v !== undefined) out[key] = v;
    }
  }
  return out;
}

export class InvalidPlatformError extends Error {
  constructor(readonly platform: string) {
    super(`"${platform}": invalid platform: expected os/arch[/variant] such as linux/amd64`);
    this.name = 'InvalidPlatformError';
  }
}

const ARCH_ALIASES: Record<string, PlatformSpec> = {
  x86_64: { os: 'linux', architecture: 'amd64' },
  'x86-64': { os: 'linux', architecture: 'amd64' },
  aarch64: { os: 'linux', architecture: 'arm64' },
  armhf: { os: 'linux', architecture: 'arm', variant: 'v7' },
  armel: { os: 'linux', architecture: 'arm', variant: 'v6' },
  i386: { os: 'linux', architecture: '386' },
  i686: { os: 'linux', architecture: '386' },
};

const KNOWN_OS = new Set(['linux', 'windows', 'darwin', 'freebsd', 'netbsd', 'openbsd', 'solaris', 'illumos', 'aix', 'android', 'ios', 'plan9', 'js', 'wasip1']);

/** containerd's platforms.Parse, normalised: `linux/arm64`, `linux/arm/v7`, `arm64` (OS defaults to linux). */
export function parsePlatform(text: string): PlatformSpec {
  const parts = text.trim().toLowerCase().split('/');
  if (parts.some((p) => p === '' || !/^[a-z0-9_.+-]+$/.test(p)) || parts.length > 3) {
    throw new InvalidPlatformError(text);
  }
  let spec: PlatformSpec;
  if (parts.length === 1) {
    const only = parts[0] ?? '';
    spec = KNOWN_OS.has(only) ? { os: only, architecture: 'amd64' } : { ...(ARCH_ALIASES[only] ?? { os: 'linux', architecture: only }) };
  } else {
    const arch = parts[1] ?? '';
    const alias = ARCH_ALIASES[arch];
    spec = { os: parts[0] ?? 'linux', architecture: alias?.architecture ?? arch };
    const variant = parts[2] ?? alias?.variant;
    if (variant !== undefined) spec.variant = variant;
  }
  if (spec.architecture === 'arm64' && spec.variant === 'v8') delete spec.variant;
  if (spec.architecture === 'arm' && spec.variant === undefined) spec.variant = 'v7';
  if (spec.architecture === 'arm' && spec.variant === '7') spec.variant = 'v7';
  return spec;
}

export function formatPlatform(p: PlatformSpec): string {
  return [p.os, p.architecture, p.variant].filter((x) => x !== undefined && x !== '').join('/');
}

/**
 * The automatic ARGs of the global scope (usable in FROM; inside a stage after a bare `ARG NAME`).
 * TARGETSTAGE is the name of the stage being built.
 */
export function automaticArgs(target: PlatformSpec, build: PlatformSpec, targetStage: string): [string, string][] {
  return [
    ['BUILDPLATFORM', formatPlatform(build)],
    ['BUILDOS', build.os],
    ['BUILDARCH', build.architecture],
    ['BUILDVARIANT', build.variant ?? ''],
    ['TARGETPLATFORM', formatPlatform(target)],
    ['TARGETOS', target.os],
    ['TARGETARCH', target.architecture],
    ['TARGETVARIANT', target.variant ?? ''],
    ['TARGETSTAGE', targetStage],
  ];
}
