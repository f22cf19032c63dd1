/**
 * `COPY --from` a stage or an image keeps the extended attributes layers carry (file capabilities,
 * user.*), as BuildKit's copy does; a COPY from the context keeps none, as the context BuildKit
 * receives holds none. Node has no xattr API and its copyFile drops them: the sources' attributes
 * are read in one batched getfattr call once the files are written, and set with setfattr, after
 * chown (which clears security.capability).
 */
import type { LayerXattrReader } from '../../layer/layer-xattrs.js';
import { setXattr, type CommandRunner } from '../../rootfs/command-runner.js';
import type { Limiter } from './copy-tree.js';

/** A regular file or directory written from a source (host paths of both). */
export interface XattrCopy {
  source: string;
  target: string;
}

export interface CarriedXattrsOptions {
  /** Reads the attributes layers carry; it tells (once per build) when getfattr is missing. */
  reader: LayerXattrReader;
  /** Runs setfattr. */
  run: CommandRunner;
  limiter: Limiter;
  warn: (message: string) => void;
}

/** Sets on each target the carried attributes of its source. Never rejects: what cannot be set is warned about. */
export async function copyCarriedXattrs(copies: readonly XattrCopy[], options: CarriedXattrsOptions): Promise<void> {
  if (copies.length === 0) return;
  const carried = await options.reader.read([...new Set(copies.map((copy) => copy.source))]);
  const failures: string[] = [];
  const set = async (target: string, name: string, value: Buffer): Promise<void> => {
    try {
      const result = await setXattr(options.run, target, name, value);
      if (result.exitCode !== 0) failures.push(`${name} of ${target}: ${result.stderr.trim() || `setfattr exited with code ${result.exitCode}`}`);
    } catch (error) {
      failures.push(`${name} of ${target}: cannot run setfattr (${(error as Error).message})`);
    }
  };
  await Promise.all(
    copies.flatMap(({ source, target }) => (carried.get(source) ?? []).map((xattr) => options.limiter.run(() => set(target, xattr.name, xattr.value)))),
  );
  if (failures.length > 0) options.warn(`could not keep ${failures.length} extended attribute(s) of copied files, copied without them: ${failures[0]}`);
}
