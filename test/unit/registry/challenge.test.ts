import { describe, expect, it } from 'vitest';
import { mergeScopes, parseWwwAuthenticate, repositoryScope } from '../../../src/registry/auth.js';

describe('parseWwwAuthenticate', () => {
  it('reads a Bearer challenge with a comma inside a quoted scope', () => {
    const header =
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push"';
    expect(parseWwwAuthenticate(header)).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/busybox:pull,push',
        },
      },
    ]);
  });

  it('reads a Basic challenge and lower-cases scheme and param names', () => {
    expect(parseWwwAuthenticate('BASIC Realm="kiln test"')).toEqual([{ scheme: 'basic', params: { realm: 'kiln test' } }]);
  });

  it('splits several challenges in one header', () => {
    const challenges = parseWwwAuthenticate('Basic realm="a", Bearer realm="https://t/token", service=reg');
    expect(challenges.map((c) => c.scheme)).toEqual(['basic', 'bearer']);
    expect(challenges[1]?.params).toEqual({ realm: 'https://t/token', service: 'reg' });
  });

  it('unescapes quoted-pairs and accepts spaces around =', () => {
    expect(parseWwwAuthenticate('Bearer realm = "a\\"b", error="insufficient_scope"')[0]?.params).toEqual({
      realm: 'a"b',
      error: 'insufficient_scope',
    });
  });

  it('gives no challenge for an empty header and survives junk', () => {
    expect(parseWwwAuthenticate('')).toEqual([]);
    expect(() => parseWwwAuthenticate('"=,,=" Bearer realm="x"')).not.toThrow();
    expect(parseWwwAuthenticate('"=,,=" Bearer realm="x"').at(-1)).toEqual({ scheme: 'bearer', params: { realm: 'x' } });
  });
});

describe('scopes', () => {
  it('spells a repository scope', () => {
    expect(repositoryScope('org/app', ['pull', 'push'])).toBe('repository:org/app:pull,push');
  });

  it('merges actions of the same repository and sorts the result', () => {
    expect(
      mergeScopes(['repository:b:push', 'repository:a:pull', 'repository:b:pull', 'registry:catalog:*']),
    ).toEqual(['registry:catalog:*', 'repository:a:pull', 'repository:b:pull,push']);
  });

  it('keeps a repository name holding a port-like colon intact', () => {
    expect(mergeScopes(['repository:localhost:5000/x:pull'])).toEqual(['repository:localhost:5000/x:pull']);
  });
});
