import type { CommandRunner } from '../rootfs/command-runner.js';
import { decodeOctalEscapes } from './mountinfo.js';

/** One extended attribute of a file: its full name (`security.capability`) and its raw bytes. */
export interface Xattr {
  name: string;
  value: Buffer;
}

/** What getfattr read: the attributes of every path that has any, and what it could not read. */
export interface XattrDump {
  /** Path as it was asked for → its attributes that matched, in getfattr's order. Paths without any are absent. */
  byPath: Map<string, Xattr[]>;
  /** getfattr's complaints (a path vanished, a filesystem without xattrs); empty when every path was read. */
  errors: string[];
}

/** Keeps each getfattr command line well under ARG_MAX (and one string's 128 KiB) however many paths there are. */
const maxArgumentBytes = 96 * 1024;
/** getfattr processes at once: enough to hide their start-up, few enough not to crowd a CI runner. */
const concurrentProcesses = 4;

/**
 * The attributes whose names match `match` (a POSIX extended regex, getfattr's `--match`) of each
 * path, symlinks not followed. Node has no xattr API, so this runs getfattr (Debian's `attr`
 * package): a native addon would need a compiler or per-ABI prebuilt binaries on every CI image.
 * The paths are split into command lines of ~96 KiB, a few processes at once; a path costs a
 * listxattr(2) and, when it has matching attributes, a getxattr(2) each.
 * Rejects when getfattr cannot be started at all (not installed), like the runner.
 */
export async function dumpXattrs(run: CommandRunner, paths: readonly string[], match: string): Promise<XattrDump> {
  const batches: string[][] = [];
  let batch: string[] = [];
  let batchBytes = 0;
  for (const file of paths) {
    const bytes = Buffer.byteLength(file) + 1;
    if (batch.length > 0 && batchBytes + bytes > maxArgumentBytes) {
      batches.push(batch);
      batch = [];
      batchBytes = 0;
    }
    batch.push(file);
    batchBytes += bytes;
  }
  if (batch.length > 0) batches.push(batch);

  const dump: XattrDump = { byPath: new Map(), errors: [] };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < batches.length) {
      const files = batches[next++] as string[];
      // --absolute-names: each `# file:` line is the path exactly as given, so it maps back.
      const args = ['--absolute-names', '--no-dereference', '--dump', '--encoding=hex', `--match=${match}`, '--', ...files];
      const result = await run('getfattr', args);
      for (const [file, xattrs] of parseXattrDump(result.stdout)) dump.byPath.set(file, xattrs);
      if (result.exitCode === 0) continue;
      const complaints = result.stderr.split('\n').filter((line) => line.trim() !== '');
      dump.errors.push(...(complaints.length > 0 ? complaints : [`getfattr exited with code ${result.exitCode}`]));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrentProcesses, batches.length) }, worker));
  return dump;
}

/**
 * Parses `getfattr --dump --encoding=hex`: a `# file: PATH` line, then `NAME=0xHEX` lines, then a
 * blank line, for each path that has attributes. getfattr escapes backslash, newline and other
 * unprintable bytes of paths and names as `\ooo` (and `=` in names), so splitting at the first `=`
 * and at line ends is unambiguous.
 */
export function parseXattrDump(text: string): Map<string, Xattr[]> {
  const result = new Map<string, Xattr[]>();
  let current: Xattr[] | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      current = [];
      result.set(decodeOctalEscapes(line.slice('# file: '.length)), current);
      continue;
    }
    if (current === undefined || line === '') continue;
    const equals = line.indexOf('=');
    // An empty value may be printed without `=` at all (attr before 2.4.48).
    const name = decodeOctalEscapes(equals === -1 ? line : line.slice(0, equals));
    const encoded = equals === -1 ? '' : line.slice(equals + 1);
    if (encoded !== '' && !/^0x([0-9a-fA-F]{2})*$/.test(encoded)) throw new Error(`getfattr printed a value that is not hex for ${name}: ${encoded.slice(0, 40)}`);
    current.push({ name, value: Buffer.from(encoded.slice(2), 'hex') });
  }
  return result;
}

/** `security.capability` of each path that has one, as hex: what file capabilities a snapshot compares. */
export async function fileCapabilities(run: CommandRunner, paths: readonly string[]): Promise<Map<string, string>> {
  const dump = await dumpXattrs(run, paths, '^security\\.capability$');
  const capabilities = new Map<string, string>();
  for (const [file, xattrs] of dump.byPath) {
    const capability = xattrs.find((xattr) => xattr.name === 'security.capability');
    if (capability !== undefined) capabilities.set(file, capability.value.toString('hex'));
  }
  return capabilities;
}
