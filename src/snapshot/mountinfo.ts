/**
 * /proc/self/mountinfo parsing (proc(5)). Hand-written: no maintained npm package parses mountinfo
 * with the kernel's octal escapes, and the format is a handful of space-separated fields.
 */

export interface MountInfoEntry {
  mountId: number;
  parentId: number;
  /** The directory of the mounted filesystem that is mounted here. */
  root: string;
  /** Where it is mounted, in this process's view. */
  mountPoint: string;
  fsType: string;
  source: string;
}

/**
 * The kernel escapes space, tab, newline and backslash in paths as `\ooo` (octal byte values); getfattr
 * escapes file names the same way. Decoded at the byte level so escaped UTF-8 bytes rejoin correctly.
 */
export function decodeOctalEscapes(text: string): string {
  if (!text.includes('\\')) return text;
  const input = Buffer.from(text, 'utf8');
  const out = Buffer.alloc(input.length);
  let n = 0;
  for (let i = 0; i < input.length; i++) {
    const b = input[i]!;
    if (b === 0x5c && isOctal(input[i + 1]) && isOctal(input[i + 2]) && isOctal(input[i + 3])) {
      out[n++] = ((input[i + 1]! - 0x30) << 6) | ((input[i + 2]! - 0x30) << 3) | (input[i + 3]! - 0x30);
      i += 3;
    } else {
      out[n++] = b;
    }
  }
  return out.subarray(0, n).toString('utf8');
}

function isOctal(b: number | undefined): boolean {
  return b !== undefined && b >= 0x30 && b <= 0x37;
}

/** Parses mountinfo text; lines that do not have the documented shape are skipped, not guessed at. */
export function parseMountInfo(text: string): MountInfoEntry[] {
  const entries: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.split(' ');
    // Optional fields (shared:N, master:N...) end at a lone "-"; the filesystem type and source follow it.
    const separator = fields.indexOf('-', 6);
    if (fields.length < 7 || separator < 0 || separator + 1 >= fields.length) continue;
    const [mountId, parentId, , root, mountPoint] = fields;
    if (mountId === undefined || parentId === undefined || root === undefined || mountPoint === undefined) continue;
    entries.push({
      mountId: Number(mountId),
      parentId: Number(parentId),
      root: decodeOctalEscapes(root),
      mountPoint: decodeOctalEscapes(mountPoint),
      fsType: decodeOctalEscapes(fields[separator + 1] ?? ''),
      source: decodeOctalEscapes(fields[separator + 2] ?? ''),
    });
  }
  return entries;
}
