import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '../../src/rootfs/command-runner.js';
import { cacheDirectoryName, takeLock } from '../../src/sandbox/cache-mounts.js';
import { decodeCapabilityMask, resolveCapabilities } from '../../src/sandbox/capabilities.js';
import { locateSandboxTools, type RunStepRequest, type SandboxTools } from '../../src/sandbox/chroot-runner.js';
import type { RunMountContext, RunMountRequest } from '../../src/sandbox/run-mounts.js';
import { makeBusyboxRoot, runScript, type StepOutcome } from '../harness/sandbox-root.js';
import { runIsInsecure } from '../../src/sandbox/step-options.js';

const run = promisify(execFile);

/** Every path under `dir`, relative, sorted: what a snapshot of the root would walk. */
async function tree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return entries.map(String).sort();
}


describe('RUN --mount in the chroot sandbox (real mounts)', () => {
  let scratch: string;
  let tools: SandboxTools;
  let context: string;
  let secretFile: string;
  let baseContext: RunMountContext;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'kiln-run-mounts-'));
    tools = await locateSandboxTools(process.env.PATH ?? '/usr/bin:/bin');
    context = join(scratch, 'context');
    await mkdir(join(context, 'src'), { recursive: true });
    await writeFile(join(context, 'src/hello.txt'), 'from the context\n');
    await writeFile(join(context, 'single.txt'), 'one file\n');
    secretFile = join(scratch, 'token.txt');
    await writeFile(secretFile, 's3cr3t-from-file');
    await mkdir(join(scratch, 'work'));
    baseContext = {
      cacheRoot: join(scratch, 'cache-mounts'),
      secrets: [
        { id: 'filetoken', src: secretFile },
        { id: 'envtoken', env: 'KILN_TEST_TOKEN' },
        { id: 'gone', src: join(scratch, 'no-such-file') },
      ],
      hostEnv: { KILN_TEST_TOKEN: 'value-from-env' },
      scratchDir: join(scratch, 'work'),
      runCommand,
    };
  });
  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  async function freshRoot(name: string): Promise<string> {
    const root = join(scratch, name);
    await makeBusyboxRoot(root, ['tmp', 'w', 'proc', 'dev', 'sys']);
    return root;
  }

  async function step(root: string, script: string, requests: RunMountRequest[], overrides: Partial<RunStepRequest> = {}): Promise<StepOutcome> {
    return runScript(root, script, tools, { runMounts: { requests, context: baseContext }, ...overrides });
  }

  it('keeps a cache mount across steps and builds, out of the root, owned as asked when first made', async () => {
    const cache: RunMountRequest = { type: 'cache', target: '/var/cache/app', id: 'app-cache', sharing: 'shared', readonly: false, mode: 0o750, uid: 1000, gid: 1000 };
    const first = await freshRoot('cache-1');
    const before = await tree(first);
    const wrote = await step(first, 'stat -c "%a %u %g" /var/cache/app; echo built-once > /var/cache/app/artifact', [cache]);
    expect(wrote.stderr).toBe('');
    expect(wrote.exitCode).toBe(0);
    expect(wrote.stdout.trim()).toBe('750 1000 1000');
    expect(await tree(first)).toEqual(before);

    const again = await step(first, 'cat /var/cache/app/artifact', [cache]);
    expect(again.stdout).toBe('built-once\n');

    const secondBuild = await freshRoot('cache-2');
    const reused = await step(secondBuild, 'cat /var/cache/app/artifact; ls /var/cache', [cache]);
    expect(reused.exitCode).toBe(0);
    expect(reused.stdout).toBe('built-once\napp\n');
    expect(await tree(secondBuild)).toEqual(before);
    const onDisk = join(scratch, 'cache-mounts', cacheDirectoryName('app-cache'), 'data', 'artifact');
    expect(await readFile(onDisk, 'utf8')).toBe('built-once\n');
  });

  it('serialises two steps sharing a locked cache', async () => {
    const cache: RunMountRequest = { type: 'cache', target: '/cache', id: 'locked-cache', sharing: 'locked', readonly: false };
    const rootA = await freshRoot('locked-a');
    const rootB = await freshRoot('locked-b');
    const script = (who: string): string => `echo "${who} in" >> /cache/log; sleep 0.4; echo "${who} out" >> /cache/log`;
    const [a, b] = await Promise.all([step(rootA, script('a'), [cache]), step(rootB, script('b'), [cache])]);
    expect([a.exitCode, b.exitCode]).toEqual([0, 0]);
    const log = (await readFile(join(scratch, 'cache-mounts', cacheDirectoryName('locked-cache'), 'data', 'log'), 'utf8')).trim().split('\n');
    expect(log).toHaveLength(4);
    // Whoever went first left before the other came in.
    expect(log[0]?.split(' ')[0]).toBe(log[1]?.split(' ')[0]);
    expect(log[1]?.endsWith('out')).toBe(true);
    expect(log[2]?.split(' ')[0]).toBe(log[3]?.split(' ')[0]);
  });

  it('stops waiting for a locked cache when the build is aborted, leaving nothing behind', async () => {
    const cache: RunMountRequest = { type: 'cache', target: '/cache', id: 'abort-cache', sharing: 'locked', readonly: false };
    const root = await freshRoot('locked-abort');
    const before = await tree(root);
    expect((await step(root, 'true', [cache])).exitCode).toBe(0);
    const held = await takeLock(tools.flock, join(scratch, 'cache-mounts', cacheDirectoryName('abort-cache'), 'data.lock'), 'exclusive', true);
    const controller = new AbortController();
    try {
      const waiting = step(root, 'echo should-not-run', [cache], { signal: controller.signal });
      setTimeout(() => controller.abort(), 200);
      await expect(waiting).rejects.toThrow(/abort/i);
    } finally {
      await held?.release();
    }
    expect(await tree(root)).toEqual(before);
  });

  it('gives a private cache user a fresh directory while another holds the first', async () => {
    const cache: RunMountRequest = { type: 'cache', target: '/cache', id: 'private-cache', sharing: 'private', readonly: false };
    const root = await freshRoot('private');
    const first = await step(root, 'echo mine > /cache/owner', [cache]);
    expect(first.exitCode).toBe(0);
    const home = join(scratch, 'cache-mounts', cacheDirectoryName('private-cache'));
    const held = await takeLock(tools.flock, join(home, 'data.lock'), 'exclusive', true);
    try {
      const other = await step(root, 'ls -A /cache; echo other > /cache/owner', [cache]);
      expect(other.exitCode).toBe(0);
      expect(other.stdout).toBe('');
    } finally {
      await held?.release();
    }
    expect(await readFile(join(home, 'data', 'owner'), 'utf8')).toBe('mine\n');
    expect(await readFile(join(home, 'data-1', 'owner'), 'utf8')).toBe('other\n');
    const back = await step(root, 'cat /cache/owner', [cache]);
    expect(back.stdout).toBe('mine\n');
  });

  it('mounts secrets from a file and from the environment, with mode and owner, and leaves no trace', async () => {
    const root = await freshRoot('secrets');
    const before = await tree(root);
    const rootMtime = (await stat(root, { bigint: true })).mtimeNs;
    const requests: RunMountRequest[] = [
      { type: 'secret', id: 'filetoken', target: '/run/secrets/filetoken', required: true },
      { type: 'secret', id: 'envtoken', target: '/etc/app/token', required: true, mode: 0o440, uid: 1000, gid: 1000 },
      { type: 'secret', id: 'envtoken', env: 'API_TOKEN', required: true },
    ];
    const outcome = await step(
      root,
      'cat /run/secrets/filetoken; echo; stat -c "%a %u %g" /run/secrets/filetoken; cat /etc/app/token; echo; stat -c "%a %u %g" /etc/app/token; echo "$API_TOKEN"; echo x > /run/secrets/filetoken || echo read-only',
      requests,
    );
    expect(outcome.exitCode).toBe(0);
    expect(outcome.stdout.split('\n')).toEqual(['s3cr3t-from-file', '400 0 0', 'value-from-env', '440 1000 1000', 'value-from-env', 'read-only', '']);
    expect(await tree(root)).toEqual(before);
    expect((await stat(root, { bigint: true })).mtimeNs).toBe(rootMtime);
    const { stdout: found } = await run('grep', ['-rl', '-e', 's3cr3t-from-file', '-e', 'value-from-env', root]).catch((error: { code: number; stdout: string }) => {
      if (error.code === 1) return { stdout: '' };
      throw error;
    });
    expect(found).toBe('');
    expect(await readdir(join(scratch, 'work'))).toEqual([]);
  });

  it('refuses a missing required secret by name, and leaves an optional one out', async () => {
    const root = await freshRoot('missing-secret');
    await expect(step(root, 'true', [{ type: 'secret', id: 'gone', target: '/run/secrets/gone', required: true }])).rejects.toThrow(
      /secret gone is required by RUN --mount=type=secret but was not given/,
    );
    const optional = await step(root, 'ls /run/secrets 2>&1; echo "[${NOPE-unset}]"', [
      { type: 'secret', id: 'unknown', target: '/run/secrets/unknown', required: false },
      { type: 'secret', id: 'unknown', env: 'NOPE', required: false },
    ]);
    expect(optional.exitCode).toBe(0);
    expect(optional.stdout).toMatch(/No such file or directory\n\[unset\]\n$/);
    await expect(stat(join(root, 'run'))).rejects.toThrow(/ENOENT/);
  });

  it('bind-mounts read-only by default; rw writes stay in the step and the source never changes', async () => {
    const root = await freshRoot('bind');
    const before = await tree(root);
    const source = { root: context, path: '/src' };
    const readOnly = await step(root, 'cat /mnt/src/hello.txt; echo nope > /mnt/src/hello.txt', [{ type: 'bind', target: '/mnt/src', source, readonly: true }]);
    expect(readOnly.stdout).toBe('from the context\n');
    expect(readOnly.exitCode).not.toBe(0);
    expect(readOnly.stderr).toMatch(/Read-only file system/);

    const writable = await step(root, 'echo changed > /mnt/src/hello.txt; echo new > /mnt/src/new.txt; cat /mnt/src/hello.txt /mnt/src/new.txt; echo more >> /one.txt; cat /one.txt', [
      { type: 'bind', target: '/mnt/src', source, readonly: false },
      { type: 'bind', target: '/one.txt', source: { root: context, path: 'single.txt' }, readonly: false },
    ]);
    expect(writable.stderr).toBe('');
    expect(writable.stdout).toBe('changed\nnew\none file\nmore\n');
    expect(await readFile(join(context, 'src/hello.txt'), 'utf8')).toBe('from the context\n');
    expect(await readFile(join(context, 'single.txt'), 'utf8')).toBe('one file\n');
    expect(await tree(context)).toEqual(['single.txt', 'src', 'src/hello.txt']);
    expect(await tree(root)).toEqual(before);
  });

  it('resolves a bind source inside its own root: a symlink out of the context stays in it', async () => {
    const root = await freshRoot('bind-link');
    const linked = join(scratch, 'linked-context');
    await mkdir(join(linked, 'etc'), { recursive: true });
    await writeFile(join(linked, 'etc/passwd'), 'context passwd\n');
    await symlink('/etc', join(linked, 'escape'));
    const outcome = await step(root, 'cat /m/passwd', [{ type: 'bind', target: '/m', source: { root: linked, path: 'escape' }, readonly: true }]);
    expect(outcome.stdout).toBe('context passwd\n');
  });

  it('mounts a tmpfs of the given size that leaves nothing behind', async () => {
    const root = await freshRoot('tmpfs');
    const before = await tree(root);
    const outcome = await step(root, 'echo scratch > /scratch/file; cat /scratch/file; grep " /scratch " /proc/mounts', [
      { type: 'tmpfs', target: '/scratch', sizeBytes: 4 * 1024 * 1024 },
    ]);
    expect(outcome.exitCode).toBe(0);
    expect(outcome.stdout).toMatch(/^scratch\ntmpfs \/scratch tmpfs rw,nosuid,nodev,relatime,size=4096k/);
    expect(await tree(root)).toEqual(before);
  });

  it('keeps a directory kiln made for a mount point when the step wrote into it', async () => {
    const root = await freshRoot('kept');
    const outcome = await step(root, 'echo mine > /run/app.pid', [{ type: 'tmpfs', target: '/run/scratch' }]);
    expect(outcome.exitCode).toBe(0);
    expect(outcome.kept).toEqual([join(root, 'run')]);
    expect(await tree(join(root, 'run'))).toEqual(['app.pid']);
  });

  it('resolves mount targets inside the root: a planted symlink cannot lead a mount point out', async () => {
    const root = await freshRoot('target-link');
    const outside = join(scratch, 'outside');
    await mkdir(outside);
    // Absolute and climbing links both stop at the root, as they would for a chrooted process.
    await symlink(outside, join(root, 'abs'));
    await symlink('../../../../../../tmp', join(root, 'climb'));
    const outcome = await step(root, 'cat /abs/token; cat /climb/t/token', [
      { type: 'secret', id: 'filetoken', target: '/abs/token', required: true },
      { type: 'tmpfs', target: '/climb/t' },
    ]);
    expect(outcome.stdout).toBe('s3cr3t-from-file');
    expect(outcome.stderr).toMatch(/can't open '\/climb\/t\/token'/);
    expect(await readdir(outside)).toEqual([]);
    // The link's target was made inside the root for the step and removed afterwards.
    await expect(stat(join(root, scratch.slice(1), 'outside'))).rejects.toThrow(/ENOENT/);
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
  });

  it('refuses ssh mounts with a clear error', async () => {
    const root = await freshRoot('ssh');
    await expect(step(root, 'true', [{ type: 'ssh', id: 'default', required: false }])).rejects.toThrow(/type=ssh.*not supported by kiln yet/);
  });

  it('gives an insecure step every capability, only when allowed', async () => {
    const root = await freshRoot('insecure');
    expect(() => runIsInsecure('insecure', [])).toThrow(/--allow security.insecure/);
    const insecure = runIsInsecure('insecure', ['security.insecure']);
    const outcome = await step(root, 'grep CapEff /proc/self/status', [], { capabilities: resolveCapabilities({ add: [], drop: [], insecure }) });
    expect(outcome.exitCode).toBe(0);
    const effective = decodeCapabilityMask(outcome.stdout.split(':')[1] ?? '');
    expect(effective).toContain('SYS_ADMIN');
    expect(effective).toContain('NET_ADMIN');
  });
});
