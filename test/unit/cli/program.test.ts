import { describe, expect, it } from 'vitest';
import type { BuildOptions } from '../../../src/build/options.js';
import type { CopyRequest } from '../../../src/cli/copy-flags.js';
import { parseImageLocation } from '../../../src/cli/copy-flags.js';
import { runCli, type CliDependencies } from '../../../src/cli/program.js';
import { parseRegistryValues } from '../../../src/cli/dependencies.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  built: BuildOptions[];
  copied: CopyRequest[];
}

async function run(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const result: Run = { code: 0, stdout: '', stderr: '', built: [], copied: [] };
  const deps: CliDependencies = {
    version: '9.9.9',
    env,
    stdout: { write: (text) => void (result.stdout += text) },
    stderr: { write: (text) => void (result.stderr += text) },
    parseRegistry: parseRegistryValues,
    build: async (options) => void result.built.push(options),
    copy: async (request) => void result.copied.push(request),
  };
  result.code = await runCli(argv, deps);
  return result;
}

async function buildOptions(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<BuildOptions> {
  const result = await run(argv, env);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const [options] = result.built;
  if (!options) throw new Error('build was not called');
  return options;
}

describe('kiln CLI', () => {
  it('prints its version and help', async () => {
    expect((await run(['--version'])).stdout.trim()).toBe('9.9.9');
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('copy');
    const buildHelp = await run(['build', '--help']);
    for (const flag of ['--context', '--dockerfile', '--destination', '--no-push', '--snapshot-mode', '--cache-repo', '--registry-mirror', '--cap-add']) {
      expect(buildHelp.stdout).toContain(flag);
    }
  });

  it('makes build the default command, with kaniko defaults', async () => {
    const options = await buildOptions([]);
    expect(options.context).toBe('/workspace/');
    expect(options.dockerfile).toBe('Dockerfile');
    expect(options.snapshotMode).toBe('full');
    expect(options.ignoreVarRun).toBe(true);
    expect(options.cacheRunLayers).toBe(true);
    expect(options.cacheTtlSeconds).toBe(336 * 3600);
    expect(options.noPush).toBe(false);
  });

  it('accepts kaniko flag spellings: short names, =value, repeats, pflag booleans', async () => {
    const options = await buildOptions([
      '-c', 'dir:///src', '-f=docker/Dockerfile', '-d', 'reg.example/a:1', '--destination=reg.example/a:2',
      '--no-push=false', '--cache=true', '--cache-ttl', '1h30m', '--ignore-var-run=false', '--single-snapshot',
      '--build-arg', 'A=1', '--build-arg=B=x=y', '--label', 'k=v', '--snapshot-mode=redo', '--insecure-registry', 'r1',
      '--insecure-registry', 'r2', '--skip-tls-verify', '--push-retry', '3', '--dryrun',
    ]);
    expect(options.context).toBe('dir:///src');
    expect(options.dockerfile).toBe('docker/Dockerfile');
    expect(options.destinations).toEqual(['reg.example/a:1', 'reg.example/a:2']);
    expect(options.noPush).toBe(false);
    expect(options.cache).toBe(true);
    expect(options.cacheTtlSeconds).toBe(5400);
    expect(options.ignoreVarRun).toBe(false);
    expect(options.singleSnapshot).toBe(true);
    expect(options.buildArgs).toEqual({ A: '1', B: 'x=y' });
    expect(options.labels).toEqual({ k: 'v' });
    expect(options.snapshotMode).toBe('redo');
    expect(options.registry.insecureRegistries).toEqual(['r1', 'r2']);
    expect(options.registry.skipTlsVerify).toBe(true);
    expect(options.registry.pushRetry).toBe(3);
    expect(options.dryRun).toBe(true);
  });

  it('takes a bare --build-arg from the environment, and kaniko environment variables', async () => {
    const options = await buildOptions(['--build-arg', 'FROM_ENV', '--build-arg', 'ABSENT'], {
      FROM_ENV: 'value',
      KANIKO_NO_PUSH: 'true',
      KANIKO_DIR: '/k',
      KANIKO_REGISTRY_MIRROR: 'mirror.example',
    });
    expect(options.buildArgs).toEqual({ FROM_ENV: 'value' });
    expect(options.noPush).toBe(true);
    expect(options.kilnDir).toBe('/k');
    expect(options.registry.registryMirrors).toEqual(['mirror.example']);
  });

  it('parses secrets and git options', async () => {
    const options = await buildOptions(['--secret', 'id=npm,src=/run/npmrc', '--secret', 'id=TOKEN', '--secret', 'id=gh,type=env,src=GH_TOKEN', '--git', 'branch=main,single-branch=true']);
    expect(options.secrets).toEqual([{ id: 'npm', src: '/run/npmrc' }, { id: 'TOKEN', env: 'TOKEN' }, { id: 'gh', env: 'GH_TOKEN' }]);
    expect(options.git).toEqual({ branch: 'main', 'single-branch': 'true' });
  });

  it.each([
    [['--snapshot-mode', 'fast'], '--snapshot-mode'],
    [['--cache=maybe'], '--cache: expected true or false'],
    [['--cache-ttl', 'soon'], '--cache-ttl'],
    [['--label', 'novalue'], '--label: expected KEY=VALUE'],
    [['--tar-path', '/tmp/x.tar'], '--tar-path needs a --destination'],
    [['--git', 'depth=1'], '--git: unknown option "depth"'],
    [['--secret', 'src=/x'], '--secret: missing id='],
    [['--bogus-flag'], "unknown option '--bogus-flag'"],
  ])('rejects %j with a clear message', async (argv, message) => {
    const result = await run(argv);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(message);
    expect(result.built).toEqual([]);
  });

  it('parses copy locations in skopeo syntax', async () => {
    const result = await run(['copy', '--insecure', 'docker://127.0.0.1:5000/a:1', 'oci:/tmp/layout:v1']);
    expect(result.code).toBe(0);
    expect(result.copied[0]?.source).toEqual({ transport: 'registry', reference: '127.0.0.1:5000/a:1' });
    expect(result.copied[0]?.destination).toEqual({ transport: 'oci', directory: '/tmp/layout', tag: 'v1' });
    expect(result.copied[0]?.registry.insecure).toBe(true);
    expect(parseImageLocation('docker-archive:/tmp/a.tar:repo/x:1')).toEqual({ transport: 'docker-archive', file: '/tmp/a.tar', reference: 'repo/x:1' });
    expect(parseImageLocation('busybox')).toEqual({ transport: 'registry', reference: 'busybox' });
    expect(() => parseImageLocation('s3://bucket/x')).toThrow(/unsupported image location/);
    expect(() => parseImageLocation('oci:')).toThrow(/directory is missing/);
  });
});

describe('pflag compatibility', () => {
  it('never lets a boolean flag swallow the next word, and splits -f=value', async () => {
    const options = await buildOptions(['--no-push', '-f=x/Dockerfile', '--reproducible', '--context', 'ctx']);
    expect(options.noPush).toBe(true);
    expect(options.reproducible).toBe(true);
    expect(options.dockerfile).toBe('x/Dockerfile');
    expect(options.context).toBe('ctx');
  });
});
