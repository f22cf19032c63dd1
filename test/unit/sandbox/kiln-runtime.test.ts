import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lstatOrUndefined } from '../../../src/rootfs/lstat.js';
import { SandboxError } from '../../../src/sandbox/chroot-runner.js';
import { runInPlaceStep } from '../../../src/sandbox/in-place-runner.js';
import { type CommandRunner, runCommand } from '../../../src/rootfs/command-runner.js';
import { locateKilnRuntime, runThroughRuntime } from '../../../src/sandbox/kiln-runtime.js';
import { makeKilnRuntimeDir } from '../../harness/kiln-runtime-dir.js';
import { sharedLibraries } from '../../harness/node-runtime-image.js';
import { runTool } from '../../harness/process.js';
import { scratchDir } from '../rootfs/helpers.js';

const exists = async (file: string): Promise<boolean> => (await lstatOrUndefined(file)) !== undefined;

describe('locateKilnRuntime', () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let runtime: string;

  beforeEach(async () => {
    scratch = await scratchDir();
    runtime = path.join(scratch.dir, 'kiln');
  });
  afterEach(async () => scratch.cleanup());

  /** The executor image's /kiln, with empty files: locating needs only their names. */
  async function layOut(dir: string, files: string[]): Promise<void> {
    for (const file of files) {
      await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
      await writeFile(path.join(dir, file), '');
    }
  }

  it('finds the runtime above the running node, and starts its tools through its own loader', async () => {
    await layOut(runtime, ['bin/node', 'bin/setpriv', 'lib/ld.so', 'lib/libc.so.6']);
    const found = await locateKilnRuntime({ env: {}, execPath: path.join(runtime, 'bin', 'node'), exists });
    expect(found?.dir).toBe(runtime);
    expect(found?.tool('setpriv')).toEqual([path.join(runtime, 'lib/ld.so'), '--library-path', path.join(runtime, 'lib'), path.join(runtime, 'bin/setpriv')]);
  });

  it('takes KILN_RUNTIME_DIR first, resolved, and an empty one as unset', async () => {
    await layOut(runtime, ['bin/setpriv', 'lib/ld.so']);
    const elsewhere = path.join(scratch.dir, 'system');
    await layOut(elsewhere, ['bin/node', 'bin/setpriv', 'lib/ld.so']);
    const named = await locateKilnRuntime({ env: { KILN_RUNTIME_DIR: path.relative(process.cwd(), runtime) }, execPath: path.join(elsewhere, 'bin/node'), exists });
    expect(named?.dir).toBe(runtime);
    const empty = await locateKilnRuntime({ env: { KILN_RUNTIME_DIR: '' }, execPath: path.join(elsewhere, 'bin/node'), exists });
    expect(empty?.dir).toBe(elsewhere);
  });

  it('finds nothing when node runs from the system, and refuses a KILN_RUNTIME_DIR without a loader', async () => {
    await layOut(runtime, ['bin/node', 'bin/setpriv', 'lib/libc.so.6']);
    expect(await locateKilnRuntime({ env: {}, execPath: path.join(runtime, 'bin/node'), exists })).toBeUndefined();
    const named = locateKilnRuntime({ env: { KILN_RUNTIME_DIR: runtime }, execPath: '/usr/bin/node', exists });
    await expect(named).rejects.toBeInstanceOf(SandboxError);
    await expect(locateKilnRuntime({ env: { KILN_RUNTIME_DIR: runtime }, execPath: '/usr/bin/node', exists })).rejects.toThrow(/KILN_RUNTIME_DIR=.* holds no lib\/ld\.so/);
  });

  it('names the tool a runtime lacks when it is asked for', async () => {
    await layOut(runtime, ['lib/ld.so']);
    const found = await locateKilnRuntime({ env: { KILN_RUNTIME_DIR: runtime }, execPath: '/usr/bin/node', exists });
    expect(found).toBeDefined();
    expect(() => found?.tool('setpriv')).toThrow(SandboxError);
    expect(() => found?.tool('setpriv')).toThrow(/has no bin\/setpriv/);
    expect(() => found?.tool('unshare')).toThrow(/has no bin\/unshare/);
  });

  it("runs the runtime's getfattr and setfattr where it has them, and other commands as named", async () => {
    await layOut(runtime, ['bin/node', 'bin/getfattr', 'lib/ld.so']);
    const found = await locateKilnRuntime({ env: {}, execPath: path.join(runtime, 'bin', 'node'), exists });
    if (found === undefined) throw new Error('expected a runtime');
    expect([found.has('getfattr'), found.has('setfattr'), found.has('setpriv')]).toEqual([true, false, false]);
    const calls: string[][] = [];
    const recording: CommandRunner = async (command, args) => {
      calls.push([command, ...args]);
      return { exitCode: 0, stdout: '', stderr: '' };
    };
    const run = runThroughRuntime(found, recording);
    await run('getfattr', ['--dump', '/x']);
    await run('setfattr', ['-n', 'user.a', '/x']);
    expect(calls).toEqual([
      [path.join(runtime, 'lib/ld.so'), '--library-path', path.join(runtime, 'lib'), path.join(runtime, 'bin/getfattr'), '--dump', '/x'],
      ['setfattr', '-n', 'user.a', '/x'],
    ]);
  });

  it("reads xattrs with the runtime's copy of getfattr, started through the copied loader", async () => {
    await makeKilnRuntimeDir(runtime);
    const { libraries } = await sharedLibraries('/usr/bin/getfattr');
    for (const library of libraries) await copyFile(library, path.join(runtime, 'lib', path.basename(library)));
    await copyFile('/usr/bin/getfattr', path.join(runtime, 'bin/getfattr'));
    const found = await locateKilnRuntime({ env: { KILN_RUNTIME_DIR: runtime }, execPath: process.execPath, exists });
    if (found === undefined) throw new Error('expected a runtime');
    const file = path.join(scratch.dir, 'tagged');
    await writeFile(file, '');
    await runTool('setfattr', ['-n', 'user.kiln', '-v', 'yes', file]);
    const started: string[] = [];
    const run = runThroughRuntime(found, (command, args) => {
      started.push(command);
      return runCommand(command, args);
    });
    const result = await run('getfattr', ['--absolute-names', '--dump', file]);
    expect(started).toEqual([path.join(runtime, 'lib/ld.so')]);
    expect(result).toEqual({ exitCode: 0, stdout: `# file: ${file}\nuser.kiln="yes"\n\n`, stderr: '' });
  });

  it("runs the host's setpriv from a runtime made of copies, through the copied loader alone", async () => {
    await makeKilnRuntimeDir(runtime);
    const found = await locateKilnRuntime({ env: { KILN_RUNTIME_DIR: runtime }, execPath: process.execPath, exists });
    const argv = found?.tool('setpriv') ?? [];
    expect(argv[0]).toBe(path.join(runtime, 'lib/ld.so'));
    // LD_DEBUG=libs makes the loader say where each library came from: the runtime's lib/, not the host's.
    const { stdout, stderr } = await runTool(argv[0] as string, [...argv.slice(1), '--dump'], { env: { LD_DEBUG: 'libs' } });
    expect(stdout).toMatch(/^uid: 0$/m);
    expect(stdout).toMatch(/^Capability bounding set: /m);
    const loaded = [...stderr.matchAll(/calling init: (\S+)/g)].map((match) => match[1]);
    expect(loaded).toContain(path.join(runtime, 'lib/libc.so.6'));
    expect(loaded.filter((library) => !library?.startsWith(`${runtime}/`))).toEqual([]);

    // And as the prefix of a RUN step, switching users.
    let output = '';
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        output += chunk.toString('utf8');
        callback();
      },
    });
    const step = { argv: ['/bin/sh', '-c', 'id -u; id -g'], workdir: scratch.dir, uid: 4321, gid: 8765, groups: [], capabilities: [], env: { PATH: '/usr/bin:/bin' }, stdout: sink, stderr: sink };
    expect(await runInPlaceStep(step, argv)).toEqual({ exitCode: 0, signal: null });
    expect(output).toBe('4321\n8765\n');
  });
});
