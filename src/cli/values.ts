import { parseGoDuration } from '../dockerfile/instruction-values.js';

/** Value parsers for kaniko-style flags: pflag accepts `--flag`, `--flag=true` and `--flag=false` for booleans. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function parseBoolean(flag: string): (value: string | undefined) => boolean {
  return (value) => {
    if (value === undefined) return true;
    const normalised = value.trim().toLowerCase();
    if (['true', '1', 't', 'yes'].includes(normalised)) return true;
    if (['false', '0', 'f', 'no'].includes(normalised)) return false;
    throw new UsageError(`--${flag}: expected true or false, got "${value}"`);
  };
}

/** Repeatable flags accumulate; commander hands back the previous array. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Splits `K=V` at the first `=`; `allowBare` keeps `K` alone (value undefined). */
export function splitKeyValue(flag: string, entry: string, allowBare = false): [string, string | undefined] {
  const at = entry.indexOf('=');
  if (at < 0) {
    if (allowBare && entry.length > 0) return [entry, undefined];
    throw new UsageError(`--${flag}: expected KEY=VALUE, got "${entry}"`);
  }
  const key = entry.slice(0, at);
  if (key.length === 0) throw new UsageError(`--${flag}: empty key in "${entry}"`);
  return [key, entry.slice(at + 1)];
}

export function keyValueRecord(flag: string, entries: readonly string[]): Record<string, string> {
  const record: Record<string, string> = {};
  for (const entry of entries) {
    const [key, value] = splitKeyValue(flag, entry);
    record[key] = value ?? '';
  }
  return record;
}

export function oneOf<T extends string>(flag: string, allowed: readonly T[]): (value: string) => T {
  return (value) => {
    if ((allowed as readonly string[]).includes(value)) return value as T;
    throw new UsageError(`--${flag}: expected one of ${allowed.join(', ')}, got "${value}"`);
  };
}

export function nonNegativeInteger(flag: string): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value)) throw new UsageError(`--${flag}: expected a whole number, got "${value}"`);
    return Number(value);
  };
}

/** Go durations as kaniko's --cache-ttl takes them (`336h`, `1h30m`), in seconds. */
export function parseDurationSeconds(flag: string): (value: string) => number {
  return (value) => {
    try {
      return parseGoDuration(value) / 1e9;
    } catch (error) {
      throw new UsageError(`--${flag}: ${error instanceof Error ? error.message : String(error)} (expected a duration such as 336h or 1h30m)`);
    }
  };
}
