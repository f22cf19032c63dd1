import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { ChangeSet } from '../../../src/snapshot/change.js';

/** A whole-second mtime every fixture entry gets, so "same mtime second" can be restored exactly. */
export const fixtureMtime = 1_700_000_000;

/** Sets every entry's atime/mtime to fixtureMtime, children before parents (symlinks themselves too). */
export function settleTimes(root: string): void {
  const visit = (p: string): void => {
    const stats = fs.lstatSync(p);
    if (stats.isDirectory()) for (const name of fs.readdirSync(p)) visit(`${p}/${name}`);
    fs.lutimesSync(p, fixtureMtime, fixtureMtime);
  };
  visit(root);
}

export function copyTree(from: string, to: string): void {
  execFileSync('cp', ['-a', '--', from, to]);
}

/**
 * Applies a ChangeSet to a copy of the old tree the way a strict unpacker would: a non-directory never
 * silently replaces a directory (or the reverse) unless a delete came first, so a missing delete fails.
 */
export function applyChangeSet(target: string, changeSet: ChangeSet): void {
  const dirs: string[] = [];
  for (const change of changeSet.changes) {
    const dst = `${target}/${change.path}`;
    const existing = fs.lstatSync(dst, { throwIfNoEntry: false });
    if (change.kind === 'delete') {
      fs.rmSync(dst, { recursive: true, force: true });
      continue;
    }
    if (change.kind === 'opaque') {
      for (const name of fs.readdirSync(dst)) fs.rmSync(`${dst}/${name}`, { recursive: true, force: true });
      continue;
    }
    const src = `${changeSet.root}/${change.path}`;
    const stats = fs.lstatSync(src);
    if (stats.isDirectory()) {
      if (existing !== undefined && !existing.isDirectory()) throw new Error(`upsert dir ${change.path} over a non-directory`);
      if (existing === undefined) fs.mkdirSync(dst);
      dirs.push(change.path);
    } else {
      if (existing?.isDirectory()) throw new Error(`upsert ${change.path} over a directory without a delete`);
      if (existing !== undefined) fs.unlinkSync(dst);
      execFileSync('cp', ['-a', '--', src, dst]);
    }
  }
  for (const rel of dirs.reverse()) {
    const stats = fs.lstatSync(`${changeSet.root}/${rel}`);
    fs.lchownSync(`${target}/${rel}`, stats.uid, stats.gid);
    fs.chmodSync(`${target}/${rel}`, stats.mode & 0o7777);
  }
}

/** What must match between the new tree and the old tree with the layer applied. */
export function describeTree(root: string, skip: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  const visit = (rel: string): void => {
    const abs = rel === '' ? root : `${root}/${rel}`;
    for (const name of fs.readdirSync(abs).sort()) {
      const child = rel === '' ? name : `${rel}/${name}`;
      if (skip.some((s) => child === s || child.startsWith(`${s}/`))) continue;
      const st = fs.lstatSync(`${root}/${child}`);
      const meta = `mode=${(st.mode & 0o7777).toString(8)} uid=${st.uid} gid=${st.gid}`;
      if (st.isDirectory()) {
        out[child] = `dir ${meta}`;
        visit(child);
      } else if (st.isSymbolicLink()) {
        out[child] = `symlink ${fs.readlinkSync(`${root}/${child}`)} mtime=${st.mtimeMs}`;
      } else if (st.isFile()) {
        const hash = createHash('sha256').update(fs.readFileSync(`${root}/${child}`)).digest('hex');
        out[child] = `file ${meta} size=${st.size} sha256=${hash} mtime=${st.mtimeMs}`;
      } else {
        out[child] = `special ${st.mode.toString(8)} rdev=${st.rdev} ${meta}`;
      }
    }
  };
  visit('');
  return out;
}
