import { describe, expect, it } from 'vitest';
import { parseMount } from '../../../src/dockerfile/run-mount.js';
import { cacheDirectoryName } from '../../../src/sandbox/cache-mounts.js';
import { chrootCommand, type ChrootStep } from '../../../src/sandbox/chroot-command.js';
import { checkMountRequests, toRunMountRequest, type RunMountRequest } from '../../../src/sandbox/run-mounts.js';
import { findSecret } from '../../../src/sandbox/secrets.js';
import { runIsInsecure, sandboxNetwork } from '../../../src/sandbox/step-options.js';

const baseStep: ChrootStep = {
  root: '/r',
  argv: ['/bin/sh', '-c', 'make'],
  workdir: '/w',
  uid: 0,
  gid: 0,
  groups: [],
  capabilities: ['CHOWN'],
  network: 'host',
  hostname: 'kiln',
  hostFiles: [{ source: '/etc/hosts', target: '/r/etc/hosts' }],
  tools: { setpriv: '/usr/bin/setpriv', unshare: '/usr/bin/unshare' },
};

/** The words between the host files' `--` and the mounts' `--`. */
function mountWords(argv: string[]): string[] {
  const hostFilesEnd = argv.indexOf('--', argv.indexOf('kiln-run'));
  const mountsEnd = argv.indexOf('--', hostFilesEnd + 1);
  return argv.slice(hostFilesEnd + 1, mountsEnd);
}

describe('RUN mount plan on the sandbox command line', () => {
  it('passes no staging directory and no operations when there are no mounts', () => {
    expect(mountWords(chrootCommand(baseStep))).toEqual(['']);
  });

  it('turns each mount into its operation words, in order, with BuildKit tmpfs options', () => {
    const argv = chrootCommand({
      ...baseStep,
      stagingDir: '/k/stage',
      mounts: [
        { kind: 'bind', source: '/ctx/src', target: '/r/src', readonly: true },
        { kind: 'bind', source: '/cache/x/data', target: '/r/root/.cache', readonly: false },
        { kind: 'tmpfs', target: '/r/tmp/t', sizeBytes: 1048576 },
        { kind: 'overlay', source: '/ctx', target: '/r/app' },
        { kind: 'file-copy', source: '/ctx/a.txt', target: '/r/a.txt' },
        { kind: 'secret', fd: 3, target: '/r/run/secrets/npm', mode: 0o400, uid: 1000, gid: 100 },
      ],
    });
    expect(mountWords(argv)).toEqual([
      '/k/stage',
      'bind', '/ctx/src', '/r/src', 'ro',
      'bind', '/cache/x/data', '/r/root/.cache', 'rw',
      'tmpfs', '/r/tmp/t', 'nosuid,nodev,mode=1777,size=1048576',
      'overlay', '/ctx', '/r/app',
      'file-copy', '/ctx/a.txt', '/r/a.txt',
      'secret', '3', '/r/run/secrets/npm', '0400', '1000', '100',
    ]);
    // The step's own argv still comes last, untouched.
    expect(argv.slice(-3)).toEqual(['/bin/sh', '-c', 'make']);
  });

  it('never puts a secret on the command line, only the descriptor it arrives on', () => {
    const argv = chrootCommand({ ...baseStep, stagingDir: '/k/s', mounts: [{ kind: 'secret', fd: 4, target: '/r/s', mode: 0o400, uid: 0, gid: 0 }] });
    expect(argv.join(' ')).not.toMatch(/token|password/i);
    expect(() => chrootCommand({ ...baseStep, stagingDir: '/k/s', mounts: [{ kind: 'secret', fd: 12, target: '/r/s', mode: 0o400, uid: 0, gid: 0 }] })).toThrow(/descriptor 12/);
  });

  it('needs a safe absolute staging directory for overlays, copies and secrets', () => {
    const overlay = [{ kind: 'overlay' as const, source: '/ctx', target: '/r/app' }];
    expect(() => chrootCommand({ ...baseStep, mounts: overlay })).toThrow(/staging directory/);
    expect(() => chrootCommand({ ...baseStep, mounts: overlay, stagingDir: '/k/a,b' })).toThrow(/comma/);
    expect(() => chrootCommand({ ...baseStep, mounts: [{ kind: 'tmpfs', target: '/r/t' }] })).not.toThrow();
  });
});

