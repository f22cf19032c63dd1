/**
 * `--chmod` for COPY/ADD: octal (`0755`) replaces the permission bits; symbolic (`u+x,g-w`, `a=rX`)
 * edits them per file like chmod(1). BuildKit applies the result to every file and directory it
 * copies (including a destination directory it creates from a source directory), never to symlinks,
 * and not to parent directories it creates on the way (those stay 0755).
 *
 * Hand-written: chmod(1)'s symbolic grammar is small and no npm library applies it to a mode
 * number without touching the file system. One deliberate difference from chmod(1): a clause
 * without `u`/`g`/`o`/`a` means `a` and is not filtered by a umask (a build has no umask).
 */
import type { FileModeSpec } from '../../dockerfile/instructions.js';
import { FileModeError } from './errors.js';

/** Bits each class owns: its rwx triplet plus its special bit (setuid, setgid, sticky). */
const classBits = { u: 0o4700, g: 0o2070, o: 0o1007 } as const;
const clause = /^([ugoa]*)((?:[-+=](?:[ugo]|[rwxXst]*))+)$/;
const action = /([-+=])([ugo]|[rwxXst]*)/g;

/** A compiled `--chmod`: gives the permission bits (07777) for a file with `mode` (full st_mode). */
export type ModeEditor = (mode: number, isDirectory: boolean) => number;

export function compileFileMode(spec: FileModeSpec): ModeEditor {
  if (spec.kind === 'octal') {
    const bits = spec.mode & 0o7777;
    return () => bits;
  }
  const clauses = spec.expression.split(',').map((text) => {
    const m = clause.exec(text);
    if (m === null) throw new FileModeError(spec.expression, `${JSON.stringify(text)} is not a chmod clause ([ugoa]*[-+=][rwxXst]*)`);
    const who = m[1] === '' || (m[1] as string).includes('a') ? 'ugo' : (m[1] as string);
    const ops = [...(m[2] as string).matchAll(action)].map((a) => ({ op: a[1] as '+' | '-' | '=', perms: a[2] as string }));
    return { who, ops };
  });
  return (mode, isDirectory) => {
    let bits = mode & 0o7777;
    for (const { who, ops } of clauses) {
      let whoMask = 0;
      for (const c of who) whoMask |= classBits[c as keyof typeof classBits];
      for (const { op, perms } of ops) {
        const value = permissionValue(perms, bits, isDirectory) & whoMask;
        if (op === '+') bits |= value;
        else if (op === '-') bits &= ~value;
        else bits = (bits & ~whoMask) | value;
      }
    }
    return bits;
  };
}

/** The bits `perms` stands for, for all classes (the caller masks them to the clause's classes). */
function permissionValue(perms: string, current: number, isDirectory: boolean): number {
  if (perms === 'u' || perms === 'g' || perms === 'o') {
    const shift = perms === 'u' ? 6 : perms === 'g' ? 3 : 0;
    const triplet = (current >> shift) & 0o7;
    return (triplet << 6) | (triplet << 3) | triplet;
  }
  let value = 0;
  for (const p of perms) {
    if (p === 'r') value |= 0o444;
    else if (p === 'w') value |= 0o222;
    else if (p === 'x') value |= 0o111;
    // X: execute only for directories and files some class may already execute.
    else if (p === 'X' && (isDirectory || (current & 0o111) !== 0)) value |= 0o111;
    else if (p === 's') value |= 0o6000;
    else if (p === 't') value |= 0o1000;
  }
  return value;
}
