import { mkdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  IsolationError,
  assertInPlaceUser,
  buildHostPaths,
  chooseIsolation,
  detectContainer,
  protectedPaths,
  realOrAsGiven,
  type IsolationProbes,
} from '../../../src/build/in-place.js';
import { buildOptionsFromArguments } from '../../../src/ci/cli-options.js';
import { scratchDir } from '../rootfs/helpers.js';

/** Probes answering as told, counting how often they were asked. */
function probes(inContainer: boolean, namespacesUnavailable: string | undefined): IsolationProbes & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    async inContainer() {
      asked.push('inContainer');
      return inContainer;
    },
    async namespacesUnavailable() {
      asked.push('namespaces');
      return namespacesUnavailable;
    },
  };
}

describe('chooseIsolation', () => {
  it('takes chroot when asked, without probing', async () => {
    const asked = probes(false, 'no CAP_SYS_ADMIN');
    expect(await chooseIsolation('chroot', false, asked)).toEqual({ isolation: 'chroot', reason: 'isolation: chroot (as asked)' });
    expect(asked.asked).toEqual([]);
  });

  it('takes in-place when asked inside a container, or with --force anywhere', async () => {
    const inside = await chooseIsolation('in-place', false, probes(true, undefined));
    expect(inside.isolation).toBe('in-place');
    expect(inside.reason).toMatch(/^isolation: in-place \(as asked\)/);
    const forced = probes(false, undefined);
    expect((await chooseIsolation('in-place', true, forced)).isolation).toBe('in-place');
    expect(forced.asked).toEqual([]);
  });

  it('refuses in-place outside a container without --force, saying how to go on', async () => {
    const choice = chooseIsolation('in-place', false, probes(false, undefined));
    await expect(choice).rejects.toBeInstanceOf(IsolationError);
    await expect(chooseIsolation('in-place', false, probes(false, undefined))).rejects.toThrow(/dedicated job container.*Pass --force.*--isolation chroot/);
  });

  it('auto: chroot wherever namespaces can be made, in a container or not', async () => {
    for (const inContainer of [true, false]) {
      for (const force of [true, false]) {
        const choice = await chooseIsolation('auto', force, probes(inContainer, undefined));
        expect(choice).toEqual({ isolation: 'chroot', reason: 'isolation: chroot (auto: kiln may create namespaces here)' });
      }
    }
  });

  it('auto: in-place where namespaces are unavailable in a container (or with --force), naming why', async () => {
    const inContainer = await chooseIsolation('auto', false, probes(true, 'unshare: Operation not permitted'));
    expect(inContainer).toEqual({
      isolation: 'in-place',
      reason: 'isolation: in-place (auto: namespaces are not available, unshare: Operation not permitted; running in a container)',
    });
    expect((await chooseIsolation('auto', true, probes(false, 'no unshare'))).isolation).toBe('in-place');
  });

  it('auto: fails outside a container when namespaces are unavailable', async () => {
    const choice = chooseIsolation('auto', false, probes(false, 'unshare: Operation not permitted'));
    await expect(choice).rejects.toThrow(IsolationError);
    await expect(chooseIsolation('auto', false, probes(false, 'unshare: Operation not permitted'))).rejects.toThrow(
      /^RUN steps need namespaces \(unshare: Operation not permitted\).*Run kiln as root on the host, or in a container/,
    );
  });
});

describe('detectContainer', () => {
  const existing = (paths: string[]) => {
    const asked: string[] = [];
    return {
      asked,
      exists: async (candidate: string) => {
        asked.push(candidate);
        return paths.includes(candidate);
      },
    };
  };

  it("sees Docker's and podman's marker files", async () => {
    expect(await detectContainer(existing(['/.dockerenv']).exists, {})).toBe(true);
    expect(await detectContainer(existing(['/run/.containerenv']).exists, {})).toBe(true);
    const none = existing(['/.dockerenvx', '/run/containerenv']);
    expect(await detectContainer(none.exists, {})).toBe(false);
    expect(none.asked).toEqual(['/.dockerenv', '/run/.containerenv']);
  });

  it('sees $container and Kubernetes, but not empty values', async () => {
    expect(await detectContainer(existing([]).exists, { container: 'podman' })).toBe(true);
    expect(await detectContainer(existing([]).exists, { KUBERNETES_SERVICE_HOST: '10.0.0.1' })).toBe(true);
    expect(await detectContainer(existing([]).exists, { container: '', KUBERNETES_SERVICE_HOST: '' })).toBe(false);
  });
});

