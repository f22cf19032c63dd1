import type { Descriptor, ImageIndex, Platform } from './types.js';

/**
 * Platforms (`os/arch[/variant]`), normalised and matched the way containerd's `platforms` package
 * (which BuildKit uses) does: aliases collapse (`x86_64` → `amd64`, `aarch64` → `arm64`), a missing
 * variant means the architecture's baseline (arm64 → v8, arm → v7, amd64 → v1), and an index is
 * searched for the best match first, then for compatible fallbacks (arm/v7 can run v6 and v5 images,
 * arm64 can run 32-bit arm, amd64 can run 386, amd64/v3 can run v2 and v1).
 */

export class InvalidPlatformError extends Error {
  constructor(
    readonly platform: string,
    readonly reason: string,
  ) {
    super(`invalid platform "${platform}": ${reason}`);
    this.name = 'InvalidPlatformError';
  }
}

export class NoMatchingPlatformError extends Error {
  constructor(
    readonly wanted: Platform,
    readonly offered: readonly Platform[],
  ) {
    super(
      `no image for platform ${formatPlatform(wanted)} in the index; it offers: ${
        offered.length > 0 ? offered.map(formatPlatform).join(', ') : '(no platforms)'
      }`,
    );
    this.name = 'NoMatchingPlatformError';
  }
}

const componentPattern = /^[A-Za-z0-9_.-]+$/;

/** Parses `linux/amd64`, `linux/arm/v7`, `linux/arm64/v8`; the result is normalised. */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().split('/');
  if (parts.length < 2 || parts.length > 3) {
    throw new InvalidPlatformError(text, 'expected os/arch or os/arch/variant');
  }
  for (const part of parts) {
    if (!componentPattern.test(part)) throw new InvalidPlatformError(text, `"${part}" is not a valid platform component`);
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return normalizePlatform({ os, architecture, ...(variant !== undefined ? { variant } : {}) });
}

export function formatPlatform(platform: Platform): string {
  const variant = platform.variant !== undefined && platform.variant !== '' ? `/${platform.variant}` : '';
  return `${platform.os}/${platform.architecture}${variant}`;
}

/** Canonical names; arm and arm64 always carry their variant so that equal platforms compare equal. */
export function normalizePlatform(platform: Platform): Platform {
  const os = normalizeOs(platform.os);
  let architecture = platform.architecture.toLowerCase();
  let variant = platform.variant?.toLowerCase() ?? '';
  switch (architecture) {
    case 'i386':
    case '386':
      architecture = '386';
      variant = '';
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      architecture = 'amd64';
      if (variant === 'v1') variant = '';
      break;
    case 'aarch64':
    case 'arm64':
      architecture = 'arm64';
      if (variant === '' || variant === '8' || variant === 'v8.0') variant = 'v8';
      else if (variant === '9' || variant === 'v9.0') variant = 'v9';
      break;
    case 'armhf':
      architecture = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      architecture = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === '' || variant === '7') variant = 'v7';
      else if (/^[5-8]$/.test(variant)) variant = `v${variant}`;
      break;
    default:
      break;
  }
  const result: Platform = { os, architecture };
  if (variant !== '') result.variant = variant;
  if (platform['os.version'] !== undefined) result['os.version'] = platform['os.version'];
  if (platform['os.features'] !== undefined) result['os.features'] = [...platform['os.features']];
  return result;
}

function normalizeOs(os: string): string {
  const lower = os.toLowerCase();
  return lower === 'macos' ? 'darwin' : lower;
}

/** Node's process.arch → OCI architecture names. */
const nodeArchitectures: Record<string, string> = {
  x64: 'amd64',
  ia32: '386',
  arm64: 'arm64',
  arm: 'arm',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
};

/**
 * The platform images are built for and pulled for when none is asked: the host's, like BuildKit.
 * Node's `process.arch` says nothing of the arm variant; v7 is what arm hosts running Node are.
 */
export function hostPlatform(arch: string = process.arch, os: string = process.platform): Platform {
  const architecture = nodeArchitectures[arch] ?? arch;
  return normalizePlatform({ os: os === 'win32' ? 'windows' : os, architecture });
}

/** Platforms that can run on `wanted`, best first. The first entry is `wanted` itself. */
export function compatiblePlatforms(wanted: Platform): Platform[] {
  const platform = normalizePlatform(wanted);
  const { os } = platform;
  const vector: Platform[] = [platform];
  const variantNumber = Number.parseInt((platform.variant ?? '').replace(/^v/, ''), 10);
  switch (platform.architecture) {
    case 'amd64': {
      if (!Number.isNaN(variantNumber) && variantNumber > 1) {
        for (let level = variantNumber - 1; level >= 2; level -= 1) vector.push({ os, architecture: 'amd64', variant: `v${level}` });
        vector.push({ os, architecture: 'amd64' });
      }
      vector.push({ os, architecture: '386' });
      break;
    }
    case 'arm64': {
      if (!Number.isNaN(variantNumber) && variantNumber > 8) {
        for (let level = variantNumber - 1; level >= 8; level -= 1) {
          vector.push({ os, architecture: 'arm64', variant: `v${level}` });
        }
      }
      for (let level = 8; level >= 5; level -= 1) vector.push({ os, architecture: 'arm', variant: `v${level}` });
      break;
    }
    case 'arm': {
      if (!Number.isNaN(variantNumber)) {
        for (let level = variantNumber - 1; level >= 5; level -= 1) vector.push({ os, architecture: 'arm', variant: `v${level}` });
      }
      break;
    }
    default:
      break;
  }
  return vector;
}

/** Whether two platforms name the same thing once normalised (os, architecture, variant). */
export function samePlatform(a: Platform, b: Platform): boolean {
  const x = normalizePlatform(a);
  const y = normalizePlatform(b);
  return x.os === y.os && x.architecture === y.architecture && (x.variant ?? '') === (y.variant ?? '');
}

/**
 * Picks the index entry to use for `wanted`: an exact match wins, then the compatible fallbacks in
 * order; among equals, the first in the index (as containerd does). Entries without a platform (and
 * attestation manifests, whose platform is unknown/unknown) never match.
 */
export function selectManifest(index: ImageIndex, wanted: Platform): Descriptor {
  const candidates = index.manifests.filter(
    (descriptor): descriptor is Descriptor & { platform: Platform } =>
      descriptor.platform !== undefined &&
      typeof descriptor.platform.os === 'string' &&
      typeof descriptor.platform.architecture === 'string',
  );
  for (const acceptable of compatiblePlatforms(wanted)) {
    const found = candidates.find((descriptor) => samePlatform(descriptor.platform, acceptable));
    if (found !== undefined) return found;
  }
  throw new NoMatchingPlatformError(
    normalizePlatform(wanted),
    candidates.map((descriptor) => descriptor.platform).filter((p) => p.os !== 'unknown'),
  );
}
