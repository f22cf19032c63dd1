import { readFile } from 'node:fs/promises';
import { resolveInRoot } from './resolve-in-root.js';

/** Who a `USER` (or `--chown`) spec runs as, resolved against the image's own /etc/passwd and /etc/group. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Supplementary groups from /etc/group membership, only when the spec names no group (runc's rule). */
  groups: number[];
  home: string;
}

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export class UnknownUserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnknownUserError';
  }
}

const numeric = /^\d+$/;

export function parsePasswd(text: string): PasswdEntry[] {
  return text.split('\n').flatMap((line) => {
    const fields = line.trim().split(':');
    if (line.trim().startsWith('#') || fields.length < 7) return [];
    const [name = '', , uid = '', gid = '', , home = ''] = fields;
    if (!numeric.test(uid) || !numeric.test(gid)) return [];
    return [{ name, uid: Number(uid), gid: Number(gid), home }];
  });
}

export function parseGroup(text: string): GroupEntry[] {
  return text.split('\n').flatMap((line) => {
    const fields = line.trim().split(':');
    if (line.trim().startsWith('#') || fields.length < 4) return [];
    const [name = '', , gid = '', members = ''] = fields;
    if (!numeric.test(gid)) return [];
    return [{ name, gid: Number(gid), members: members.split(',').filter(Boolean) }];
  });
}

/**
 * The runtime's (runc's) lookup that BuildKit relies on: a name must exist in passwd; a number need
 * not, and then runs with gid 0 and home "/"; an explicit group replaces the primary group and
 * disables supplementary groups; without one, every group listing the user by name is added.
 */
export function resolveUserSpec(spec: string, passwd: readonly PasswdEntry[], group: readonly GroupEntry[]): ResolvedUser {
  const [userPart = '', groupPart] = splitOnce(spec.trim(), ':');
  if (userPart === '') throw new UnknownUserError(`invalid user "${spec}": empty user name`);
  const byName = passwd.find((entry) => entry.name === userPart);
  const entry = byName ?? (numeric.test(userPart) ? passwd.find((candidate) => candidate.uid === Number(userPart)) : undefined);
  if (!entry && !numeric.test(userPart)) {
    throw new UnknownUserError(`unable to find user ${userPart}: no matching entries in passwd file`);
  }
  const uid = entry?.uid ?? Number(userPart);
  const home = entry?.home || '/';
  if (groupPart !== undefined && groupPart !== '') {
    return { uid, gid: resolveGroup(groupPart, group), groups: [], home };
  }
  const memberships = entry ? group.filter((candidate) => candidate.members.includes(entry.name)).map((candidate) => candidate.gid) : [];
  return { uid, gid: entry?.gid ?? 0, groups: [...new Set(memberships)], home };
}

function resolveGroup(name: string, group: readonly GroupEntry[]): number {
  const byName = group.find((entry) => entry.name === name);
  if (byName) return byName.gid;
  if (numeric.test(name)) return Number(name);
  throw new UnknownUserError(`unable to find group ${name}: no matching entries in group file`);
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

/** Reads the root's passwd and group files (through its own symlinks, never outside it); missing files are empty. */
export async function readUserDatabase(root: string): Promise<{ passwd: PasswdEntry[]; group: GroupEntry[] }> {
  const read = async (path: string): Promise<string> => {
    try {
      return await readFile(await resolveInRoot(root, path), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return '';
      throw error;
    }
  };
  return { passwd: parsePasswd(await read('/etc/passwd')), group: parseGroup(await read('/etc/group')) };
}

export async function resolveUser(root: string, spec: string): Promise<ResolvedUser> {
  const { passwd, group } = await readUserDatabase(root);
  return resolveUserSpec(spec, passwd, group);
}
