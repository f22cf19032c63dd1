import type { RunInstruction } from '../dockerfile/instructions.js';
import { chompHeredocContent } from '../dockerfile/heredoc.js';
import { commandArgv } from './image-config.js';

/** A heredoc with a shebang becomes a file the step executes; this is where it lives during the step. */
export interface ScriptFile {
  name: string;
  content: string;
}

export interface RunCommand {
  argv: string[];
  /** Set when the step runs a heredoc script file that must exist in the root for the step. */
  script?: ScriptFile;
}

/**
 * The argv a RUN executes, as BuildKit builds it: exec form as given; shell form through SHELL; a
 * RUN that is just one heredoc runs its body through the shell (or as a file when it starts with
 * `#!`); any other use of heredocs hands the shell the command with the bodies appended, since
 * shells read heredocs themselves.
 */
export function runCommand(run: RunInstruction, shell: readonly string[] | undefined, scriptDir: string): RunCommand {
  if (run.cmd.form === 'exec' || run.heredocs.length === 0) return { argv: commandArgv(run.cmd, shell) };
  const [first] = run.heredocs;
  const onlyHeredoc = first !== undefined && /^<<-?(["']?)[^\s"']+\1$/.test(run.cmd.command.trim());
  if (onlyHeredoc) {
    const body = first.chomp ? chompHeredocContent(first.content) : first.content;
    if (body.startsWith('#!')) {
      const path = `${scriptDir}/${first.name}`;
      return { argv: [path], script: { name: path, content: body } };
    }
    return { argv: commandArgv({ form: 'shell', command: body }, shell) };
  }
  const script = run.heredocs.reduce((text, doc) => `${text}\n${doc.content}${doc.name}`, run.cmd.command);
  return { argv: commandArgv({ form: 'shell', command: script }, shell) };
}

/** `K=V` lines to an environment object; a later definition wins. */
export function environmentOf(lines: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of lines) {
    const at = line.indexOf('=');
    if (at > 0) env[line.slice(0, at)] = line.slice(at + 1);
  }
  return env;
}

/** Go's %q for a string list, as BuildKit writes CMD/ENTRYPOINT into history: `["a" "b"]`. */
export function goQuotedList(items: readonly string[]): string {
  return `[${items.map((item) => JSON.stringify(item)).join(' ')}]`;
}

/** BuildKit's `created_by` for a RUN: `RUN |2 A=1 B=2 /bin/sh -c cmd # buildkit`. */
export function runHistory(argv: readonly string[], historyArgs: readonly string[]): string {
  const prefix = historyArgs.length > 0 ? `|${historyArgs.length} ${historyArgs.join(' ')} ` : '';
  return `RUN ${prefix}${argv.join(' ')} # buildkit`;
}
