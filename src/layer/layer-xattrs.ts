/**
 * Which extended attributes of a step's files go into its layer, and reading them.
 *
 * Carried: `security.capability` (file capabilities: `setcap` in a RUN, Debian's postinst of
 * iputils-ping) and `user.*`. That is what BuildKit and buildah write between them: containerd's
 * archive writer, which BuildKit's differs use, stores security.capability alone; buildah's
 * (containers/storage) stores it and every user.* attribute but overlayfs' own user.overlay.*.
 * Left out, as both leave them out: security.selinux and other LSM labels (the build host's policy,
 * not the image's), security.ima/evm (signatures made for a host's keys), trusted.* (overlayfs'
 * bookkeeping, readable by root only), system.posix_acl_* (no builder writes them; an unpacker
 * would need ACL support on its filesystem).
 */
import type { CommandRunner } from '../rootfs/command-runner.js';
import { dumpXattrs, type Xattr } from '../snapshot/xattrs.js';

export function carriedInLayer(name: string): boolean {
  if (name === 'security.capability') return true;
  return name.startsWith('user.') && !name.startsWith('user.overlay.');
}

/** getfattr's --match for carriedInLayer: it narrows what getfattr prints; carriedInLayer has the last word. */
const carriedPattern = '^(security\\.capability$|user\\.)';

/** Reads the extended attributes a layer carries, for the host paths of its entries. */
export interface LayerXattrReader {
  /** Host path → its carried attributes; paths without any are absent. Never rejects. */
  read(hostPaths: readonly string[]): Promise<Map<string, Xattr[]>>;
}

/**
 * Reads them with getfattr (see snapshot/xattrs.ts). One instance per build: a missing getfattr is
 * told once, and the build goes on writing layers without extended attributes.
 */
export class GetfattrLayerXattrs implements LayerXattrReader {
  private missing = false;

  constructor(
    private readonly run: CommandRunner,
    private readonly warn: (message: string) => void,
  ) {}

  async read(hostPaths: readonly string[]): Promise<Map<string, Xattr[]>> {
    const carried = new Map<string, Xattr[]>();
    if (this.missing || hostPaths.length === 0) return carried;
    let dump;
    try {
      dump = await dumpXattrs(this.run, hostPaths, carriedPattern);
    } catch (error) {
      const notInstalled = (error as NodeJS.ErrnoException).code === 'ENOENT';
      if (notInstalled) this.missing = true;
      this.warn(
        `cannot run getfattr (${(error as Error).message}): ${notInstalled ? 'layers are' : 'this layer is'} written without extended attributes, ` +
          'so files lose their capabilities (install Debian\'s "attr" package)',
      );
      return carried;
    }
    if (dump.errors.length > 0) {
      this.warn(`getfattr could not read the extended attributes of ${dump.errors.length} path(s), written without them: ${dump.errors[0]}`);
    }
    for (const [file, xattrs] of dump.byPath) {
      const kept = xattrs.filter((xattr) => carriedInLayer(xattr.name));
      if (kept.length > 0) carried.set(file, kept);
    }
    return carried;
  }
}