describe('RUN mount requests', () => {
  const secret = (target: string): RunMountRequest => ({ type: 'secret', id: target, target, required: false });

  it('refuses ssh with a clear error', () => {
    expect(() => checkMountRequests([{ type: 'ssh', id: 'default', required: false }])).toThrow(/type=ssh \(id default\) is not supported by kiln yet/);
  });

  it('refuses nested and duplicate targets, and targets in the sandbox’s own /proc, /sys and /dev', () => {
    const tmpfs = (target: string): RunMountRequest => ({ type: 'tmpfs', target });
    expect(() => checkMountRequests([tmpfs('/src'), tmpfs('/src/node_modules')])).toThrow(/inside another mount's target \/src/);
    expect(() => checkMountRequests([tmpfs('/a/'), tmpfs('a')])).toThrow(/share the target \/a/);
    expect(() => checkMountRequests([tmpfs('/srcx'), tmpfs('/src')])).not.toThrow();
    expect(() => checkMountRequests([tmpfs('/proc/x')])).toThrow(/\/proc, \/sys or \/dev/);
    expect(() => checkMountRequests([tmpfs('/dev/shm')])).not.toThrow();
    expect(() => checkMountRequests([tmpfs('/a/../b')])).toThrow(/\.\./);
  });

  it('takes at most seven secret files per step', () => {
    expect(() => checkMountRequests([1, 2, 3, 4, 5, 6, 7].map((n) => secret(`/s/${n}`)))).not.toThrow();
    expect(() => checkMountRequests([1, 2, 3, 4, 5, 6, 7, 8].map((n) => secret(`/s/${n}`)))).toThrow(/at most 7 secrets/);
  });

  it('reads a Dockerfile mount with BuildKit’s from/source meaning', () => {
    const rootOf = (from: string | undefined): string => (from === undefined ? '/context' : `/stages/${from}`);
    expect(toRunMountRequest({ type: 'bind', target: '/src', readonly: true }, rootOf)).toEqual({
      type: 'bind', target: '/src', source: { root: '/context', path: '/' }, readonly: true,
    });
    expect(toRunMountRequest({ type: 'bind', target: '/b', from: 'build', source: 'out/bin', readonly: false }, rootOf)).toMatchObject({
      source: { root: '/stages/build', path: 'out/bin' }, readonly: false,
    });
    expect(toRunMountRequest({ type: 'cache', target: '/root/.cache', readonly: false }, rootOf)).toEqual({
      type: 'cache', target: '/root/.cache', id: '/root/.cache', sharing: 'shared', readonly: false, mode: undefined, uid: undefined, gid: undefined, seed: undefined,
    });
    expect(toRunMountRequest({ type: 'cache', target: '/c', from: 'deps', source: '/cache', readonly: false }, rootOf)).toMatchObject({ seed: { root: '/stages/deps', path: '/cache' } });
    expect(toRunMountRequest({ type: 'secret', id: 'npm', env: 'NPM_TOKEN', readonly: true }, rootOf)).toMatchObject({ id: 'npm', target: undefined, env: 'NPM_TOKEN', required: false });
    expect(toRunMountRequest({ type: 'secret', target: '/run/secrets/aws/', readonly: true }, rootOf)).toMatchObject({ id: 'aws', target: '/run/secrets/aws/' });
    expect(toRunMountRequest({ type: 'tmpfs', target: '/t', size: 1024, readonly: false }, rootOf)).toEqual({ type: 'tmpfs', target: '/t', sizeBytes: 1024 });
  });

  it('takes the Dockerfile parser\'s RunMount as it is', () => {
    const rootOf = (from: string | undefined): string => from ?? '/context';
    expect(toRunMountRequest(parseMount('type=cache,target=/root/.npm,sharing=locked,uid=1000'), rootOf)).toMatchObject({
      type: 'cache', id: '/root/.npm', sharing: 'locked', uid: 1000, readonly: false,
    });
    expect(toRunMountRequest(parseMount('type=secret,id=npmrc,required'), rootOf)).toMatchObject({ id: 'npmrc', target: '/run/secrets/npmrc', required: true });
    expect(toRunMountRequest(parseMount('type=bind,source=go.sum,target=go.sum'), rootOf, '/src/app')).toMatchObject({
      target: '/src/app/go.sum', readonly: true, source: { root: '/context', path: 'go.sum' },
    });
    expect(() => checkMountRequests([toRunMountRequest(parseMount('type=ssh'), rootOf)])).toThrow(/not supported/);
  });

  it('names cache directories by a stable hash of the id', () => {
    expect(cacheDirectoryName('/root/.cache/go-build')).toMatch(/^[0-9a-f]{32}$/);
    expect(cacheDirectoryName('npm')).toBe(cacheDirectoryName('npm'));
    expect(cacheDirectoryName('npm')).not.toBe(cacheDirectoryName('npm2'));
  });

  it('finds env secrets by their variable, the last --secret of an id winning', async () => {
    const sources = [{ id: 'tok', env: 'FIRST' }, { id: 'tok', env: 'SECOND' }, { id: 'bare' }];
    const env = { FIRST: 'one', SECOND: 'two', bare: 'by-id' };
    expect((await (await findSecret('tok', sources, env))?.read())?.toString()).toBe('two');
    expect((await (await findSecret('bare', sources, env))?.read())?.toString()).toBe('by-id');
    expect(await findSecret('tok', sources, {})).toBeUndefined();
    expect(await findSecret('other', sources, env)).toBeUndefined();
    await expect(findSecret('tok', sources, { SECOND: 'x'.repeat(600 * 1024) })).rejects.toThrow(/secret tok: variable SECOND is larger/);
  });
});

describe('RUN --network and --security', () => {
  it('gives none its own namespace and shares the job network otherwise', () => {
    expect(sandboxNetwork('none')).toBe('none');
    expect(sandboxNetwork('default')).toBe('host');
    expect(sandboxNetwork('host')).toBe('host');
    expect(sandboxNetwork(undefined)).toBe('host');
  });

  it('grants insecure only with --allow security.insecure', () => {
    expect(runIsInsecure(undefined, [])).toBe(false);
    expect(runIsInsecure('sandbox', [])).toBe(false);
    expect(runIsInsecure('insecure', ['network.host', 'security.insecure'])).toBe(true);
    expect(() => runIsInsecure('insecure', ['network.host'])).toThrow(/not allowed: start the build with --allow security.insecure/);
  });
});
