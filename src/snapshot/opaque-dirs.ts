import type { CommandRunner } from '../rootfs/command-runner.js';
import { OverlayError } from './errors.js';
import { dumpXattrs } from './xattrs.js';

export const opaqueXattr = 'trusted.overlay.opaque';

/**
 * Which of the given directories carry overlayfs' `trusted.overlay.opaque=y` (the kernel sets it on a
 * directory created where a lower one was deleted: nothing below it comes from the lower layers).
 * Only the upper directory's directories (what the step changed) are ever asked about.
 */
export async function findOpaqueDirs(run: CommandRunner, absoluteDirs: readonly string[]): Promise<Set<string>> {
  let dump;
  try {
    dump = await dumpXattrs(run, absoluteDirs, `^${opaqueXattr.replaceAll('.', '\\.')}$`);
  } catch (error) {
    throw new OverlayError(
      `cannot run getfattr to find opaque directories (install Debian's "attr" package): ${error instanceof Error ? error.message : String(error)}`,
      'getfattr',
    );
  }
  if (dump.errors.length > 0) throw new OverlayError('getfattr failed on the overlay upper directory', 'getfattr', dump.errors.join('\n'));
  const opaque = new Set<string>();
  for (const [dir, xattrs] of dump.byPath) {
    if (xattrs.some((xattr) => xattr.name === opaqueXattr && xattr.value.toString('latin1') === 'y')) opaque.add(dir);
  }
  return opaque;
}
