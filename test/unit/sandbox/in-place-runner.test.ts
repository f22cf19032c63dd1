/**
 * In-place RUN steps for real, through the host's setpriv (the runtime's copy is the same program
 * started through its own loader; kiln-runtime.test.ts covers that).
 */
import { mkdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeCapabilityMask } from '../../../src/sandbox/capabilities.js';
import { SandboxError } from '../../../src/sandbox/chroot-runner.js';
import { type InPlaceStep, inPlaceCommand, runInPlaceStep } from '../../../src/sandbox/in-place-runner.js';
import { scratchDir } from '../rootfs/helpers.js';

const setpriv = ['/usr/bin/setpriv'];
const hostPath = '/usr/sbin:/usr/bin:/sbin:/bin';

describe('inPlaceCommand', () => {
  const step = { argv: ['/bin/sh', '-c', 'echo hi'], uid: 0, gid: 0, groups: [], capabilities: ['CHOWN', 'SYS_PTRACE'] };

  it('keeps root as root, clearing groups and bounding capabilities to the request', () => {
    expect(inPlaceCommand(step, ['/kiln/lib/ld.so', '--library-path', '/kiln/lib', '/kiln/bin/setpriv'])).toEqual([
      '/kiln/lib/ld.so',
      '--library-path',
      '/kiln/lib',
      '/kiln/bin/setpriv',
      '--regid=0',
      '--clear-groups',
      '--bounding-set=-all,+chown,+sys_ptrace',
      '--inh-caps=-all',
      '--',
      '/bin/sh',
      '-c',
      'echo hi',
    ]);
  });

  it('switches gid, groups and then uid for another user, and bounds to nothing when nothing is granted', () => {
    expect(inPlaceCommand({ ...step, uid: 1000, gid: 100, groups: [100, 20], capabilities: [] }, setpriv)).toEqual([
      '/usr/bin/setpriv',
      '--regid=100',
      '--groups=100,20',
      '--reuid=1000',
      '--bounding-set=-all',
      '--inh-caps=-all',
      '--',
      '/bin/sh',
      '-c',
      'echo hi',
    ]);
  });

  it('refuses a step without a command', () => {
    expect(() => inPlaceCommand({ ...step, argv: [] }, setpriv)).toThrow(/needs a command/);
  });
});

/** A Writable that keeps what it is given. */
function collector(): Writable & { text(): string } {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      callback();
    },
  });
  return Object.assign(sink, { text: () => Buffer.concat(chunks).toString('utf8') });
}

/** Alive means signalable and not a zombie waiting for a reaper. */
async function alive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Field 3, after the parenthesised command name.
  return !/^\d+ \(.*\) Z /.test(stat);
}

/**
 * SIGKILL is delivered asynchronously, and a killed process closes its files (ending the step's
 * output) a moment before it is gone: whether it dies, within a generous bound.
 */
async function dies(pid: number): Promise<boolean> {
  for (let attempt = 0; attempt < 500; attempt += 1) {
    if (!(await alive(pid))) return true;
    await sleep(20);
  }
  return false;
}

async function waitForFile(file: string): Promise<string> {
  for (;;) {
    const text = await readFile(file, 'utf8').catch(() => '');
    if (text.endsWith('\n')) return text.trim();
    await sleep(20);
  }
}

