/** Finding the Dockerfile and the `.dockerignore` that goes with it. */
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { IgnoreMatcher } from './dockerignore.js';
import { ContextSourceError } from './types.js';

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return false;
    throw err;
  }
}

/**
 * Where `-f NAME` points. An absolute path is used as is. A relative one is looked up, like
 * kaniko, in the working directory and in the context root; for a local directory context the
 * working directory comes first (as with `docker build -f`), for a fetched context (tar, URL,
 * git) the context root comes first, since the user names a file of the archive or repository.
 */
export async function locateDockerfile(name: string, root: string, cwd: string, fetched: boolean): Promise<string> {
  if (isAbsolute(name)) {
    if (await isFile(name)) return name;
    throw new ContextSourceError(root, `Dockerfile ${name} does not exist`);
  }
  const inCwd = resolve(cwd, name);
  const inRoot = join(root, name);
  const candidates = fetched ? [inRoot, inCwd] : [inCwd, inRoot];
  for (const candidate of candidates) {
    if (await isFile(candidate)) return candidate;
  }
  throw new ContextSourceError(root, `Dockerfile ${JSON.stringify(name)} not found (looked for ${candidates.join(' and ')})`);
}

export async function readDockerfile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new ContextSourceError(path, `cannot read the Dockerfile: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/**
 * The ignore rules for a build: `<Dockerfile>.dockerignore` beside the Dockerfile wins over
 * `<root>/.dockerignore` (BuildKit's rule); neither means nothing is ignored.
 */
export async function loadIgnoreFile(root: string, dockerfilePath: string | null): Promise<{ matcher: IgnoreMatcher; file: string | null }> {
  const candidates = dockerfilePath === null ? [] : [`${dockerfilePath}.dockerignore`];
  candidates.push(join(root, '.dockerignore'));
  for (const file of candidates) {
    if (!(await isFile(file))) continue;
    const text = await readFile(file, 'utf8');
    return { matcher: IgnoreMatcher.fromText(text, file), file };
  }
  return { matcher: IgnoreMatcher.empty(), file: null };
}
