import { Command, CommanderError } from 'commander';
import type { BuildOptions } from '../build/options.js';
import { addBuildFlags, toBuildOptions, type BuildFlagValues } from './build-flags.js';
import type { ParseRegistryValues } from './registry-flags.js';
import { addCopyFlags, type CopyRequest, toCopyRequest, type CopyFlagValues } from './copy-flags.js';
import { booleanFlagNames, normalisePflagArgv } from './argv.js';
import { UsageError } from './values.js';

export interface Output {
  write(text: string): void;
}

/** What the CLI needs from the outside world; main.ts supplies the real ones, tests their own. */
export interface CliDependencies {
  version: string;
  env: NodeJS.ProcessEnv;
  stdout: Output;
  stderr: Output;
  parseRegistry: ParseRegistryValues;
  build(options: BuildOptions): Promise<void>;
  copy(request: CopyRequest): Promise<void>;
}

export function createProgram(deps: CliDependencies): Command {
  const program = new Command('kiln')
    .description("Build OCI/Docker images from a Dockerfile inside an unprivileged CI job.\nA drop-in for kaniko's executor: `kiln --context DIR --destination REF` builds and pushes.")
    .version(deps.version, '--version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .showHelpAfterError()
    .configureOutput({
      writeOut: (text) => deps.stdout.write(text),
      writeErr: (text) => deps.stderr.write(text),
    })
    .exitOverride();

  const build = addBuildFlags(
    new Command('build').description('build an image from a Dockerfile and push it (the default command)'),
  )
    .allowExcessArguments(false)
    .action(async (_args: unknown, command: Command) => {
      await deps.build(toBuildOptions(command.opts<BuildFlagValues>(), deps.env, deps.parseRegistry));
    });
  program.addCommand(build, { isDefault: true });

  const copy = addCopyFlags(
    new Command('copy')
      .description('copy an image or index: registry → registry, oci:DIR[:tag] or docker-archive:FILE[:ref]')
      .argument('<source>', 'docker://REF or REF, oci:DIR[:tag], docker-archive:FILE')
      .argument('<destination>', 'docker://REF or REF, oci:DIR[:tag], docker-archive:FILE[:ref]'),
  ).action(async (source: string, destination: string, _options: unknown, command: Command) => {
    await deps.copy(toCopyRequest(source, destination, command.opts<CopyFlagValues>(), deps.env, deps.parseRegistry));
  });
  program.addCommand(copy);
  return program;
}

/** Runs the CLI and returns the process exit code; every failure is one clear line on stderr. */
export async function runCli(argv: readonly string[], deps: CliDependencies): Promise<number> {
  const program = createProgram(deps);
  for (const command of program.commands) command.exitOverride().configureOutput({
    writeOut: (text) => deps.stdout.write(text),
    writeErr: (text) => deps.stderr.write(text),
  });
  try {
    await program.parseAsync(normalisePflagArgv(argv, booleanFlagNames(program)), { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (error instanceof UsageError) {
      deps.stderr.write(`kiln: ${error.message}\n`);
      return 2;
    }
    deps.stderr.write(`kiln: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
