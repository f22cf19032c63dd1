/**
 * Running a RUN step with `--isolation in-place`: the step's root is the job container's own "/",
 * so the step is started directly, with no namespaces and no mounts (the container may not make
 * any). setpriv, from kiln's own runtime, sets the step's gid, groups and uid and cuts its
 * capabilities to the ones asked for; the step leads a process group of its own, which is killed
 * when it ends so nothing it started outlives it.
 */
import { spawn } from 'node:child_process';
import { SandboxError, type RunStepRequest, type StepResult } from './chroot-runner.js';

/**
 * The chroot step's settings that still mean something without namespaces; `workdir` is a host path
 * here, and exists (the caller made it).
 */
export type InPlaceStep = Pick<RunStepRequest, 'argv' | 'workdir' | 'uid' | 'gid' | 'groups' | 'capabilities' | 'env' | 'stdout' | 'stderr' | 'signal'>;

/** The argv that starts the step: setpriv (its argv prefix given) and the step's own words. */
export function inPlaceCommand(step: Pick<InPlaceStep, 'argv' | 'uid' | 'gid' | 'groups' | 'capabilities'>, setpriv: readonly string[]): string[] {
  if (step.argv.length === 0) throw new Error('a RUN step needs a command');
  const bounding = ['-all', ...step.capabilities.map((cap) => `+${cap.toLowerCase()}`)].join(',');
  const groups = step.groups.length === 0 ? ['--clear-groups'] : [`--groups=${step.groups.join(',')}`];
  return [
    ...setpriv,
    `--regid=${step.gid}`,
    ...groups,
    ...(step.uid === 0 ? [] : [`--reuid=${step.uid}`]),
    `--bounding-set=${bounding}`,
    '--inh-caps=-all',
    '--',
    ...step.argv,
  ];
}

/** How long output may still arrive after the step's process has exited. */
const outputGraceMs = 2000;

/** Runs the step in the current root and waits for it; what it left running is killed. */
export async function runInPlaceStep(step: InPlaceStep, setpriv: readonly string[]): Promise<Omit<StepResult, 'keptMountPoints'>> {
  const argv = inPlaceCommand(step, setpriv);
  // An abort listener added now would never fire: a build already interrupted starts nothing.
  if (step.signal?.aborted) throw interruption(step.signal);
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0] as string, argv.slice(1), {
      cwd: step.workdir,
      env: step.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      // A process group of its own: the whole group is killed when the step ends or is aborted.
      detached: true,
    });
    const killGroup = (): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
      }
    };
    const onAbort = (): void => killGroup();
    step.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.pipe(step.stdout, { end: false });
    child.stderr.pipe(step.stderr, { end: false });
    child.once('error', (error) => {
      step.signal?.removeEventListener('abort', onAbort);
      reject(new SandboxError(`could not start the RUN step (${argv[0] ?? ''}): ${error.message}`));
    });
    child.once('exit', (exitCode, signal) => {
      step.signal?.removeEventListener('abort', onAbort);
      killGroup();
      const finish = (): void => {
        clearTimeout(timer);
        if (step.signal?.aborted) {
          reject(interruption(step.signal));
          return;
        }
        resolve({ exitCode, signal });
      };
      // A daemon that left the group (setsid) may still hold the output pipes: stop reading them
      // rather than wait for it.
      const timer = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish();
      }, outputGraceMs);
      child.once('close', finish);
    });
  });
}

function interruption(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('the build was interrupted');
}
