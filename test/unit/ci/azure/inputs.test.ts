import { describe, expect, it } from 'vitest';
import { buildOptionsFromArguments } from '../../../../src/ci/cli-options.js';
import { imageReferences, readServiceConnection, readTaskInput, readTaskInputs, registryHost, toCliArguments } from '../../../../src/ci/azure/inputs.js';
import { loggingCommand } from '../../../../src/ci/azure/logging-commands.js';

describe('Azure task inputs', () => {
  it('reads INPUT_* as the agent names them', () => {
    expect(readTaskInput({ INPUT_BUILDCONTEXT: ' ctx ' }, 'buildContext')).toBe('ctx');
    expect(readTaskInput({ INPUT_SOME_NAME: 'x' }, 'some.name')).toBe('x');
  });
  it('resolves paths against the default working directory; the context defaults to the Dockerfile’s directory', () => {
    const env = { SYSTEM_DEFAULTWORKINGDIRECTORY: '/src', INPUT_DOCKERFILE: 'app/Dockerfile', INPUT_BUILDCONTEXT: '**' };
    expect(readTaskInputs(env, '/elsewhere')).toMatchObject({ dockerfile: '/src/app/Dockerfile', buildContext: '/src/app', push: true });
    expect(readTaskInputs({ ...env, INPUT_BUILDCONTEXT: '.' }, '/elsewhere').buildContext).toBe('/src');
    expect(() => readTaskInputs({ ...env, INPUT_DOCKERFILE: '**/Dockerfile' }, '/elsewhere')).toThrow(/not a pattern/);
  });
  it('reads a Docker registry service connection from ENDPOINT_* (id upper-cased by the agent)', () => {
    const env = {
      ENDPOINT_URL_AB12: 'https://index.docker.io/v1/',
      ENDPOINT_AUTH_PARAMETER_AB12_USERNAME: 'user',
      ENDPOINT_AUTH_PARAMETER_AB12_PASSWORD: 'pw',
    };
    expect(readServiceConnection(env, 'ab12')).toEqual({ registry: 'docker.io', username: 'user', password: 'pw' });
    expect(readServiceConnection({ ...env, ENDPOINT_AUTH_PARAMETER_AB12_REGISTRY: 'https://myacr.azurecr.io' }, 'ab12').registry).toBe('myacr.azurecr.io');
    expect(() => readServiceConnection({}, 'ab12')).toThrow(/ENDPOINT_URL_AB12/);
    expect(registryHost('http://127.0.0.1:5000/')).toBe('127.0.0.1:5000');
  });
  it('names images REGISTRY/REPOSITORY:TAG and maps inputs to kiln flags', () => {
    const env = {
      SYSTEM_DEFAULTWORKINGDIRECTORY: '/src',
      INPUT_REPOSITORY: 'team/app',
      INPUT_TAGS: '1\nlatest',
      INPUT_CAPS: 'SYS_PTRACE',
      INPUT_SNAPSHOTMODE: 'redo',
      INPUT_PUSH: 'false',
      INPUT_ARGUMENTS: '--build-arg "V=1 2" --reproducible',
    };
    const inputs = readTaskInputs(env, '/elsewhere');
    const destinations = imageReferences(inputs, 'r.example:5000');
    expect(destinations).toEqual(['r.example:5000/team/app:1', 'r.example:5000/team/app:latest']);
    expect(imageReferences({ repository: 'r.example/x', tags: [] }, undefined)).toEqual(['r.example/x:latest']);
    const options = buildOptionsFromArguments(toCliArguments(inputs, destinations, '/tmp/k'), {});
    expect(options).toMatchObject({
      context: '/src',
      dockerfile: '/src/Dockerfile',
      destinations,
      noPush: true,
      capAdd: ['SYS_PTRACE'],
      snapshotMode: 'redo',
      buildArgs: { V: '1 2' },
      reproducible: true,
      kilnDir: '/tmp/k',
    });
  });
});

describe('logging commands', () => {
  it('escapes properties and data as the agent expects', () => {
    expect(loggingCommand('task.setvariable', { variable: 'digest', isOutput: 'true' }, 'sha256:ab')).toBe('##vso[task.setvariable variable=digest;isOutput=true;]sha256:ab');
    expect(loggingCommand('task.logissue', { type: 'error', sourcepath: 'a;b]c', linenumber: undefined }, '50% done\nnext')).toBe(
      '##vso[task.logissue type=error;sourcepath=a%3Bb%5Dc;]50%AZP25 done%0Anext',
    );
    expect(loggingCommand('task.setsecret', {}, 'pw')).toBe('##vso[task.setsecret]pw');
  });
});
