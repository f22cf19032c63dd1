import { describe, expect, it } from 'vitest';
import { Agent } from 'undici';
import { Authenticator } from '../../../src/registry/auth.js';
import type { Credential } from '../../../src/registry/types.js';
import { systemClock } from '../../../src/registry/retry.js';

// These paths answer from the challenge and the credential alone: no request is made, so the
// dispatcher is never used (a token fetch is covered by the e2e tests against the real registry).
function authenticator(credential: Credential | undefined): Authenticator {
  return new Authenticator({
    registry: 'registry.example:5000',
    credentials: { get: async () => credential },
    dispatcher: new Agent(),
    clock: systemClock,
  });
}

describe('Authenticator without a token server', () => {
  it('sends nothing when the registry let us in anonymously', async () => {
    const auth = authenticator({ kind: 'basic', username: 'u', password: 'p' });
    auth.setChallengeFromHeader(undefined);
    expect(await auth.authorization(['repository:a:pull'], 'a')).toBeUndefined();
  });

  it('answers a Basic challenge with the basic credential', async () => {
    const auth = authenticator({ kind: 'basic', username: 'kiln', password: 's3cr:et' });
    auth.setChallengeFromHeader('Basic realm="registry"');
    expect(await auth.authorization(['repository:a:pull'], 'a')).toBe(`Basic ${Buffer.from('kiln:s3cr:et').toString('base64')}`);
  });

  it('uses a registry token as the Bearer token directly', async () => {
    const auth = authenticator({ kind: 'registryToken', token: 'ready-token' });
    auth.setChallengeFromHeader('Bearer realm="https://auth.example/token",service="registry"');
    expect(await auth.authorization(['repository:a:pull'], 'a')).toBe('Bearer ready-token');
  });

  it('does not send a token to a Basic challenge or a password to an unknown scheme', async () => {
    const withToken = authenticator({ kind: 'identityToken', token: 'refresh' });
    withToken.setChallengeFromHeader('Basic realm="registry"');
    expect(await withToken.authorization([], '')).toBeUndefined();
    const withPassword = authenticator({ kind: 'basic', username: 'u', password: 'p' });
    withPassword.setChallengeFromHeader('Negotiate');
    expect(await withPassword.authorization([], '')).toBeUndefined();
  });

  it('says why a 401 happened without repeating the secret', async () => {
    const anonymous = authenticator(undefined);
    anonymous.setChallengeFromHeader('Basic realm="registry"');
    expect(await anonymous.describeRefusal(undefined)).toMatch(/no credentials are configured for registry\.example:5000/);

    const withPassword = authenticator({ kind: 'basic', username: 'kiln', password: 'hunter2-secret' });
    const refusal = await withPassword.describeRefusal('Bearer realm="x",error="insufficient_scope"');
    expect(refusal).toContain('"kiln"');
    expect(refusal).toContain('insufficient_scope');
    expect(refusal).not.toContain('hunter2-secret');
  });

  it('refreshes only for a challenge it understands', () => {
    const auth = authenticator(undefined);
    expect(auth.handleUnauthorized(undefined, [])).toBe(false);
    expect(auth.handleUnauthorized('Bearer realm="https://auth.example/token"', ['repository:a:pull'])).toBe(true);
  });
});
