/** Linux capabilities by number (linux/capability.h), as kiln names them: without the CAP_ prefix. */
const capabilityNumbers: Record<string, number> = {
  CHOWN: 0, DAC_OVERRIDE: 1, DAC_READ_SEARCH: 2, FOWNER: 3, FSETID: 4, KILL: 5, SETGID: 6, SETUID: 7,
  SETPCAP: 8, LINUX_IMMUTABLE: 9, NET_BIND_SERVICE: 10, NET_BROADCAST: 11, NET_ADMIN: 12, NET_RAW: 13,
  IPC_LOCK: 14, IPC_OWNER: 15, SYS_MODULE: 16, SYS_RAWIO: 17, SYS_CHROOT: 18, SYS_PTRACE: 19, SYS_PACCT: 20,
  SYS_ADMIN: 21, SYS_BOOT: 22, SYS_NICE: 23, SYS_RESOURCE: 24, SYS_TIME: 25, SYS_TTY_CONFIG: 26, MKNOD: 27,
  LEASE: 28, AUDIT_WRITE: 29, AUDIT_CONTROL: 30, SETFCAP: 31, MAC_OVERRIDE: 32, MAC_ADMIN: 33, SYSLOG: 34,
  WAKE_ALARM: 35, BLOCK_SUSPEND: 36, AUDIT_READ: 37, PERFMON: 38, BPF: 39, CHECKPOINT_RESTORE: 40,
};

/** What `docker run` grants a container by default (moby's oci/caps/defaults.go); RUN steps start here. */
export const dockerDefaultCapabilities: readonly string[] = [
  'CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID', 'SETFCAP', 'SETPCAP',
  'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE',
];

export class CapabilityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CapabilityError';
  }
}

/** `SYS_PTRACE`, `CAP_SYS_PTRACE` and `sys_ptrace` all name the same capability; `ALL` stands for every one. */
export function normaliseCapabilityName(name: string): string {
  const upper = name.trim().toUpperCase();
  const bare = upper.startsWith('CAP_') ? upper.slice(4) : upper;
  if (bare === 'ALL' || bare in capabilityNumbers) return bare;
  throw new CapabilityError(`unknown capability "${name}" (expected a name such as SYS_PTRACE or CAP_NET_ADMIN, or ALL)`);
}

export interface CapabilityRequest {
  add: readonly string[];
  drop: readonly string[];
  /** `RUN --security=insecure` with `--allow security.insecure`: every capability. */
  insecure?: boolean;
}

/**
 * The capability set a RUN step gets: Docker's defaults, then drops, then adds (Docker applies
 * `--cap-drop ALL --cap-add X` as "only X"), sorted by number so the result is stable.
 */
export function resolveCapabilities(request: CapabilityRequest): string[] {
  if (request.insecure) return allCapabilities();
  const drops = request.drop.map(normaliseCapabilityName);
  const adds = request.add.map(normaliseCapabilityName);
  let set = new Set(drops.includes('ALL') ? [] : dockerDefaultCapabilities.filter((cap) => !drops.includes(cap)));
  if (adds.includes('ALL')) set = new Set(allCapabilities());
  for (const cap of adds) if (cap !== 'ALL') set.add(cap);
  return sortCapabilities([...set]);
}

export function allCapabilities(): string[] {
  return sortCapabilities(Object.keys(capabilityNumbers));
}

function sortCapabilities(caps: string[]): string[] {
  return caps.sort((a, b) => (capabilityNumbers[a] ?? 0) - (capabilityNumbers[b] ?? 0));
}

/** Decodes a `CapEff:`/`CapBnd:` hex mask from /proc/PID/status into names. */
export function decodeCapabilityMask(hex: string): string[] {
  const mask = BigInt(`0x${hex.trim()}`);
  return allCapabilities().filter((cap) => (mask >> BigInt(capabilityNumbers[cap] ?? 0)) & 1n);
}

/** Reads the bounding and effective sets out of /proc/self/status text. */
export function capabilitiesFromStatus(statusText: string): { bounding: string[]; effective: string[] } {
  const field = (name: string): string => {
    const match = new RegExp(`^${name}:\\s*([0-9a-fA-F]+)$`, 'm').exec(statusText);
    if (!match?.[1]) throw new CapabilityError(`/proc/self/status has no ${name} line`);
    return match[1];
  };
  return { bounding: decodeCapabilityMask(field('CapBnd')), effective: decodeCapabilityMask(field('CapEff')) };
}

/**
 * Fails before the build starts when RUN steps were promised a capability kiln itself lacks:
 * a process cannot hand out what it does not hold, and a late failure would waste the build.
 */
export function assertCapabilitiesAvailable(wanted: readonly string[], own: { bounding: string[]; effective: string[] }): void {
  const missing = wanted.filter((cap) => !own.bounding.includes(cap) || !own.effective.includes(cap));
  if (missing.length === 0) return;
  const flags = missing.map((cap) => `--cap-add ${cap}`).join(' ');
  const yaml = missing.map((cap) => `"${cap}"`).join(', ');
  throw new CapabilityError(
    `RUN steps need ${missing.map((cap) => `CAP_${cap}`).join(', ')}, which kiln's own process does not have. ` +
      `Grant it to the job's container: \`docker run ${flags} …\`, or in Kubernetes ` +
      `securityContext.capabilities.add: [${yaml}]; or drop the request (--cap-add / caps input).`,
  );
}

export interface GrantedCapabilities {
  capabilities: string[];
  /** Docker defaults this process does not hold (a container runtime's narrower defaults): left out. */
  missingDefaults: string[];
}

/**
 * What RUN steps actually get: the resolved set, less the Docker defaults kiln itself lacks (podman's
 * defaults leave out AUDIT_WRITE, MKNOD and NET_RAW; a step there gets what any container there
 * gets). A capability asked for explicitly that kiln lacks still fails the build up front.
 */
export function grantableCapabilities(request: CapabilityRequest, own: { bounding: string[]; effective: string[] }): GrantedCapabilities {
  const wanted = resolveCapabilities(request);
  const held = (cap: string): boolean => own.bounding.includes(cap) && own.effective.includes(cap);
  const explicit = request.insecure ? [] : request.add.map(normaliseCapabilityName).filter((cap) => cap !== 'ALL');
  assertCapabilitiesAvailable(explicit, own);
  if (request.insecure) return { capabilities: wanted.filter(held), missingDefaults: [] };
  // `--cap-add ALL` asks for whatever there is: only the defaults a step would lack are worth a word.
  const missingDefaults = wanted.filter((cap) => !held(cap) && dockerDefaultCapabilities.includes(cap));
  return { capabilities: wanted.filter(held), missingDefaults };
}
