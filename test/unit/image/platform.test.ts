import { describe, expect, it } from 'vitest';
import {
  InvalidPlatformError,
  NoMatchingPlatformError,
  compatiblePlatforms,
  formatPlatform,
  hostPlatform,
  normalizePlatform,
  parsePlatform,
  samePlatform,
  selectManifest,
} from '../../../src/image/platform.js';
import type { Descriptor, ImageIndex, Platform } from '../../../src/image/types.js';

describe('parsePlatform / normalizePlatform', () => {
  it.each([
    ['linux/amd64', 'linux/amd64'],
    ['linux/x86_64', 'linux/amd64'],
    ['linux/x86-64', 'linux/amd64'],
    ['Linux/AMD64', 'linux/amd64'],
    ['linux/amd64/v1', 'linux/amd64'],
    ['linux/amd64/v3', 'linux/amd64/v3'],
    ['linux/aarch64', 'linux/arm64/v8'],
    ['linux/arm64', 'linux/arm64/v8'],
    ['linux/arm64/8', 'linux/arm64/v8'],
    ['linux/arm64/v8', 'linux/arm64/v8'],
    ['linux/arm64/v9.0', 'linux/arm64/v9'],
    ['linux/arm', 'linux/arm/v7'],
    ['linux/arm/7', 'linux/arm/v7'],
    ['linux/arm/6', 'linux/arm/v6'],
    ['linux/armhf', 'linux/arm/v7'],
    ['linux/armel', 'linux/arm/v6'],
    ['linux/i386', 'linux/386'],
    ['linux/386', 'linux/386'],
    ['linux/s390x', 'linux/s390x'],
    ['linux/ppc64le', 'linux/ppc64le'],
    ['linux/riscv64', 'linux/riscv64'],
    ['windows/amd64', 'windows/amd64'],
    ['macos/arm64', 'darwin/arm64/v8'],
  ])('%s → %s', (input, expected) => {
    expect(formatPlatform(parsePlatform(input))).toBe(expected);
  });

  it.each(['linux', 'linux/', '/amd64', 'linux/amd64/v8/x', 'linux/am d64', ''])('rejects %j', (input) => {
    expect(() => parsePlatform(input)).toThrow(InvalidPlatformError);
  });

  it('keeps os.version and os.features', () => {
    expect(normalizePlatform({ os: 'windows', architecture: 'x86_64', 'os.version': '10.0.17763.1', 'os.features': ['win32k'] })).toEqual({
      os: 'windows',
      architecture: 'amd64',
      'os.version': '10.0.17763.1',
      'os.features': ['win32k'],
    });
  });

  it('samePlatform compares normalised forms', () => {
    expect(samePlatform({ os: 'linux', architecture: 'arm64' }, { os: 'linux', architecture: 'aarch64', variant: 'v8' })).toBe(true);
    expect(samePlatform({ os: 'linux', architecture: 'arm' }, { os: 'linux', architecture: 'arm', variant: 'v6' })).toBe(false);
  });
});

describe('hostPlatform', () => {
  it.each([
    ['x64', 'linux', 'linux/amd64'],
    ['arm64', 'linux', 'linux/arm64/v8'],
    ['arm', 'linux', 'linux/arm/v7'],
    ['ia32', 'linux', 'linux/386'],
    ['ppc64', 'linux', 'linux/ppc64le'],
    ['s390x', 'linux', 'linux/s390x'],
    ['x64', 'win32', 'windows/amd64'],
  ])('%s on %s → %s', (arch, os, expected) => {
    expect(formatPlatform(hostPlatform(arch, os))).toBe(expected);
  });

  it('defaults to this process', () => {
    expect(hostPlatform().os).toBe(process.platform === 'win32' ? 'windows' : process.platform);
  });
});

describe('compatiblePlatforms', () => {
  it.each([
    ['linux/amd64', ['linux/amd64', 'linux/386']],
    ['linux/amd64/v3', ['linux/amd64/v3', 'linux/amd64/v2', 'linux/amd64', 'linux/386']],
    ['linux/arm64', ['linux/arm64/v8', 'linux/arm/v8', 'linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']],
    ['linux/arm64/v9', ['linux/arm64/v9', 'linux/arm64/v8', 'linux/arm/v8', 'linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']],
    ['linux/arm/v7', ['linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']],
    ['linux/arm/v5', ['linux/arm/v5']],
    ['linux/s390x', ['linux/s390x']],
  ])('%s', (wanted, expected) => {
    expect(compatiblePlatforms(parsePlatform(wanted)).map(formatPlatform)).toEqual(expected);
  });
});

