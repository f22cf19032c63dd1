/**
 * Files a privileged build writes for the job (the tarball, the OCI layout, the digest files) are
 * root's, so the job's user could neither change nor remove them: a self-hosted runner's next
 * checkout then fails to clean the workspace. They are handed to that user when the build ends.
 */
import { lchown, lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { BuildOptions } from '../build/options.js';

export interface FileOwner {
  uid: number;
  gid: number;
}

type OutputOptions = Pick<BuildOptions, 'tarPath' | 'ociLayoutPath' | 'digestFile' | 'imageNameWithDigestFile' | 'imageNameTagWithDigestFile'>;

/** Every path the build was asked to write outside its own work directory. */
function buildOutputPaths(options: OutputOptions): string[] {
  return [options.tarPath, options.ociLayoutPath, options.digestFile, options.imageNameWithDigestFile, options.imageNameTagWithDigestFile].filter(
    (output): output is string => output !== undefined,
  );
}

/** Gives a file, or a directory and all below it, to `owner`; links themselves, never their targets. */
async function chownTree(path: string, owner: FileOwner): Promise<void> {
  let isDirectory: boolean;
  try {
    isDirectory = (await lstat(path)).isDirectory();
  } catch (error) {
    // A build that failed before writing an output leaves nothing to hand over.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  await lchown(path, owner.uid, owner.gid);
  if (isDirectory) for (const name of await readdir(path)) await chownTree(join(path, name), owner);
}

export async function giveOutputsTo(options: OutputOptions, owner: FileOwner): Promise<void> {
  for (const output of buildOutputPaths(options)) await chownTree(output, owner);
}
