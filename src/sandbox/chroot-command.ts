/**
 * How a RUN step is launched with `--isolation chroot`, as a pure function from the step to an argv.
 *
 * Node cannot unshare, chroot or drop capabilities itself, so the step goes through util-linux and
 * the host's /bin/sh, in an order that keeps every privilege only as long as it is needed:
 *   unshare (new mount, pid, uts, ipc [and net] namespaces; the step is pid 1, so everything it leaves
 *   behind dies with it) → sh mounts /proc, a minimal /dev, /sys read-only and the host's resolv.conf
 *   and hosts inside the root → setpriv sets the gid and supplementary groups and cuts the bounding
 *   set to the step's capabilities → unshare --root --wd chroots, enters WORKDIR and, for a non-root
 *   USER, switches uid last (which clears every capability) → the step's own argv.
 * capsh cannot be used for the last hop: its --chroot always leaves the process in "/".
 */
export interface ChrootStep {
  /** The root filesystem directory on the host. */
  root: string;
  /** The program and its arguments, already in exec form (shell form wrapped by the caller). */
  argv: readonly string[];
  /** Absolute path inside the root. */
  workdir: string;
  uid: number;
  gid: number;
  /** Supplementary groups; empty clears them. */
  groups: readonly number[];
  /** Capability names without CAP_ (see capabilities.ts). */
  capabilities: readonly string[];
  network: 'host' | 'none';
  hostname: string;
  /** Host files bind-mounted read-only into the root; targets are host paths already checked to lie inside it. */
  hostFiles: readonly { source: string; target: string }[];
  /** Absolute paths of the host's setpriv and unshare: the step's PATH is not the host's. */
  tools: { setpriv: string; unshare: string };
}

/** Runs inside the new namespaces. Positional parameters carry every path, so nothing is re-quoted. */
const setupScript = [
  'set -eu',
  'step_path=${PATH-}; step_has_path=${PATH+set}',
  'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  'root=$1; shift',
  'hostname "$1"; shift',
  'mount --make-rprivate /',
  'mount -t proc -o nosuid,nodev,noexec proc "$root/proc"',
  'mount -t tmpfs -o nosuid,mode=755,size=65536k tmpfs "$root/dev"',
  'for node in null zero full random urandom tty; do : > "$root/dev/$node"; mount --bind "/dev/$node" "$root/dev/$node"; done',
  'mkdir -p "$root/dev/pts" "$root/dev/shm"',
  'mount -t tmpfs -o nosuid,nodev,mode=1777 shm "$root/dev/shm"',
  'ln -s /proc/self/fd "$root/dev/fd"; ln -s /proc/self/fd/0 "$root/dev/stdin"',
  'ln -s /proc/self/fd/1 "$root/dev/stdout"; ln -s /proc/self/fd/2 "$root/dev/stderr"',
  'mount --rbind /sys "$root/sys" && mount -o remount,bind,ro "$root/sys" || true',
  'while [ "$1" != "--" ]; do mount --bind "$1" "$2"; mount -o remount,bind,ro "$2"; shift 2; done',
  'shift',
  'if [ -n "$step_has_path" ]; then export PATH="$step_path"; else unset PATH; fi',
  'exec "$@"',
].join('\n');

export function chrootCommand(step: ChrootStep): string[] {
  if (step.argv.length === 0) throw new Error('a RUN step needs a command');
  if (!step.workdir.startsWith('/')) throw new Error(`WORKDIR must be absolute, got ${step.workdir}`);
  const namespaces = ['--mount', '--pid', '--fork', '--uts', '--ipc', '--kill-child', ...(step.network === 'none' ? ['--net'] : [])];
  const bounding = ['-all', ...step.capabilities.map((cap) => `+${cap.toLowerCase()}`)].join(',');
  const groups = step.groups.length === 0 ? ['--clear-groups'] : [`--groups=${step.groups.join(',')}`];
  const privileges = [step.tools.setpriv, `--regid=${step.gid}`, ...groups, `--bounding-set=${bounding}`, '--inh-caps=-all', '--'];
  const enterRoot = [step.tools.unshare, `--root=${step.root}`, `--wd=${step.workdir}`, ...(step.uid === 0 ? [] : [`--setuid=${step.uid}`]), '--'];
  return [
    step.tools.unshare, ...namespaces, '--',
    '/bin/sh', '-c', setupScript, 'kiln-run', step.root, step.hostname,
    ...step.hostFiles.flatMap((file) => [file.source, file.target]), '--',
    ...privileges, ...enterRoot, ...step.argv,
  ];
}