describe('runInPlaceStep', () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let work: string;
  const strays: number[] = [];

  beforeEach(async () => {
    scratch = await scratchDir();
    work = path.join(scratch.dir, 'work dir');
    await mkdir(work);
  });
  afterEach(async () => {
    for (const pid of strays.splice(0)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
      }
    }
    await scratch.cleanup();
  });

  function run(argv: string[], extra: Partial<InPlaceStep> = {}): Promise<{ result: Awaited<ReturnType<typeof runInPlaceStep>>; stdout: string; stderr: string }> {
    const stdout = collector();
    const stderr = collector();
    const step: InPlaceStep = { argv, workdir: work, uid: 0, gid: 0, groups: [], capabilities: [], env: { PATH: hostPath }, stdout, stderr, ...extra };
    return runInPlaceStep(step, setpriv).then((result) => ({ result, stdout: stdout.text(), stderr: stderr.text() }));
  }

  it('runs in the given directory with exactly the given environment, keeping stdout and stderr apart', async () => {
    const env = { PATH: hostPath, GREETING: 'hello world', EMPTY: '' };
    const printed = await run(['/usr/bin/env'], { env });
    expect(printed.result).toEqual({ exitCode: 0, signal: null });
    expect(printed.stdout.split('\n').filter(Boolean).sort()).toEqual(['EMPTY=', 'GREETING=hello world', `PATH=${hostPath}`]);
    const where = await run(['/bin/sh', '-c', 'pwd -P; echo oops >&2']);
    expect(where.stdout).toBe(`${await realpath(work)}\n`);
    expect(where.stderr).toBe('oops\n');
  });

  it('reports exit codes and signals', async () => {
    expect((await run(['/bin/sh', '-c', 'exit 3'])).result).toEqual({ exitCode: 3, signal: null });
    expect((await run(['/bin/sh', '-c', 'kill -TERM $$'])).result).toEqual({ exitCode: null, signal: 'SIGTERM' });
  });

  it("switches to the step's uid, gid and groups", async () => {
    const ids = await run(['/bin/sh', '-c', 'id -u; id -g; id -G'], { uid: 1234, gid: 5678, groups: [5678, 42] });
    expect(ids.result.exitCode).toBe(0);
    expect(ids.stdout.split('\n')).toEqual(['1234', '5678', expect.stringMatching(/^(5678 42|42 5678)$/), '']);
    const cleared = await run(['/bin/sh', '-c', 'id -u; id -G'], { uid: 1234, gid: 5678, groups: [] });
    expect(cleared.stdout).toBe('1234\n5678\n');
    const root = await run(['/bin/sh', '-c', 'id -u; id -G'], { groups: [] });
    expect(root.stdout).toBe('0\n0\n');
  });

  it('bounds the capabilities to the ones granted', async () => {
    const status = async (capabilities: string[]): Promise<{ bounding: string[]; effective: string[] }> => {
      const { stdout } = await run(['/bin/sh', '-c', 'grep -E "^Cap(Bnd|Eff):" /proc/self/status'], { capabilities });
      const field = (name: string): string[] => decodeCapabilityMask(new RegExp(`^${name}:\\s*(\\w+)$`, 'm').exec(stdout)?.[1] ?? 'x');
      return { bounding: field('CapBnd'), effective: field('CapEff') };
    };
    expect(await status(['CHOWN', 'SYS_PTRACE'])).toEqual({ bounding: ['CHOWN', 'SYS_PTRACE'], effective: ['CHOWN', 'SYS_PTRACE'] });
    expect(await status([])).toEqual({ bounding: [], effective: [] });
  });

  // `sleep 301`, not 300: test/e2e/build-busybox.test.ts looks for a stray `sleep 300` of its own while this file may run beside it.
  it('kills what the step left running in its process group', async () => {
    const pidFile = path.join(scratch.dir, 'background.pid');
    const { result } = await run(['/bin/sh', '-c', `sleep 301 & echo $! > '${pidFile}'; echo started`]);
    expect(result).toEqual({ exitCode: 0, signal: null });
    const pid = Number(await waitForFile(pidFile));
    strays.push(pid);
    expect(pid).toBeGreaterThan(0);
    expect(await dies(pid)).toBe(true);
  });

  it('stops waiting for output held by a process that left the group', async () => {
    const pidFile = path.join(scratch.dir, 'daemon.pid');
    // setsid leaves the step's group (so it is not killed) but keeps the output pipes open; the
    // step waits until it has left, or the group's end would take it along.
    const script = `setsid sh -c 'echo $$ > "${pidFile}"; exec sleep 301' & until [ -s '${pidFile}' ]; do sleep 0.05; done; echo done`;
    const { result, stdout } = await run(['/bin/sh', '-c', script]);
    const pid = Number(await waitForFile(pidFile));
    strays.push(pid);
    expect(result).toEqual({ exitCode: 0, signal: null });
    expect(stdout).toContain('done\n');
    expect(await alive(pid)).toBe(true);
  });

  it('kills the step when the build is aborted, and rejects with the reason', async () => {
    const pidFile = path.join(scratch.dir, 'step.pid');
    const controller = new AbortController();
    const running = run(['/bin/sh', '-c', `echo $$ > '${pidFile}'; exec sleep 301`], { signal: controller.signal });
    const pid = Number(await waitForFile(pidFile));
    strays.push(pid);
    expect(await alive(pid)).toBe(true);
    const reason = new Error('interrupted by the test');
    controller.abort(reason);
    await expect(running).rejects.toBe(reason);
    expect(await dies(pid)).toBe(true);
  });

  it('starts nothing once the build was aborted', async () => {
    const marker = path.join(scratch.dir, 'started');
    const controller = new AbortController();
    controller.abort();
    await expect(run(['/bin/sh', '-c', `touch '${marker}'`], { signal: controller.signal })).rejects.toThrow();
    await expect(stat(marker)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('fails with a SandboxError when the step cannot be started', async () => {
    const stdout = collector();
    const step: InPlaceStep = { argv: ['/bin/true'], workdir: work, uid: 0, gid: 0, groups: [], capabilities: [], env: {}, stdout, stderr: stdout };
    await expect(runInPlaceStep(step, [path.join(scratch.dir, 'no-setpriv')])).rejects.toThrow(SandboxError);
    await expect(runInPlaceStep({ ...step, workdir: path.join(work, 'missing') }, setpriv)).rejects.toThrow(/could not start the RUN step/);
  });
});
