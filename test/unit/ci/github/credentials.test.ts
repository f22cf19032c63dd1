import { describe, expect, it } from 'vitest';
import { resolveRegistryLogin } from '../../../../src/ci/github/credentials.js';

const none = { registry: '', username: '', password: '', githubToken: '', tags: [] as string[] };

describe('the registry login the action inputs ask for', () => {
  it('logs in to the first tag’s registry with an explicit password, as the actor by default', () => {
    expect(resolveRegistryLogin({ ...none, password: 'pw', tags: ['registry.example:5000/team/app:1'] }, { GITHUB_ACTOR: 'octo' })).toEqual({
      registry: 'registry.example:5000',
      username: 'octo',
      password: 'pw',
    });
    expect(resolveRegistryLogin({ ...none, password: 'pw', username: 'bot', registry: 'quay.io', tags: ['ghcr.io/o/a'] }, {})).toEqual({
      registry: 'quay.io',
      username: 'bot',
      password: 'pw',
    });
  });
  it('uses the job token for ghcr.io when no password is given', () => {
    expect(resolveRegistryLogin({ ...none, githubToken: 'ghs_x', tags: ['r.example/a:1', 'ghcr.io/o/a:1'] }, { GITHUB_ACTOR: 'octo' })).toEqual({
      registry: 'ghcr.io',
      username: 'octo',
      password: 'ghs_x',
    });
    expect(resolveRegistryLogin({ ...none, tags: ['ghcr.io/o/a:1'] }, { GITHUB_TOKEN: 'env-token' })?.password).toBe('env-token');
  });
  it('asks for no login when nothing needs one', () => {
    expect(resolveRegistryLogin({ ...none, githubToken: 'ghs_x', tags: ['docker.io/o/a:1'] }, {})).toBeUndefined();
    expect(resolveRegistryLogin({ ...none, tags: ['ghcr.io/o/a:1'] }, {})).toBeUndefined();
  });
  it('refuses a password it cannot place', () => {
    expect(() => resolveRegistryLogin({ ...none, password: 'pw' }, { GITHUB_ACTOR: 'octo' })).toThrow(/registry/);
    expect(() => resolveRegistryLogin({ ...none, password: 'pw', tags: ['r.example/a'] }, {})).toThrow(/username/);
  });
});
