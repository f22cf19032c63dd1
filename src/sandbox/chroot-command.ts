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
  /** Per-step copies bind-mounted into the root; targets are host paths already checked to lie inside it. */
  hostFiles: readonly { source: string; target: string }[];
  /** Absolute paths of the host's setpriv and unshare: the step's PATH is not the host's. */
  tools: { setpriv: string; unshare: string };
  /** RUN --mount mounts, made after the host files, in this order (see run-mounts.ts). */
  mounts?: readonly SandboxMount[];
  /**
   * An empty host directory on which the step's namespace mounts a private tmpfs holding secrets,
   * overlay upper dirs and copies: it exists only as long as the step, and only the step's
   * namespace ever sees its content. Needed by every mount kind except `bind` and `tmpfs`.
   */
  stagingDir?: string;
}

/**
 * One mount as the sandbox makes it; every path is a host path, targets already resolved inside the
 * root and created as mount points of the right type.
 * - `bind`: the source itself, read-only unless asked (cache mounts, read-only bind mounts).
 * - `tmpfs`: a fresh tmpfs (BuildKit's options: nosuid, nodev, mode 1777).
 * - `overlay`: a writable view of a source directory whose writes land on the staging tmpfs and
 *   vanish with the step (`RUN --mount=type=bind,rw`): the source on disk never changes.
 * - `file-copy`: the same for a single file, as a copy on the staging tmpfs.
 * - `secret`: the bytes read from the inherited file descriptor `fd` (3-9: dash reads no other), on
 *   the staging tmpfs with mode/owner, bind-mounted read-only at the target; never on disk.
 */
export type SandboxMount =
  | { kind: 'bind'; source: string; target: string; readonly: boolean }
  | { kind: 'tmpfs'; target: string; sizeBytes?: number }
  | { kind: 'overlay'; source: string; target: string }
  | { kind: 'file-copy'; source: string; target: string }
  | { kind: 'secret'; fd: number; target: string; mode: number; uid: number; gid: number };

/** File descriptors a secret may arrive on: the host /bin/sh (dash) redirects single digits only. */
export const secretDescriptors: readonly number[] = [3, 4, 5, 6, 7, 8, 9];

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
  'while [ "$1" != "--" ]; do mount --bind "$1" "$2"; shift 2; done',
  'shift',
  // RUN --mount: operations as words, each a kind and its fixed number of operands.
  'stage=$1; shift',
  'if [ -n "$stage" ]; then mount -t tmpfs -o nosuid,nodev,mode=700 kiln-stage "$stage"; fi',
  'n=0',
  'while [ "$1" != "--" ]; do',
  '  n=$((n+1))',
  '  case "$1" in',
  '  bind) mount --bind "$2" "$3"; if [ "$4" = ro ]; then mount -o remount,bind,ro "$3"; fi; shift 4 ;;',
  '  tmpfs) mount -t tmpfs -o "$3" tmpfs "$2"; shift 3 ;;',
  '  overlay) mkdir "$stage/$n" "$stage/$n/lower" "$stage/$n/upper" "$stage/$n/work"; mount --bind "$2" "$stage/$n/lower"',
  '    mount -t overlay -o "lowerdir=$stage/$n/lower,upperdir=$stage/$n/upper,workdir=$stage/$n/work" overlay "$3"; shift 3 ;;',
  '  file-copy) cp -p "$2" "$stage/$n"; mount --bind "$stage/$n" "$3"; shift 3 ;;',
  '  secret) (umask 077; eval "cat <&$2" > "$stage/$n"); eval "exec $2<&-"; chown "$5:$6" "$stage/$n"; chmod "$4" "$stage/$n"',
  '    mount --bind "$stage/$n" "$3"; mount -o remount,bind,ro,nosuid,nodev,noexec "$3"; shift 6 ;;',
  '  *) echo "kiln: unknown mount operation $1" >&2; exit 125 ;;',
  '  esac',
  'done',
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
  const mountWords = mountOperations(step);
  const enterRoot = [step.tools.unshare, `--root=${step.root}`, `--wd=${step.workdir}`, ...(step.uid === 0 ? [] : [`--setuid=${step.uid}`]), '--'];
  return [
    step.tools.unshare, ...namespaces, '--',
    '/bin/sh', '-c', setupScript, 'kiln-run', step.root, step.hostname,
    ...step.hostFiles.flatMap((file) => [file.source, file.target]), '--',
    ...mountWords, '--',
    ...privileges, ...enterRoot, ...step.argv,
  ];
}

/** Characters overlayfs would read as option or layer separators in the staging paths it is given. */
const overlayUnsafe = /[,:\\\s]/;

/** The staging directory, then each mount as the setup script's words. */
function mountOperations(step: ChrootStep): string[] {
  const mounts = step.mounts ?? [];
  const staged = mounts.some((mount) => mount.kind !== 'bind' && mount.kind !== 'tmpfs');
  if (staged && (step.stagingDir === undefined || !step.stagingDir.startsWith('/'))) {
    throw new Error('RUN mounts with overlays, copies or secrets need an absolute staging directory');
  }
  if (staged && overlayUnsafe.test(step.stagingDir ?? '')) {
    throw new Error(`the staging directory ${step.stagingDir ?? ''} holds a character overlayfs cannot take (comma, colon, backslash, space)`);
  }
  const words = [staged ? (step.stagingDir ?? '') : ''];
  for (const mount of mounts) {
    switch (mount.kind) {
      case 'bind':
        words.push('bind', mount.source, mount.target, mount.readonly ? 'ro' : 'rw');
        break;
      case 'tmpfs': {
        const size = mount.sizeBytes === undefined ? [] : [`size=${Math.floor(mount.sizeBytes)}`];
        words.push('tmpfs', mount.target, ['nosuid', 'nodev', 'mode=1777', ...size].join(','));
        break;
      }
      case 'overlay':
      case 'file-copy':
        words.push(mount.kind, mount.source, mount.target);
        break;
      case 'secret':
        if (!secretDescriptors.includes(mount.fd)) throw new Error(`secret file descriptor ${mount.fd} is not one of ${secretDescriptors.join(', ')}`);
        words.push('secret', String(mount.fd), mount.target, mount.mode.toString(8).padStart(4, '0'), String(mount.uid), String(mount.gid));
        break;
    }
  }
  return words;
}
