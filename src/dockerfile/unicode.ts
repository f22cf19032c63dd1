/**
 * Go's unicode.IsSpace, which BuildKit's parser and lexer split on. JavaScript's `\s` differs:
 * it includes U+FEFF and leaves out U+0085.
 */
export function isGoSpace(ch: string): boolean {
  const cp = ch.codePointAt(0);
  if (cp === undefined) return false;
  if (cp <= 0xff) {
    return cp === 0x20 || (cp >= 0x09 && cp <= 0x0d) || cp === 0x85 || cp === 0xa0;
  }
  return (
    cp === 0x1680 ||
    (cp >= 0x2000 && cp <= 0x200a) ||
    cp === 0x2028 ||
    cp === 0x2029 ||
    cp === 0x202f ||
    cp === 0x205f ||
    cp === 0x3000
  );
}

/** strings.TrimLeftFunc(s, unicode.IsSpace). */
export function trimGoSpaceStart(s: string): string {
  let i = 0;
  for (const ch of s) {
    if (!isGoSpace(ch)) break;
    i += ch.length;
  }
  return s.slice(i);
}

/** strings.TrimSpace. */
export function trimGoSpace(s: string): string {
  const start = trimGoSpaceStart(s);
  let end = start.length;
  while (end > 0) {
    // step back over one code point (a surrogate pair is two code units)
    const low = start.charCodeAt(end - 1);
    const width = low >= 0xdc00 && low <= 0xdfff && end >= 2 ? 2 : 1;
    if (!isGoSpace(start.slice(end - width, end))) break;
    end -= width;
  }
  return start.slice(0, end);
}
