/**
 * CI inputs become CLI arguments, and CLI arguments become BuildOptions through the very parser the
 * `kiln` command uses: one set of flag semantics (kaniko's) for every entry point.
 */
import { Command, CommanderError } from 'commander';
import { parse as parseShellWords } from 'shell-quote';
import type { BuildOptions } from '../build/options.js';
import { booleanFlagNames, normalisePflagArgv } from '../cli/argv.js';
import { addBuildFlags, toBuildOptions, type BuildFlagValues } from '../cli/build-flags.js';
import { parseRegistryValues } from '../cli/dependencies.js';
import { UsageError } from '../cli/values.js';

/** A CI input that does not make a valid build; the message names the input or flag. */
export class CiInputError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CiInputError';
  }
}

/**
 * Splits a free-form `extra-args`/`arguments` string into words as a shell would (quotes and
 * backslashes honoured). Variables stay literal: the CI system has expanded its own already.
 */
export function splitArguments(text: string): string[] {
  const words: string[] = [];
  for (const entry of parseShellWords(text, (name) => `$${name}`)) {
    if (typeof entry === 'string') words.push(entry);
    else if (!('comment' in entry)) throw new CiInputError(`extra arguments: shell operators are not supported (found ${JSON.stringify(entry)})`);
  }
  return words;
}

/** Parses kaniko-style build flags into BuildOptions; any problem is a CiInputError. */
export function buildOptionsFromArguments(argv: readonly string[], env: NodeJS.ProcessEnv): BuildOptions {
  let usage = '';
  const command = addBuildFlags(new Command('kiln'))
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({ writeOut: (text) => (usage += text), writeErr: (text) => (usage += text) });
  try {
    command.parse(normalisePflagArgv(argv, booleanFlagNames(command)), { from: 'user' });
    return toBuildOptions(command.opts<BuildFlagValues>(), env, parseRegistryValues);
  } catch (error) {
    if (error instanceof UsageError) throw new CiInputError(error.message, { cause: error });
    if (error instanceof CommanderError) throw new CiInputError(usage.trim().split('\n')[0] || error.message, { cause: error });
    throw error;
  }
}
