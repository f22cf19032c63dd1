/** Fixtures for the COPY/ADD tests: instructions from real Dockerfile text, trees compared whole. */
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, utimes, writeFile, chmod, chown } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AddInstruction, CopyInstruction } from '../../../src/dockerfile/instructions.js';
import { parseInstruction } from '../../../src/dockerfile/instructions.js';
import { parseDockerfile } from '../../../src/dockerfile/parser.js';

export async function tempDir(prefix = 'kiln-copy-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** The COPY/ADD on the last line of `FROM scratch\n<text>` (heredoc bodies may follow it). */
export function instruction(text: string): CopyInstruction | AddInstruction {
  const all = parseDockerfile(`FROM scratch\n${text}\n`).instructions.map((n) => parseInstruction(n));
  const found = all[1];
  if (found?.kind !== 'copy' && found?.kind !== 'add') throw new Error(`not COPY/ADD: ${text}`);
  return found;
}

export interface FileSpec {
  content?: string;
  dir?: boolean;
  link?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch. */
  mtime?: number;
}

/** Makes files under `root`; parents first (keys in insertion order). */
export async function makeTree(root: string, spec: Record<string, FileSpec | string>): Promise<void> {
  for (const [rel, raw] of Object.entries(spec)) {
    const s: FileSpec = typeof raw === 'string' ? { content: raw } : raw;
    const host = path.join(root, rel);
    await mkdir(path.dirname(host), { recursive: true });
    if (s.dir === true) await mkdir(host, { recursive: true });
    else if (s.link !== undefined) await symlink(s.link, host);
    else await writeFile(host, s.content ?? '');
    if (s.link === undefined) await chmod(host, s.mode ?? (s.dir === true ? 0o755 : 0o644));
    if (s.uid !== undefined || s.gid !== undefined) await chown(host, s.uid ?? 0, s.gid ?? 0);
    if (s.mtime !== undefined && s.link === undefined) await utimes(host, s.mtime, s.mtime);
  }
}

export interface Described {
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: string;
  owner: string;
  content?: string;
  target?: string;
}

/** Every path under `root` with type, permission bits (octal), uid:gid and content or link target. */
export async function describeTree(root: string): Promise<Record<string, Described>> {
  const out: Record<string, Described> = {};
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(path.join(root, rel))).sort()) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const host = path.join(root, childRel);
      const st = await lstat(host);
      const d: Described = {
        type: st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other',
        mode: (st.mode & 0o7777).toString(8).padStart(4, '0'),
        owner: `${st.uid}:${st.gid}`,
      };
      if (st.isFile()) d.content = await readFile(host, 'utf8');
      if (st.isSymbolicLink()) d.target = await readlink(host);
      out[childRel] = d;
      if (st.isDirectory()) await walk(childRel);
    }
  };
  await walk('');
  return out;
}
