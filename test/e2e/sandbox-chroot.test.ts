import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerDefaultCapabilities, decodeCapabilityMask, resolveCapabilities } from '../../src/sandbox/capabilities.js';
import { locateSandboxTools, type RunStepRequest, type SandboxTools } from '../../src/sandbox/chroot-runner.js';
import { makeBusyboxRoot, runScript, type StepOutcome } from '../harness/sandbox-root.js';

const run = promisify(execFile);


describe('chroot isolation for RUN steps (real namespaces)', () => {
  let scratch: string;
  let root: string;
  let tools: SandboxTools;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'kiln-sandbox-'));
    root = join(scratch, 'rootfs');
    await makeBusyboxRoot(root, ['tmp', 'w/sub']);
    tools = await locateSandboxTools(process.env.PATH ?? '/usr/bin:/bin');
  });
  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  async function step(script: string, overrides: Partial<RunStepRequest> = {}): Promise<StepOutcome> {
    return runScript(root, script, tools, {
      workdir: '/w/sub',
      env: { PATH: '/bin', GREETING: 'hello there' },
      hostFiles: [{ path: '/etc/hosts', content: '127.0.0.1 localhost kiln-step\n' }],
      ...overrides,
    });
  }

  it('runs chrooted, in WORKDIR, with exactly the given environment and hostname', async () => {
    const outcome = await step('pwd; echo "$GREETING"; hostname; env | grep -c . ; ls /bin/busybox');
    expect(outcome.stderr).toBe('');
    expect(outcome.exitCode).toBe(0);
    const lines = outcome.stdout.trim().split('\n');
    expect(lines[0]).toBe('/w/sub');
    expect(lines[1]).toBe('hello there');
    expect(lines[2]).toBe('kiln-step');
    expect(lines[4]).toBe('/bin/busybox');
  });

  it("gives root steps Docker's default capabilities, and an added one when asked", async () => {
    const capEff = async (capabilities: string[]): Promise<string[]> => {
      const outcome = await step('grep CapEff /proc/self/status', { capabilities });
      expect(outcome.exitCode).toBe(0);
      return decodeCapabilityMask(outcome.stdout.split(':')[1] ?? '');
    };
    expect((await capEff(resolveCapabilities({ add: [], drop: [] }))).sort()).toEqual([...dockerDefaultCapabilities].sort());
    const withPtrace = await capEff(resolveCapabilities({ add: ['SYS_PTRACE'], drop: [] }));
    expect(withPtrace).toContain('SYS_PTRACE');
    expect((await capEff(resolveCapabilities({ add: [], drop: [] })))).not.toContain('SYS_PTRACE');
  });

  it('runs as the USER with its groups and no capabilities', async () => {
    const outcome = await step('id; grep CapEff /proc/self/status', { uid: 1000, gid: 1000, groups: [1000, 20] });
    expect(outcome.exitCode).toBe(0);
    expect(outcome.stdout).toMatch(/uid=1000\(builder\) gid=1000 groups=20,1000/);
    expect(outcome.stdout).toMatch(/CapEff:\s+0+\n/);
  });

  it('reports the exit code and kills what the step leaves behind', async () => {
    const marker = `kiln-leftover-${process.pid}`;
    const outcome = await step(`sleep 300 ${marker} & exit 7`);
    expect(outcome.exitCode).toBe(7);
    const { stdout } = await run('ps', ['-eo', 'args']);
    expect(stdout).not.toContain(marker);
  });

  it('has its own /proc showing only its processes, and no network with network none', async () => {
    const outcome = await step('ps -o pid,args | grep -c . ; cat /proc/net/dev | grep -c :', { network: 'none' });
    expect(outcome.exitCode).toBe(0);
    const [processLines, interfaces] = outcome.stdout.trim().split('\n');
    expect(Number(processLines)).toBeLessThanOrEqual(4);
    expect(interfaces).toBe('1');
  });

  it('leaves the host untouched and removes the mount points it created', async () => {
    await step('touch /tmp/made-inside');
    expect(await readFile(join(root, 'tmp/made-inside'), 'utf8')).toBe('');
    const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
    expect(mountinfo).not.toContain(root);
    await expect(readFile(join(root, 'etc/hosts'))).rejects.toThrow(/ENOENT/);
  });

  it('refuses a root whose /proc is a symlink that could lead out', async () => {
    const evil = join(scratch, 'evil');
    await makeBusyboxRoot(evil, ['tmp', 'w/sub']);
    await symlink('/etc', join(evil, 'proc'));
    await expect(step('true', { root: evil })).rejects.toThrow(/\/proc in the root filesystem is not a directory/);
  });

  it('stops the step when the build is aborted', async () => {
    const controller = new AbortController();
    const marker = `kiln-aborted-${process.pid}`;
    const running = step(`sleep 300 ${marker}`, { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 300));
    controller.abort();
    const outcome = await running;
    expect(outcome.exitCode).not.toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const { stdout } = await run('ps', ['-eo', 'args']);
    expect(stdout).not.toContain(marker);
  });
});
