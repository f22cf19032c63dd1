/** The exec (JSON array) form of instruction arguments. */

export class NotStringArrayError extends Error {
  constructor() {
    super('when using JSON array syntax, arrays must be comprised of strings only');
    this.name = 'NotStringArrayError';
  }
}

/**
 * Parses `rest` as a JSON array of strings. Returns undefined when it is not a JSON array at all
 * (the caller falls back to the shell form); throws NotStringArrayError for a valid array that
 * holds anything but strings, which BuildKit treats as an error rather than a fallback.
 */
export function parseJsonArray(rest: string): string[] | undefined {
  const trimmed = rest.replace(/^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u, '');
  if (!trimmed.startsWith('[')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch (err) {
    if (err instanceof SyntaxError) return undefined; // not JSON: shell form, as BuildKit does
    throw err;
  }
  if (!Array.isArray(parsed)) return undefined;
  const values: string[] = [];
  for (const item of parsed as unknown[]) {
    if (typeof item !== 'string') throw new NotStringArrayError();
    values.push(item);
  }
  return values;
}
