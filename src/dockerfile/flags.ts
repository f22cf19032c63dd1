/**
 * Instruction flags (`COPY --from=x --link`), with BuildKit's rules and wording: a flag is `--name=value` or, for
 * booleans, `--name`; names are case-sensitive; only list flags (`--mount`, `--exclude`) may repeat;
 * a bare `--` ends the flags. Hand-written: no npm argument parser has these exact rules (a value must
 * follow `=` in the same word, booleans accept only true/false in any case).
 */

export type FlagKind = 'bool' | 'string' | 'strings';

export type FlagSpec = Readonly<Record<string, FlagKind>>;

type FlagValue<K extends FlagKind> = K extends 'bool' ? boolean : K extends 'string' ? string | undefined : string[];

export type FlagValues<S extends FlagSpec> = { [N in keyof S]: FlagValue<S[N]> };

/** A flag problem without a location; instructions.ts adds file and line. */
export class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlagError';
  }
}

export function parseFlags<S extends FlagSpec>(words: readonly string[], spec: S): FlagValues<S> {
  const values: Record<string, boolean | string | string[] | undefined> = {};
  for (const [name, kind] of Object.entries(spec)) {
    values[name] = kind === 'bool' ? false : kind === 'string' ? undefined : [];
  }
  const used = new Set<string>();
  for (const word of words) {
    if (!word.startsWith('--')) throw new FlagError(`arg should start with -- : ${word}`);
    if (word === '--') break;
    const body = word.slice(2);
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const value = eq >= 0 ? body.slice(eq + 1) : undefined;
    const kind = Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (kind === undefined) {
      const known = Object.keys(spec);
      const hint = known.length === 0 ? ' (this instruction takes no flags)' : ` (expected one of: ${known.map((k) => `--${k}`).join(', ')})`;
      throw new FlagError(`unknown flag: --${name}${hint}`);
    }
    if (used.has(name) && kind !== 'strings') throw new FlagError(`duplicate flag specified: --${name}`);
    used.add(name);
    switch (kind) {
      case 'bool': {
        if (value === '') throw new FlagError(`missing a value on flag: --${name}`);
        const lower = value?.toLowerCase();
        if (lower === undefined || lower === 'true') values[name] = true;
        else if (lower === 'false') values[name] = false;
        else throw new FlagError(`expecting boolean value for flag --${name}, not: ${value ?? ''}`);
        break;
      }
      case 'string':
        if (value === undefined) throw new FlagError(`missing a value on flag: --${name}`);
        values[name] = value;
        break;
      case 'strings': {
        if (value === undefined) throw new FlagError(`missing a value on flag: --${name}`);
        const list = values[name];
        if (Array.isArray(list)) list.push(value);
        break;
      }
    }
  }
  return values as FlagValues<S>;
}
