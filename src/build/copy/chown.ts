/**
 * `--chown` as BuildKit's file operations resolve it, in the DESTINATION root's /etc/passwd and
 * /etc/group: a number is a uid whose gid is the same number (`--chown=1001` gives 1001:1001,
 * whatever passwd says); a name takes its uid and primary gid from passwd; `:group` (a name looked
 * up in /etc/group, or a number) replaces the gid. Unknown names are errors. Not runc's USER rule
 * (users.ts `resolveUserSpec`), which gives a bare number gid 0.
 */
import { readUserDatabase } from '../../rootfs/users.js';
import type { Owner } from './copy-tree.js';
import { CopyError, type InstructionSite } from './errors.js';

const numeric = /^\d+$/;

export async function resolveChown(site: InstructionSite, spec: string, destRoot: string): Promise<Owner> {
  const colon = spec.indexOf(':');
  const userPart = colon < 0 ? spec : spec.slice(0, colon);
  const groupPart = colon < 0 ? '' : spec.slice(colon + 1);
  if (userPart === '') throw new CopyError(site, `invalid --chown ${JSON.stringify(spec)}: empty user`);
  const needsDatabase = !numeric.test(userPart) || (groupPart !== '' && !numeric.test(groupPart));
  const database = needsDatabase ? await readUserDatabase(destRoot) : { passwd: [], group: [] };
  let owner: Owner;
  if (numeric.test(userPart)) {
    owner = { uid: Number(userPart), gid: Number(userPart) };
  } else {
    const entry = database.passwd.find((candidate) => candidate.name === userPart);
    if (entry === undefined) throw new CopyError(site, `unable to find user ${userPart}: no matching entries in passwd file`);
    owner = { uid: entry.uid, gid: entry.gid };
  }
  if (groupPart !== '') {
    if (numeric.test(groupPart)) owner.gid = Number(groupPart);
    else {
      const group = database.group.find((candidate) => candidate.name === groupPart);
      if (group === undefined) throw new CopyError(site, `unable to find group ${groupPart}: no matching entries in group file`);
      owner.gid = group.gid;
    }
  }
  return owner;
}
