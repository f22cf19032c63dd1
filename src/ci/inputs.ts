/** Parsing CI input values shared by the GitHub Action and the Azure task: lists and booleans. */
import { CiInputError } from './cli-options.js';

/**
 * A list input: one item per line, and per comma unless `ignoreComma` (values such as build
 * arguments and labels may hold commas). Blank items are dropped; items are trimmed.
 */
export function parseList(text: string, options: { ignoreComma?: boolean } = {}): string[] {
  return text
    .split(/\r?\n/)
    .flatMap((line) => (options.ignoreComma ? [line] : line.split(',')))
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

const trueWords = ['true', 'True', 'TRUE'];
const falseWords = ['false', 'False', 'FALSE'];

/** YAML 1.2 core booleans, as `core.getBooleanInput` reads them; blank means the default. */
export function parseBooleanInput(name: string, text: string, fallback: boolean): boolean {
  const value = text.trim();
  if (value === '') return fallback;
  if (trueWords.includes(value)) return true;
  if (falseWords.includes(value)) return false;
  throw new CiInputError(`input "${name}": expected true or false, got "${value}"`);
}

/** `ID=VALUE` lines (docker/build-push-action's `secrets`): the value is the secret itself. */
export interface InlineSecret {
  id: string;
  value: string;
}

export function parseInlineSecrets(name: string, text: string): InlineSecret[] {
  return parseList(text, { ignoreComma: true }).map((line) => {
    const at = line.indexOf('=');
    if (at <= 0) throw new CiInputError(`input "${name}": expected ID=VALUE, got a line without "=" or without an id`);
    const id = line.slice(0, at).trim();
    if (!/^[A-Za-z0-9_.-]+$/.test(id)) throw new CiInputError(`input "${name}": secret id "${id}" may hold only letters, digits, "_", "." and "-"`);
    return { id, value: line.slice(at + 1) };
  });
}

/**
 * The environment minus the variables that carried the inputs and credentials: the build (and the
 * request file a privileged build reads) has no use for them once they are parsed.
 */
export function withoutVariables(env: NodeJS.ProcessEnv, prefixes: readonly string[]): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !prefixes.some((prefix) => name.startsWith(prefix))));
}
