import { describe, expect, it } from 'vitest';
import { InvalidReferenceError, isValidReference, parseReference } from '../../../src/image/reference.js';

const hex = 'a'.repeat(64);
const digest = `sha256:${hex}`;

describe('parseReference: normalisation (Docker ParseNormalizedNamed)', () => {
  it.each([
    // input, registry, repository, tag, digest
    ['busybox', 'docker.io', 'library/busybox', 'latest', undefined],
    ['busybox:1.36', 'docker.io', 'library/busybox', '1.36', undefined],
    ['library/busybox', 'docker.io', 'library/busybox', 'latest', undefined],
    ['docker.io/busybox', 'docker.io', 'library/busybox', 'latest', undefined],
    ['docker.io/library/busybox:musl', 'docker.io', 'library/busybox', 'musl', undefined],
    ['index.docker.io/busybox', 'docker.io', 'library/busybox', 'latest', undefined],
    ['index.docker.io/user/app:v1', 'docker.io', 'user/app', 'v1', undefined],
    ['user/app', 'docker.io', 'user/app', 'latest', undefined],
    ['user/team/app', 'docker.io', 'user/team/app', 'latest', undefined],
    ['localhost/app', 'localhost', 'app', 'latest', undefined],
    ['localhost:5000/app:dev', 'localhost:5000', 'app', 'dev', undefined],
    ['127.0.0.1:5000/busybox:latest', '127.0.0.1:5000', 'busybox', 'latest', undefined],
    ['ghcr.io/org/app', 'ghcr.io', 'org/app', 'latest', undefined],
    ['registry.example.com:443/a/b/c:1.0-rc.1', 'registry.example.com:443', 'a/b/c', '1.0-rc.1', undefined],
    ['myhost:5000/app', 'myhost:5000', 'app', 'latest', undefined],
    ['[::1]:5000/app:t', '[::1]:5000', 'app', 't', undefined],
    ['[2001:db8::1]/app', '[2001:db8::1]', 'app', 'latest', undefined],
    // A first component that is not a host name stays a path component...
    ['foo/bar', 'docker.io', 'foo/bar', 'latest', undefined],
    // ...unless it has upper case: Docker then takes it as a registry.
    ['Foo/bar', 'Foo', 'bar', 'latest', undefined],
    // Separators: . _ __ and runs of -
    ['ab_c__d---e/f.g', 'docker.io', 'ab_c__d---e/f.g', 'latest', undefined],
    // A dotted first component is a registry, even one whose name then fails the host grammar.
    ['my.registry/app', 'my.registry', 'app', 'latest', undefined],
    [`busybox@${digest}`, 'docker.io', 'library/busybox', undefined, digest],
    [`busybox:1.36@${digest}`, 'docker.io', 'library/busybox', '1.36', digest],
    [`localhost:5000/app@${digest}`, 'localhost:5000', 'app', undefined, digest],
    ['app:UPPER_case.tag-1', 'docker.io', 'library/app', 'UPPER_case.tag-1', undefined],
    [`app:_${'x'.repeat(127)}`, 'docker.io', 'library/app', `_${'x'.repeat(127)}`, undefined],
    [`app@sha512:${'b'.repeat(128)}`, 'docker.io', 'library/app', undefined, `sha512:${'b'.repeat(128)}`],
  ] as const)('%s', (input, registry, repository, tag, expectedDigest) => {
    const reference = parseReference(input);
    expect({ registry: reference.registry, repository: reference.repository, tag: reference.tag, digest: reference.digest }).toEqual({
      registry,
      repository,
      tag,
      digest: expectedDigest,
    });
  });
});

