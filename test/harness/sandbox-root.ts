/** A small busybox root and a way to run one shell step in it, for the sandbox's own tests. */
import { chmod, copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { resolveCapabilities } from '../../src/sandbox/capabilities.js';
import { runChrootStep, type RunStepRequest, type SandboxTools } from '../../src/sandbox/chroot-runner.js';

const applets = ['sh', 'cat', 'echo', 'sleep', 'stat', 'grep', 'mkdir', 'touch', 'ls', 'id', 'env', 'rm', 'pwd', 'ps', 'hostname'];

/** Debian's busybox-static with its applet links, a passwd with root and builder (1000), and `dirs`. */
export async function makeBusyboxRoot(dir: string, dirs: readonly string[]): Promise<void> {
  for (const sub of ['bin', 'etc', ...dirs]) await mkdir(join(dir, sub), { recursive: true });
  await copyFile('/bin/busybox', join(dir, 'bin/busybox'));
  await chmod(join(dir, 'bin/busybox'), 0o755);
  for (const applet of applets) await symlink('busybox', join(dir, 'bin', applet));
  await writeFile(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nbuilder:x:1000:1000::/home/b:/bin/sh\n');
}

export interface StepOutcome {
  exitCode: number | null;
  kept: string[];
  stdout: string;
  stderr: string;
}

/** Runs `script` with /bin/sh as root, Docker's default capabilities and the host network, unless overridden. */
export async function runScript(root: string, script: string, tools: SandboxTools, overrides: Partial<RunStepRequest> = {}): Promise<StepOutcome> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const result = await runChrootStep(
    {
      root,
      argv: ['/bin/sh', '-c', script],
      workdir: '/w',
      uid: 0,
      gid: 0,
      groups: [],
      capabilities: resolveCapabilities({ add: [], drop: [] }),
      network: 'host',
      hostname: 'kiln-step',
      env: { PATH: '/bin' },
      stdout,
      stderr,
      hostFiles: [],
      ...overrides,
    },
    tools,
  );
  return { exitCode: result.exitCode, kept: result.keptMountPoints, stdout: out, stderr: err };
}
