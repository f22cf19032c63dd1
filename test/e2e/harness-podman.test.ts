/**
 * The podman helper runs images made without kiln (busybox packed by umoci, pushed by skopeo) from
 * a registry in plain, Basic-auth and TLS modes, and reports output and exit codes faithfully.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBusyboxImage } from '../harness/base-images.js';
import { ContainerToolError } from '../harness/containers.js';
import { Podman } from '../harness/podman.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';

describe.each(['plain', 'basic', 'tls'] as const)('podman helper, registry in %s mode', (mode) => {
  let registry: TestRegistry;
  let podman: Podman;
  let reference: string;

  beforeAll(async () => {
    registry = await startRegistry(mode);
    podman = await Podman.create();
    reference = (await pushBusyboxImage({ registry: registry.host, skopeoDestArgs: registry.skopeoDestArgs() })).reference;
  });

  afterAll(async () => {
    await podman?.dispose();
    await registry?.stop();
  });

  it('runs echo hello in the busybox image', async () => {
    const result = await podman.runOk(reference, { registry, command: ['echo', 'hello'] });
    expect(result.stdout).toBe('hello\n');
    expect(result.exitCode).toBe(0);
  });

  it('reports the exit code and keeps stdout and stderr apart', async () => {
    const result = await podman.run(reference, { registry, command: ['sh', '-c', 'echo out; echo err >&2; exit 3'] });
    expect(result.exitCode).toBe(3);
    expect(result.stdout).toBe('out\n');
    expect(result.stderr).toContain('err\n');
    await expect(podman.runOk(reference, { registry, command: ['false'] })).rejects.toBeInstanceOf(ContainerToolError);
  });

  it('passes user, workdir, env, entrypoint and stdin', async () => {
    const result = await podman.runOk(reference, {
      registry,
      user: '1:1',
      workdir: '/tmp',
      env: { GREETING: 'hi there' },
      entrypoint: ['sh', '-c'],
      command: ['echo "$(id -u):$(id -g) $(pwd) $GREETING $(cat)"'],
      stdin: 'from-stdin',
    });
    expect(result.stdout).toBe('1:1 /tmp hi there from-stdin\n');
  });

  it('has no network unless asked', async () => {
    const none = await podman.runOk(reference, { registry, command: ['sh', '-c', 'ls /sys/class/net'] });
    expect(none.stdout.split(/\s+/).filter(Boolean)).toEqual(['lo']);
  });

  it('inspects the config', async () => {
    const inspect = await podman.inspectConfig(reference, registry);
    expect(inspect.config.Cmd).toEqual(['sh']);
    expect(inspect.config.Env).toContain('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
    expect(inspect.os).toBe('linux');
    expect(inspect.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
});
