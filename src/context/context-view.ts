/**
 * The build context as BuildKit's RUN steps see it through `RUN --mount=type=bind` (no `from=`):
 * what `.dockerignore` keeps, and nothing else. BuildKit never receives an ignored file, so a step
 * cannot read one; kiln lays the kept entries out once per build in a directory of its own, files
 * hard-linked where the filesystem allows (copied where it does not), so a large context costs
 * links, not bytes.
 */
import { chmod, copyFile, link, mkdir, readlink, symlink } from 'node:fs/promises';
import path from 'node:path';
import type { IgnoreMatcher } from './dockerignore.js';
import { walkContext } from './walk.js';

/** `root` itself when nothing is ignored; else a directory under `scratch` holding what is kept. */
export async function contextView(root: string, ignore: IgnoreMatcher, scratch: string): Promise<string> {
  if (ignore.isEmpty) return root;
  const view = path.join(scratch, 'context-view');
  await mkdir(view, { recursive: true, mode: 0o755 });
  const directories: { target: string; mode: number }[] = [];
  for (const entry of await walkContext(root, ignore, { readLinks: false })) {
    const source = path.join(root, entry.path);
    const target = path.join(view, entry.path);
    switch (entry.type) {
      case 'directory':
        await mkdir(target, { recursive: true, mode: 0o755 });
        directories.push({ target, mode: (entry.mode ?? 0o755) & 0o7777 });
        break;
      case 'file':
        await mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
        await link(source, target).catch(async (error: NodeJS.ErrnoException) => {
          // Another filesystem (EXDEV), or one that refuses links to others' files (EPERM): a copy.
          if (error.code !== 'EXDEV' && error.code !== 'EPERM') throw error;
          await copyFile(source, target);
        });
        break;
      case 'symlink':
        await mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
        await symlink(await readlink(source), target);
        break;
      case 'other':
        // Sockets and fifos in a checkout: nothing a build could read.
        break;
    }
  }
  // Modes last: a directory without write permission for its owner still gets its entries first.
  for (const { target, mode } of directories.reverse()) await chmod(target, mode);
  return view;
}
