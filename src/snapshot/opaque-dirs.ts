import type { CommandRunner } from '../rootfs/command-runner.js';
import { OverlayError } from './errors.js';
import { decodeOctalEscapes } from './mountinfo.js';

export const opaqueXattr = 'trusted.overlay.opaque';

/** Keeps each getfattr command line well under ARG_MAX however many directories a step created. */
const maxArgumentBytes = 96 * 1024;

/**
 * Which of the given directories carry overlayfs' `trusted.overlay.opaque=y` (the kernel sets it on a
 * directory created where a lower one was deleted: nothing below it comes from the lower layers).
 *
 * Read with getfattr (Debian's `attr` package) because Node has no xattr API, and a native addon would
 * need a compiler or per-ABI prebuilt binaries on every CI image, for Node 20 and 24 alike. One
 * getfattr process per ~96 KiB of paths is a few milliseconds, and only the upper directory's
 * directories (what the step changed) are ever asked about.
 */
export async function findOpaqueDirs(run: CommandRunner, absoluteDirs: readonly string[]): Promise<Set<string>> {
  const opaque = new Set<string>();
  let batch: string[] = [];
  let batchBytes = 0;
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const args = ['--absolute-names', '--no-dereference', '--dump', `--match=^${opaqueXattr.replaceAll('.', '\\.')}$`, '--', ...batch];
    let result;
    try {
      result = await run('getfattr', args);
    } catch (error) {
      throw new OverlayError(
        `cannot run getfattr to find opaque directories (install Debian's "attr" package): ${error instanceof Error ? error.message : String(error)}`,
        'getfattr',
      );
    }
    if (result.exitCode !== 0) throw new OverlayError('getfattr failed on the overlay upper directory', 'getfattr', result.stderr);
    for (const dir of parseOpaqueDump(result.stdout)) opaque.add(dir);
    batch = [];
    batchBytes = 0;
  };
  for (const dir of absoluteDirs) {
    const bytes = Buffer.byteLength(dir) + 1;
    if (batchBytes + bytes > maxArgumentBytes) await flush();
    batch.push(dir);
    batchBytes += bytes;
  }
  await flush();
  return opaque;
}

/** Parses `getfattr --dump` text: `# file: NAME` then `name="value"` lines; returns names whose opaque value is y. */
export function parseOpaqueDump(text: string): string[] {
  const found: string[] = [];
  let file: string | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      file = decodeOctalEscapes(line.slice('# file: '.length));
    } else if (file !== undefined && line === `${opaqueXattr}="y"`) {
      found.push(file);
    }
  }
  return found;
}
