import { describe, expect, it } from 'vitest';
import {
  CapabilityError,
  allCapabilities,
  assertCapabilitiesAvailable,
  capabilitiesFromStatus,
  decodeCapabilityMask,
  dockerDefaultCapabilities,
  grantableCapabilities,
  normaliseCapabilityName,
  resolveCapabilities,
} from '../../../src/sandbox/capabilities.js';
import { chrootCommand } from '../../../src/sandbox/chroot-command.js';

describe('capabilities', () => {
  it('normalises names with and without CAP_, in any case', () => {
    expect(normaliseCapabilityName('cap_sys_ptrace')).toBe('SYS_PTRACE');
    expect(normaliseCapabilityName('SYS_PTRACE')).toBe('SYS_PTRACE');
    expect(normaliseCapabilityName('all')).toBe('ALL');
    expect(() => normaliseCapabilityName('SYS_PTRACEX')).toThrow(/unknown capability "SYS_PTRACEX"/);
  });

  it("starts from Docker's default set and applies drops then adds", () => {
    expect(resolveCapabilities({ add: [], drop: [] })).toHaveLength(dockerDefaultCapabilities.length);
    const withPtrace = resolveCapabilities({ add: ['SYS_PTRACE'], drop: ['NET_RAW'] });
    expect(withPtrace).toContain('SYS_PTRACE');
    expect(withPtrace).not.toContain('NET_RAW');
    expect(resolveCapabilities({ add: ['CHOWN'], drop: ['ALL'] })).toEqual(['CHOWN']);
    expect(resolveCapabilities({ add: [], drop: [], insecure: true })).toContain('SYS_ADMIN');
  });

  it('decodes /proc status masks', () => {
    // 0xa80425fb is Docker's default set.
    expect(decodeCapabilityMask('00000000a80425fb').sort()).toEqual([...dockerDefaultCapabilities].sort());
    const own = capabilitiesFromStatus('Name:\tx\nCapEff:\t0000000000080000\nCapBnd:\t00000000000c0000\n');
    expect(own).toEqual({ bounding: ['SYS_CHROOT', 'SYS_PTRACE'], effective: ['SYS_PTRACE'] });
  });

  it('refuses, before any build, capabilities kiln itself does not hold, saying how to grant them', () => {
    const own = { bounding: ['CHOWN', 'SYS_CHROOT'], effective: ['CHOWN', 'SYS_CHROOT'] };
    expect(() => assertCapabilitiesAvailable(['CHOWN'], own)).not.toThrow();
    expect(() => assertCapabilitiesAvailable(['CHOWN', 'SYS_PTRACE'], own)).toThrow(/CAP_SYS_PTRACE.*docker run --cap-add SYS_PTRACE/);
  });
});

