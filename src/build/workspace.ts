import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** The directories one build works in, all below one temporary directory that cleanup() removes. */
export interface Workspace {
  dir: string;
  /** Written layer blobs, named by digest. */
  blobs: string;
  /** A stage's root filesystem. */
  stageRoot(index: number): string;
  /** A `COPY --from=<image>` image's root filesystem. */
  imageRoot(n: number): string;
  /** Scratch space for snapshots, downloads and heredoc scripts. */
  scratch: string;
  cleanup(): Promise<void>;
}

export async function createWorkspace(kilnDir: string): Promise<Workspace> {
  await mkdir(kilnDir, { recursive: true, mode: 0o700 });
  const dir = await mkdtemp(join(kilnDir, 'build-'));
  const blobs = join(dir, 'blobs');
  const scratch = join(dir, 'scratch');
  await Promise.all([mkdir(blobs), mkdir(scratch), mkdir(join(dir, 'stages')), mkdir(join(dir, 'images'))]);
  return {
    dir,
    blobs,
    scratch,
    stageRoot: (index) => join(dir, 'stages', String(index)),
    imageRoot: (n) => join(dir, 'images', String(n)),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
