/**
 * Values inside instructions checked the way Docker checks them: Go durations (HEALTHCHECK), file
 * modes (`--chmod`), `ADD --checksum`, stop signals and EXPOSE port specs.
 */
import { InstructionError } from './instruction-error.js';
import type { AddInstruction, FileModeSpec, PortSpec } from './instructions.js';

const DURATION_UNITS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's time.ParseDuration (`1m30s`, `1.5h`, `300ms`), in nanoseconds. */
export function parseGoDuration(text: string): number {
  const invalid = (): InstructionError => new InstructionError(`time: invalid duration "${text}"`);
  let s = text;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s.startsWith('-')) sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw invalid();
  let total = 0;
  const part = /^(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)?/;
  while (s !== '') {
    const m = part.exec(s);
    if (m === null || m[0] === '' || ((m[1] ?? '') === '' && (m[2] ?? '') === '')) throw invalid();
    if (m[3] === undefined) throw new InstructionError(`time: missing unit in duration "${text}"`);
    const unit = DURATION_UNITS[m[3]] ?? 1;
    total += Number(`${m[1] === '' ? '0' : m[1]}.${m[2] ?? '0'}`) * unit;
    s = s.slice(m[0].length);
  }
  return sign * Math.round(total);
}

/** `--chmod`: octal up to 07777, or chmod(1)'s symbolic form (`u=rwx,go=rx`, `+x`). */
export function parseFileMode(text: string): FileModeSpec {
  if (/^[0-7]+$/.test(text)) {
    const mode = Number.parseInt(text, 8);
    if (mode <= 0o7777) return { kind: 'octal', mode };
  } else if (/^[ugoa]*(?:[-+=](?:[rwxXst]*|[ugo]))+(?:,[ugoa]*(?:[-+=](?:[rwxXst]*|[ugo]))+)*$/.test(text)) {
    return { kind: 'symbolic', expression: text };
  }
  throw new InstructionError(`invalid chmod parameter: '${text}'. it should be octal string and between 0 and 07777, or a symbolic mode such as u+x,go=r`);
}

/** A git source as ADD understands it (`git@…`, `git://…`, `https://….git`, with an optional `#ref`). */
export function isGitSource(src: string): boolean {
  return /^git@|^git:\/\/|^ssh:\/\//.test(src) || /^https?:\/\/[^#]*\.git(?:#|$)/.test(src);
}

/** `--checksum`: a digest for an HTTP source; for a git source, also the commit id it must resolve to. */
export function validateChecksum(add: AddInstruction): void {
  if (add.checksum === undefined) return;
  if (add.sources.length + add.heredocSources.length !== 1) throw new InstructionError("checksum can't be specified for multiple sources");
  const digest = /^sha(256:[a-f0-9]{64}|384:[a-f0-9]{96}|512:[a-f0-9]{128})$/.test(add.checksum);
  const commit = /^[a-f0-9]{40}$|^[a-f0-9]{64}$/.test(add.checksum) && isGitSource(add.sources[0] ?? '');
  if (!digest && !commit) {
    throw new InstructionError(`invalid checksum digest format "${add.checksum}" (expected sha256:<64 hex digits>, or a commit id for a git source)`);
  }
}

const SIGNALS = new Set([
  'ABRT', 'ALRM', 'BUS', 'CHLD', 'CLD', 'CONT', 'FPE', 'HUP', 'ILL', 'INT', 'IO', 'IOT', 'KILL', 'PIPE', 'POLL',
  'PROF', 'PWR', 'QUIT', 'SEGV', 'STKFLT', 'STOP', 'SYS', 'TERM', 'TRAP', 'TSTP', 'TTIN', 'TTOU', 'URG',
  'USR1', 'USR2', 'VTALRM', 'WINCH', 'XCPU', 'XFSZ', 'RTMIN', 'RTMAX',
  ...Array.from({ length: 15 }, (_, i) => `RTMIN+${i + 1}`),
  ...Array.from({ length: 14 }, (_, i) => `RTMAX-${i + 1}`),
]);

/** moby/sys/signal.ParseSignal on Linux: a non-zero number, or a name with or without `SIG`. */
export function validateSignal(signal: string): void {
  if (/^\d+$/.test(signal)) {
    if (Number(signal) === 0) throw new InstructionError(`Invalid signal: ${signal}`);
    return;
  }
  const name = signal.toUpperCase().replace(/^SIG/, '');
  if (!SIGNALS.has(name)) throw new InstructionError(`Invalid signal: ${signal}`);
}

/** One EXPOSE word: `80`, `80/udp`, `8000-8010/tcp` (docker/go-connections nat rules). */
export function parsePortSpec(word: string): PortSpec {
  const slash = word.indexOf('/');
  let portPart = slash < 0 ? word : word.slice(0, slash);
  const protoWritten = slash < 0 || word.slice(slash + 1) === '' ? 'tcp' : word.slice(slash + 1);
  const protocol = protoWritten.toLowerCase();
  if (protocol !== 'tcp' && protocol !== 'udp' && protocol !== 'sctp') throw new InstructionError(`invalid proto: ${protoWritten}`);
  let ignoredHostPart: string | undefined;
  const colon = portPart.lastIndexOf(':');
  if (colon >= 0) {
    ignoredHostPart = portPart.slice(0, colon);
    portPart = portPart.slice(colon + 1);
  }
  if (portPart === '') throw new InstructionError(`no port specified: ${word}<empty>`);
  const m = /^(\d+)(?:-(\d+))?$/.exec(portPart);
  const start = m === null ? NaN : Number(m[1]);
  const end = m === null ? NaN : m[2] === undefined ? start : Number(m[2]);
  if (!Number.isInteger(start) || !Number.isInteger(end) || start > 65535 || end > 65535 || end < start) {
    throw new InstructionError(`invalid containerPort: ${portPart} (expected a port 0-65535 or a range such as 8000-8010)`);
  }
  const spec: PortSpec = { start, end, protocol };
  if (ignoredHostPart !== undefined) spec.ignoredHostPart = ignoredHostPart;
  if (protoWritten !== protocol) spec.protocolAsWritten = protoWritten;
  return spec;
}

/** The image config's ExposedPorts keys for a spec (`80/tcp`); ranges give one key per port. */
export function exposedPortKeys(spec: PortSpec): string[] {
  const keys: string[] = [];
  for (let p = spec.start; p <= spec.end; p++) keys.push(`${p}/${spec.protocol}`);
  return keys;
}