describe('grantableCapabilities', () => {
  // podman's default set: Docker's less AUDIT_WRITE, MKNOD and NET_RAW.
  const podmanDefaults = dockerDefaultCapabilities.filter((cap) => !['AUDIT_WRITE', 'MKNOD', 'NET_RAW'].includes(cap));
  const podman = { bounding: [...podmanDefaults], effective: [...podmanDefaults] };

  it('leaves out, and lists, the Docker defaults the process lacks', () => {
    const granted = grantableCapabilities({ add: [], drop: [] }, podman);
    expect(granted.missingDefaults).toEqual(['NET_RAW', 'MKNOD', 'AUDIT_WRITE']);
    expect([...granted.capabilities].sort()).toEqual([...podmanDefaults].sort());
    const everything = { bounding: allCapabilities(), effective: allCapabilities() };
    expect(grantableCapabilities({ add: [], drop: [] }, everything)).toEqual({ capabilities: resolveCapabilities({ add: [], drop: [] }), missingDefaults: [] });
  });

  it('counts a capability as held only when it is both in the bounding and the effective set', () => {
    const granted = grantableCapabilities({ add: [], drop: [] }, { bounding: [...podmanDefaults, 'NET_RAW'], effective: [...podmanDefaults, 'MKNOD'] });
    expect(granted.missingDefaults).toEqual(['NET_RAW', 'MKNOD', 'AUDIT_WRITE']);
    expect(granted.capabilities).not.toContain('NET_RAW');
    expect(granted.capabilities).not.toContain('MKNOD');
  });

  it('fails up front on an explicit --cap-add the process lacks, even a default one', () => {
    expect(() => grantableCapabilities({ add: ['cap_sys_ptrace'], drop: [] }, podman)).toThrow(CapabilityError);
    expect(() => grantableCapabilities({ add: ['SYS_PTRACE'], drop: [] }, podman)).toThrow(/CAP_SYS_PTRACE/);
    expect(() => grantableCapabilities({ add: ['NET_RAW'], drop: [] }, podman)).toThrow(/CAP_NET_RAW/);
    const withPtrace = { bounding: [...podmanDefaults, 'SYS_PTRACE'], effective: [...podmanDefaults, 'SYS_PTRACE'] };
    expect(grantableCapabilities({ add: ['SYS_PTRACE'], drop: [] }, withPtrace).capabilities).toContain('SYS_PTRACE');
  });

  it('applies --cap-drop ALL --cap-add X as only X, with nothing missing', () => {
    expect(grantableCapabilities({ add: ['CHOWN'], drop: ['ALL'] }, podman)).toEqual({ capabilities: ['CHOWN'], missingDefaults: [] });
    expect(grantableCapabilities({ add: [], drop: ['ALL'] }, podman)).toEqual({ capabilities: [], missingDefaults: [] });
    expect(() => grantableCapabilities({ add: ['MKNOD'], drop: ['ALL'] }, podman)).toThrow(CapabilityError);
    expect(grantableCapabilities({ add: [], drop: ['NET_RAW', 'MKNOD'] }, podman).missingDefaults).toEqual(['AUDIT_WRITE']);
  });

  it('grants what the process holds for --cap-add ALL and --security=insecure, listing only missing defaults', () => {
    const all = grantableCapabilities({ add: ['ALL'], drop: [] }, podman);
    expect([...all.capabilities].sort()).toEqual([...podmanDefaults].sort());
    expect(all.missingDefaults).toEqual(['NET_RAW', 'MKNOD', 'AUDIT_WRITE']);
    expect(grantableCapabilities({ add: ['SYS_ADMIN'], drop: [], insecure: true }, podman)).toEqual({
      capabilities: resolveCapabilities({ add: [], drop: [] }).filter((cap) => podmanDefaults.includes(cap)),
      missingDefaults: [],
    });
  });
});

describe('chroot command line', () => {
  const step = {
    root: '/r',
    argv: ['/bin/sh', '-c', 'echo hi'],
    workdir: '/w',
    uid: 1000,
    gid: 100,
    groups: [100, 20],
    capabilities: ['CHOWN', 'SYS_PTRACE'],
    network: 'none' as const,
    hostname: 'kiln',
    hostFiles: [{ source: '/etc/hosts', target: '/r/etc/hosts' }],
    tools: { setpriv: '/usr/bin/setpriv', unshare: '/usr/bin/unshare' },
  };

  it('switches uid last, after the chroot, and bounds capabilities to the request', () => {
    const argv = chrootCommand(step);
    expect(argv.slice(0, 2)).toEqual(['/usr/bin/unshare', '--mount']);
    expect(argv).toContain('--net');
    expect(argv).toContain('--bounding-set=-all,+chown,+sys_ptrace');
    expect(argv).toContain('--groups=100,20');
    const enter = argv.lastIndexOf('/usr/bin/unshare');
    expect(argv.slice(enter)).toEqual(['/usr/bin/unshare', '--root=/r', '--wd=/w', '--setuid=1000', '--', '/bin/sh', '-c', 'echo hi']);
  });

  it('keeps the host network unless asked otherwise, and refuses relative workdirs', () => {
    expect(chrootCommand({ ...step, network: 'host' })).not.toContain('--net');
    expect(() => chrootCommand({ ...step, workdir: 'w' })).toThrow(/absolute/);
  });
});