function entry(n: number, platform?: Platform): Descriptor {
  return {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: `sha256:${String(n).repeat(64).slice(0, 64)}`,
    size: 100 + n,
    ...(platform !== undefined ? { platform } : {}),
  };
}

function index(...manifests: Descriptor[]): ImageIndex {
  return { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests };
}

describe('selectManifest', () => {
  const amd64 = entry(1, { os: 'linux', architecture: 'amd64' });
  const arm64 = entry(2, { os: 'linux', architecture: 'arm64', variant: 'v8' });
  const armv7 = entry(3, { os: 'linux', architecture: 'arm', variant: 'v7' });
  const armv6 = entry(4, { os: 'linux', architecture: 'arm', variant: 'v6' });
  const attestation = entry(5, { os: 'unknown', architecture: 'unknown' });
  const i386 = entry(6, { os: 'linux', architecture: '386' });
  const arm64NoVariant = entry(7, { os: 'linux', architecture: 'arm64' });
  const windows = entry(8, { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763.1' });

  it('picks the exact platform', () => {
    const list = index(attestation, armv6, armv7, arm64, amd64);
    expect(selectManifest(list, parsePlatform('linux/amd64'))).toBe(amd64);
    expect(selectManifest(list, parsePlatform('linux/arm64'))).toBe(arm64);
    expect(selectManifest(list, parsePlatform('linux/arm/v6'))).toBe(armv6);
    expect(selectManifest(list, parsePlatform('linux/arm'))).toBe(armv7);
  });

  it('an exact variant beats an earlier compatible one', () => {
    expect(selectManifest(index(armv6, armv7), parsePlatform('linux/arm/v7'))).toBe(armv7);
  });

  it('an index entry without a variant matches the baseline variant', () => {
    expect(selectManifest(index(amd64, arm64NoVariant), parsePlatform('linux/arm64/v8'))).toBe(arm64NoVariant);
    expect(selectManifest(index(amd64, arm64NoVariant), { os: 'linux', architecture: 'aarch64' })).toBe(arm64NoVariant);
  });

  it('falls back to compatible platforms in order', () => {
    expect(selectManifest(index(armv6, amd64), parsePlatform('linux/arm/v7'))).toBe(armv6);
    expect(selectManifest(index(amd64, armv6, armv7), parsePlatform('linux/arm64'))).toBe(armv7);
    expect(selectManifest(index(i386), parsePlatform('linux/amd64'))).toBe(i386);
    expect(selectManifest(index(i386, amd64), parsePlatform('linux/amd64/v2'))).toBe(amd64);
  });

  it('the first of equal entries wins', () => {
    const second = entry(9, { os: 'linux', architecture: 'amd64' });
    expect(selectManifest(index(amd64, second), parsePlatform('linux/amd64'))).toBe(amd64);
  });

  it('never picks entries without a platform, or of another os', () => {
    expect(() => selectManifest(index(entry(1), windows), parsePlatform('linux/amd64'))).toThrow(NoMatchingPlatformError);
    expect(selectManifest(index(entry(1), windows), parsePlatform('windows/amd64'))).toBe(windows);
  });

  it('a miss lists what the index offers (attestations left out)', () => {
    const list = index(attestation, amd64, arm64);
    expect(() => selectManifest(list, parsePlatform('linux/s390x'))).toThrow(
      'no image for platform linux/s390x in the index; it offers: linux/amd64, linux/arm64/v8',
    );
    expect(() => selectManifest(index(armv7), parsePlatform('linux/arm/v6'))).toThrow(/offers: linux\/arm\/v7/);
    expect(() => selectManifest(index(), parsePlatform('linux/amd64'))).toThrow(/\(no platforms\)/);
    try {
      selectManifest(list, parsePlatform('linux/s390x'));
    } catch (error) {
      expect((error as NoMatchingPlatformError).offered).toHaveLength(2);
      expect((error as NoMatchingPlatformError).wanted).toEqual({ os: 'linux', architecture: 's390x' });
    }
  });
});
