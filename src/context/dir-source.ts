/** A local directory context: used in place, never copied. */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ContextSourceError } from './types.js';

/** The absolute root of a local directory context; it must exist and be a directory. */
export async function resolveDirContext(path: string, cwd: string): Promise<string> {
  const root = resolve(cwd, path);
  let isDir: boolean;
  try {
    isDir = (await stat(root)).isDirectory();
  } catch (err) {
    throw new ContextSourceError(root, 'the directory does not exist', { cause: err });
  }
  if (!isDir) throw new ContextSourceError(root, 'not a directory (use tar://PATH for an archive)');
  return root;
}
