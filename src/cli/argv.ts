import type { Command } from 'commander';

/**
 * kaniko parses flags with Go's pflag, whose rules differ from commander's in two places:
 * a boolean flag never consumes the next word (`--insecure docker://x` leaves the reference alone;
 * only `--insecure=false` sets a value), and a shorthand may carry its value after `=` (`-f=file`).
 * Rewriting argv to commander's spelling keeps every kaniko command line meaning what it meant.
 */
export function normalisePflagArgv(argv: readonly string[], booleanFlags: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let index = 0; index < argv.length; index++) {
    const word = argv[index] ?? '';
    if (word === '--') {
      out.push(...argv.slice(index));
      break;
    }
    if (booleanFlags.has(word)) {
      out.push(`${word}=true`);
    } else if (/^-[a-zA-Z]=/.test(word)) {
      out.push(word.slice(0, 2), word.slice(3));
    } else {
      out.push(word);
    }
  }
  return out;
}

/** The long names of every option declared with an optional `[bool]` value, across all commands. */
export function booleanFlagNames(program: Command): Set<string> {
  const names = new Set<string>();
  for (const command of [program, ...program.commands]) {
    for (const option of command.options) {
      if (option.optional && option.flags.endsWith('[bool]') && option.long) names.add(option.long);
    }
  }
  return names;
}
