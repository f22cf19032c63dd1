/**
 * Where kiln's own runtime lives when a build may replace the rest of the filesystem: node, the
 * libraries it links, its dynamic loader (`lib/ld.so`) and the util-linux tools, all below one
 * directory (the executor image's /kiln). Programs there are started through that loader, so they
 * never look for a library outside it.
 */
import path from 'node:path';
import type { CommandRunner } from '../rootfs/command-runner.js';
import { SandboxError } from './chroot-runner.js';

export interface KilnRuntime {
  dir: string;
  /** Whether the runtime holds its own copy of the tool. */
  has(name: string): boolean;
  /** The argv prefix that starts one of the runtime's tools (`setpriv`). */
  tool(name: string): string[];
}

/** The tools kiln's runtime may hold: util-linux's setpriv for RUN steps, attr's getfattr and setfattr for layers' xattrs. */
const runtimeTools = ['setpriv', 'getfattr', 'setfattr'];

export interface RuntimeProbe {
  env: NodeJS.ProcessEnv;
  /** The running node binary (process.execPath). */
  execPath: string;
  exists(path: string): Promise<boolean>;
}

/**
 * KILN_RUNTIME_DIR, or the directory above node's `bin/` when that holds `lib/ld.so` (the executor
 * image). Undefined when node runs from the system: then kiln cannot outlive a replaced "/".
 */
export async function locateKilnRuntime(probe: RuntimeProbe): Promise<KilnRuntime | undefined> {
  const named = probe.env.KILN_RUNTIME_DIR;
  const candidate = named !== undefined && named !== '' ? path.resolve(named) : path.dirname(path.dirname(probe.execPath));
  const loader = path.join(candidate, 'lib', 'ld.so');
  if (!(await probe.exists(loader))) {
    if (named !== undefined && named !== '') throw new SandboxError(`KILN_RUNTIME_DIR=${named} holds no lib/ld.so (see images/executor/collect-runtime.sh)`);
    return undefined;
  }
  const tools = new Map<string, boolean>();
  for (const name of runtimeTools) tools.set(name, await probe.exists(path.join(candidate, 'bin', name)));
  return {
    dir: candidate,
    has: (name) => tools.get(name) === true,
    tool(name) {
      if (tools.get(name) !== true) throw new SandboxError(`kiln's runtime in ${candidate} has no bin/${name}; rebuild the executor image (images/executor/collect-runtime.sh copies it from the node image)`);
      return [loader, '--library-path', path.join(candidate, 'lib'), path.join(candidate, 'bin', name)];
    },
  };
}

/**
 * Runs the runtime's own copy of a command where it has one, else the command as named: once an
 * in-place build has replaced "/", the host's getfattr and setfattr are gone (or are the image's).
 */
export function runThroughRuntime(runtime: KilnRuntime, run: CommandRunner): CommandRunner {
  return (command, args) => {
    if (!runtime.has(command)) return run(command, args);
    const [program, ...prefix] = runtime.tool(command) as [string, ...string[]];
    return run(program, [...prefix, ...args]);
  };
}