describe('protectedPaths', () => {
  const mountInfo = [
    '22 1 8:1 / / rw - ext4 /dev/vda rw',
    '30 22 0:40 / /build/root rw - overlay overlay rw',
    '31 30 0:41 / /build/root/proc rw - proc proc rw',
    '32 30 8:1 /etc/hosts /build/root/etc/hosts rw - ext4 /dev/vda rw',
    '33 30 0:42 / /build/root/srv/cache\\040dir rw - tmpfs tmpfs rw',
    '34 22 0:43 / /build/rootless rw - tmpfs tmpfs rw',
    '35 22 0:44 / /mnt rw - tmpfs tmpfs rw',
  ].join('\n');

  it('protects proc, sys, dev, mount points strictly inside the root, the runtime, host paths inside and ignore paths', () => {
    const paths = protectedPaths({
      root: '/build/root',
      mountInfo,
      runtimeDir: '/build/root/kiln',
      hostPaths: ['/build/root/workspace', '/elsewhere/kaniko', '/build/root/out/digest', '/build/rootless/x'],
      ignorePaths: ['/var/cache//apt/', 'tmp/../opt/x', '/'],
    });
    expect(paths.list()).toEqual(['dev', 'etc/hosts', 'kiln', 'opt/x', 'out/digest', 'proc', 'srv/cache dir', 'sys', 'var/cache/apt', 'workspace']);
  });

  it('with "/" as the root, protects every mount but "/" itself', () => {
    const paths = protectedPaths({ root: '/', mountInfo, runtimeDir: '/kiln', hostPaths: ['/workspace'], ignorePaths: [] });
    expect(paths.list()).toEqual(['build/root', 'build/root/etc/hosts', 'build/root/proc', 'build/root/srv/cache dir', 'build/rootless', 'dev', 'kiln', 'mnt', 'proc', 'sys', 'workspace']);
  });

  it('refuses a runtime or host path that is the root itself', () => {
    const inputs = { root: '/build/root', mountInfo: '', runtimeDir: '/build/root/kiln', hostPaths: [], ignorePaths: [] };
    expect(() => protectedPaths({ ...inputs, runtimeDir: '/build/root/' })).toThrow(IsolationError);
    expect(() => protectedPaths({ ...inputs, hostPaths: ['/build/root/workspace/..'] })).toThrow(/\/build\/root\/workspace\/\.\. is the root an in-place build replaces/);
    expect(() => protectedPaths({ ...inputs, root: '/', hostPaths: ['/'] })).toThrow(IsolationError);
  });
});

describe('buildHostPaths', () => {
  const flags = [
    '--destination', 'reg.test/app:1',
    '--kaniko-dir', '/kaniko',
    '--cache-dir', '/cache',
    '--registry-certificate', 'reg.test=/certs/ca.pem',
    '--registry-client-cert', 'reg.test=/certs/client.pem,/certs/client.key',
    '--secret', 'id=token,src=secrets/token',
    '--secret', 'id=fromenv,env=TOKEN',
    '--tar-path', '/out/image.tar',
    '--oci-layout-path', '/out/layout',
    '--digest-file', 'out/digest',
    '--image-name-with-digest-file', '/out/names',
    '--image-name-tag-with-digest-file', '/out/tags',
  ];

  it('lists every path the build still reads or writes, resolved', () => {
    const options = buildOptionsFromArguments(flags, {});
    expect(buildHostPaths(options, '/workspace', { HOME: '/home/builder' }).sort()).toEqual(
      [
        '/kaniko',
        '/cache',
        '/workspace',
        '/home/builder/.docker',
        '/certs/ca.pem',
        '/certs/client.pem',
        '/certs/client.key',
        path.resolve('secrets/token'),
        '/out/image.tar',
        '/out/layout',
        path.resolve('out/digest'),
        '/out/names',
        '/out/tags',
      ].sort(),
    );
  });

  it("takes Docker's config from DOCKER_CONFIG, else ~/.docker, else /root/.docker", () => {
    const options = buildOptionsFromArguments(['--destination', 'reg.test/app:1', '--kaniko-dir', '/kaniko'], {});
    expect(buildHostPaths(options, '/ctx', { DOCKER_CONFIG: '/kaniko/.docker', HOME: '/home/x' })).toEqual(['/kaniko', '/ctx', '/kaniko/.docker']);
    expect(buildHostPaths(options, '/ctx', {})).toEqual(['/kaniko', '/ctx', '/root/.docker']);
  });
});

describe('realOrAsGiven', () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  beforeEach(async () => {
    scratch = await scratchDir();
  });
  afterEach(async () => scratch.cleanup());

  it('follows links to where a path really is, and keeps a path that does not exist yet', async () => {
    await mkdir(path.join(scratch.dir, 'real'));
    await symlink('real', path.join(scratch.dir, 'link'));
    const real = await realOrAsGiven(path.join(scratch.dir, 'real'));
    expect(await realOrAsGiven(path.join(scratch.dir, 'link'))).toBe(real);
    expect(real.endsWith('/real')).toBe(true);
    expect(await realOrAsGiven(path.join(scratch.dir, 'link', 'not-yet'))).toBe(path.join(scratch.dir, 'link', 'not-yet'));
  });
});

describe('assertInPlaceUser', () => {
  it('lets root through and tells anyone else how to run the job container as root', () => {
    expect(() => assertInPlaceUser(0)).not.toThrow();
    expect(() => assertInPlaceUser(1000)).toThrow(/must run as root inside the job container \(it runs as uid 1000\).*runAsUser: 0/);
  });
});
