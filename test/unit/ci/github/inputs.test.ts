import { describe, expect, it } from 'vitest';
import { buildOptionsFromArguments, CiInputError, splitArguments } from '../../../../src/ci/cli-options.js';
import { parseBooleanInput, parseInlineSecrets, parseList, withoutVariables } from '../../../../src/ci/inputs.js';
import { readActionInputs, toCliArguments, type ActionInputs } from '../../../../src/ci/github/inputs.js';

function inputs(values: Record<string, string>): ActionInputs {
  return readActionInputs((name) => values[name] ?? '');
}

function options(values: Record<string, string>, secretFiles = new Map<string, string>()) {
  return buildOptionsFromArguments(toCliArguments(inputs(values), { kilnDir: '/tmp/kiln-work/kiln', secretFiles }), {});
}

describe('list and boolean inputs', () => {
  it('splits lists by line and comma, trimming and dropping blanks', () => {
    expect(parseList('a/b:1, a/b:2\n\n  c/d:3  \n,')).toEqual(['a/b:1', 'a/b:2', 'c/d:3']);
  });
  it('keeps commas when the values may hold them', () => {
    expect(parseList('A=1,2\r\nB=x', { ignoreComma: true })).toEqual(['A=1,2', 'B=x']);
  });
  it('reads YAML booleans, blank as the default, and rejects anything else', () => {
    expect(parseBooleanInput('push', 'True', false)).toBe(true);
    expect(parseBooleanInput('push', 'FALSE', true)).toBe(false);
    expect(parseBooleanInput('push', '  ', true)).toBe(true);
    expect(() => parseBooleanInput('push', 'yes', true)).toThrow(CiInputError);
    expect(() => parseBooleanInput('push', 'yes', true)).toThrow(/input "push"/);
  });
  it('reads ID=VALUE secrets, values keeping "=" and commas', () => {
    expect(parseInlineSecrets('secrets', 'TOKEN=a=b,c\nnpm.rc=x')).toEqual([
      { id: 'TOKEN', value: 'a=b,c' },
      { id: 'npm.rc', value: 'x' },
    ]);
    expect(() => parseInlineSecrets('secrets', '=nothing')).toThrow(/ID=VALUE/);
    expect(() => parseInlineSecrets('secrets', 'bad/id=x')).toThrow(/secret id/);
  });
  it('splits extra arguments like a shell, quotes and all, leaving variables alone', () => {
    expect(splitArguments(`--label "team=a b" --build-arg='X=1 2' $HOME`)).toEqual(['--label', 'team=a b', '--build-arg=X=1 2', '$HOME']);
    expect(splitArguments('   ')).toEqual([]);
    expect(() => splitArguments('--a | rm')).toThrow(/shell operators/);
  });
});

describe('action inputs → BuildOptions through the CLI parser', () => {
  it('defaults like docker/build-push-action: context ., file {context}/Dockerfile, push true', () => {
    const parsed = inputs({});
    expect(parsed.context).toBe('.');
    expect(parsed.file).toBe('Dockerfile');
    expect(inputs({ context: 'app' }).file).toBe('app/Dockerfile');
    expect(inputs({ context: 'git://github.com/o/r.git' }).file).toBe('Dockerfile');
    const built = options({ tags: 'r.example/a:1' });
    expect(built.context).toBe('.');
    expect(built.noPush).toBe(false);
    expect(built.kilnDir).toBe('/tmp/kiln-work/kiln');
  });

  it('maps every input to its kaniko flag', () => {
    const secretFiles = new Map([['TOKEN', '/tmp/kiln-work/secrets/secret-0']]);
    const built = options(
      {
        context: 'ctx',
        file: 'ctx/Dockerfile.prod',
        tags: 'r.example/a:1\nr.example/a:latest,r.example/b:2',
        push: 'false',
        'build-args': 'VERSION=1.2,3\nEMPTY=',
        target: 'final',
        labels: 'org.opencontainers.image.title=app, with comma',
        annotations: 'org.opencontainers.image.source=https://example.com',
        caps: 'SYS_PTRACE, NET_ADMIN',
        'snapshot-mode': 'redo',
        'single-snapshot': 'true',
        cache: 'true',
        'cache-repo': 'r.example/cache',
        'cache-ttl': '2h',
        platform: 'linux/arm64',
        secrets: 'TOKEN=t0ps3cret',
        'insecure-registries': 'localhost:5000',
      },
      secretFiles,
    );
    expect(built).toMatchObject({
      context: 'ctx',
      dockerfile: 'ctx/Dockerfile.prod',
      destinations: ['r.example/a:1', 'r.example/a:latest', 'r.example/b:2'],
      noPush: true,
      buildArgs: { VERSION: '1.2,3', EMPTY: '' },
      target: 'final',
      labels: { 'org.opencontainers.image.title': 'app, with comma' },
      annotations: { 'org.opencontainers.image.source': 'https://example.com' },
      capAdd: ['SYS_PTRACE', 'NET_ADMIN'],
      snapshotMode: 'redo',
      singleSnapshot: true,
      cache: true,
      cacheRepo: 'r.example/cache',
      cacheTtlSeconds: 7200,
      customPlatform: 'linux/arm64',
      secrets: [{ id: 'TOKEN', src: '/tmp/kiln-work/secrets/secret-0' }],
    });
    expect(built.registry.insecureRegistries).toEqual(['localhost:5000']);
  });

  it('lets extra-args add flags and override the ones the inputs set', () => {
    const built = options({ tags: 'r.example/a:1', 'snapshot-mode': 'redo', 'extra-args': '--snapshot-mode=time --reproducible --label "x=a b"' });
    expect(built.snapshotMode).toBe('time');
    expect(built.reproducible).toBe(true);
    expect(built.labels).toEqual({ x: 'a b' });
  });

  it('names the input or flag that is wrong', () => {
    expect(() => options({ 'snapshot-mode': 'sometimes' })).toThrow(/snapshot-mode/);
    expect(() => options({ 'extra-args': '--no-such-flag' })).toThrow(CiInputError);
    expect(() => options({ 'extra-args': '--no-such-flag' })).toThrow(/no-such-flag/);
    expect(() => options({ 'build-args': '=1' })).toThrow(/build-arg/);
    expect(() => inputs({ platform: 'linux/amd64,linux/arm64' })).toThrow(/one platform/);
    expect(() => options({ secrets: 'TOKEN=x' })).toThrow(/not written/);
  });
});

describe('the environment handed to the build', () => {
  it('drops the variables that carried inputs and credentials', () => {
    expect(withoutVariables({ PATH: '/bin', INPUT_PASSWORD: 'pw', ENDPOINT_AUTH_X: 'y', ENDPOINT_URL_X: 'u' }, ['INPUT_', 'ENDPOINT_AUTH_'])).toEqual({ PATH: '/bin', ENDPOINT_URL_X: 'u' });
  });
});