describe('Reference forms', () => {
  it.each([
    ['busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['docker.io/library/busybox:1', 'docker.io/library/busybox:1', 'busybox:1'],
    ['user/app:v1', 'docker.io/user/app:v1', 'user/app:v1'],
    ['docker.io/library/a/b', 'docker.io/library/a/b:latest', 'library/a/b:latest'],
    ['ghcr.io/org/app:1', 'ghcr.io/org/app:1', 'ghcr.io/org/app:1'],
    ['localhost:5000/x', 'localhost:5000/x:latest', 'localhost:5000/x:latest'],
    [`busybox:1@${digest}`, `docker.io/library/busybox:1@${digest}`, `busybox:1@${digest}`],
  ])('%s → %s / %s', (input, full, familiar) => {
    const reference = parseReference(input);
    expect(reference.toString()).toBe(full);
    expect(`${reference}`).toBe(full);
    expect(reference.familiar()).toBe(familiar);
    expect(parseReference(full).toString()).toBe(full);
  });

  it('defaultTag: false keeps a bare name bare', () => {
    const reference = parseReference('busybox', { defaultTag: false });
    expect(reference.tag).toBeUndefined();
    expect(reference.toString()).toBe('docker.io/library/busybox');
    expect(reference.identifier).toBe('latest');
  });

  it('a digest is not given a default tag, and is what a registry is asked for', () => {
    const reference = parseReference(`busybox@${digest}`);
    expect(reference.tag).toBeUndefined();
    expect(reference.identifier).toBe(digest);
    expect(parseReference(`busybox:1@${digest}`).identifier).toBe(digest);
    expect(parseReference('busybox:1').identifier).toBe('1');
  });

  it('name, withTag, withDigest, repositoryOnly', () => {
    const reference = parseReference('localhost:5000/app:1');
    expect(reference.name).toBe('localhost:5000/app');
    expect(reference.withTag('2').toString()).toBe('localhost:5000/app:2');
    expect(reference.withDigest(digest).toString()).toBe(`localhost:5000/app:1@${digest}`);
    expect(reference.repositoryOnly().toString()).toBe('localhost:5000/app');
    expect(() => reference.withTag('-bad')).toThrow(InvalidReferenceError);
    expect(() => reference.withDigest('sha256:abc')).toThrow(/digest/);
  });
});

describe('parseReference: invalid references', () => {
  it.each([
    ['', /at least one component/],
    ['Busybox', /repository name \(library\/Busybox\) must be lowercase/],
    ['docker.io/User/app', /must be lowercase/],
    ['ghcr.io/Org/app:1', /must be lowercase/],
    [hex, /64-byte hexadecimal/],
    ['busybox:', /invalid tag format ""/],
    ['busybox:-tag', /invalid tag format/],
    ['busybox:.tag', /invalid tag format/],
    [`busybox:${'x'.repeat(129)}`, /invalid tag format/],
    ['busybox:tag with space', /invalid tag format/],
    ['busybox@sha256:abc', /invalid digest format/],
    ['busybox@', /invalid digest format/],
    [`busybox@sha256:${'A'.repeat(64)}`, /lowercase/],
    [`busybox@sha256:${'a'.repeat(63)}`, /length/],
    [`busybox@md5:${'a'.repeat(32)}`, /unsupported digest algorithm "md5"/],
    ['a//b', /invalid repository name/],
    ['/busybox', /invalid/],
    ['busybox/', /invalid repository name/],
    ['-busybox', /invalid repository name/],
    ['busy..box', /invalid repository name/],
    ['busy_-box', /invalid repository name/],
    ['busybox___x', /invalid repository name/],
    ['localhost:port/app', /invalid registry host/],
    ['-host.com/app', /invalid registry host/],
    ['[zz::1]:5000/app', /invalid registry host/],
    ['host.com:5000/app:5000/x', /invalid/],
    ['a.b_c/app', /invalid registry host/],
    [`registry.example.com/${'a'.repeat(240)}`, /not be more than 255 characters/],
  ] as const)('%s', (input, message) => {
    expect(() => parseReference(input)).toThrow(InvalidReferenceError);
    expect(() => parseReference(input)).toThrow(message);
    expect(isValidReference(input)).toBe(false);
  });

  it('the error carries the reference and the reason', () => {
    try {
      parseReference('Busybox:1');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidReferenceError);
      expect((error as InvalidReferenceError).reference).toBe('Busybox:1');
      expect((error as InvalidReferenceError).reason).toMatch(/lowercase/);
    }
  });
});
