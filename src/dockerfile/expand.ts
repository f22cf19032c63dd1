/**
 * Which instructions Docker expands, and how. ADD, COPY, ENV, EXPOSE, LABEL, STOPSIGNAL, USER,
 * VOLUME and WORKDIR substitute variables from the build-time environment (ARGs and ENVs in scope);
 * FROM uses the global ARGs only (plan.ts); ARG expands its default when reached (plan.ts); RUN, CMD,
 * ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER and ONBUILD are left to the shell or to the later build.
 * RUN `--mount` values are expanded field by field. Heredoc bodies of COPY/ADD are expanded without
 * quote processing when their delimiter was unquoted.
 */
import { DockerfileSyntaxError } from './ast.js';
import {
  InstructionError,
  parseFileMode,
  parseMounts,
  parsePortSpec,
  validateChecksum,
  validateSignal,
  type Instruction,
  type InstructionKind,
} from './instructions.js';
import { ShellExpansionError, createShellLexer, type EnvLookup, type ShellLexer } from './shell-lexer.js';

/** Instructions whose words Docker expands from the environment in scope. */
export const EXPANDING_KINDS: ReadonlySet<InstructionKind> = new Set<InstructionKind>([
  'add', 'copy', 'env', 'expose', 'label', 'stopsignal', 'user', 'volume', 'workdir', 'run',
]);

export interface Expansion<T extends Instruction = Instruction> {
  instruction: T;
  /** Variables referenced but unset (for the UndefinedVar check). */
  unmatched: string[];
  /** Variables referenced and set. */
  matched: string[];
}

export interface Expander {
  readonly escape: '\\' | '`';
  readonly lexer: ShellLexer;
  /** BuildKit expands heredoc bodies with `\` as escape and quotes left alone. */
  readonly rawLexer: ShellLexer;
}

export function createExpander(escape: '\\' | '`'): Expander {
  return { escape, lexer: createShellLexer(escape), rawLexer: createShellLexer('\\', { skipProcessQuotes: true }) };
}

/**
 * Expands one instruction against `env` (the stage's environment before the instruction). Instructions
 * Docker does not expand come back unchanged. Errors are located at the instruction.
 */
export function expandInstruction<T extends Instruction>(instruction: T, env: EnvLookup, expander: Expander, file = 'Dockerfile'): Expansion<T> {
  if (!EXPANDING_KINDS.has(instruction.kind)) return { instruction, matched: [], unmatched: [] };
  const matched = new Set<string>();
  const unmatched = new Set<string>();
  const word = (w: string): string => {
    const r = expander.lexer.processWordWithMatches(w, env);
    for (const n of r.matched) matched.add(n);
    for (const n of r.unmatched) unmatched.add(n);
    return r.result;
  };
  const words = (w: string): string[] => {
    const r = expander.lexer.processWordWithMatches(w, env);
    for (const n of r.matched) matched.add(n);
    for (const n of r.unmatched) unmatched.add(n);
    return expander.lexer.processWords(w, env);
  };
  const raw = (w: string): string => {
    const r = expander.rawLexer.processWordWithMatches(w, env);
    for (const n of r.matched) matched.add(n);
    for (const n of r.unmatched) unmatched.add(n);
    return r.result;
  };
  try {
    const out = expandTyped(instruction, word, words, raw) as T;
    for (const n of matched) unmatched.delete(n);
    return { instruction: out, matched: [...matched].sort(), unmatched: [...unmatched].sort() };
  } catch (err) {
    if (err instanceof ShellExpansionError || err instanceof InstructionError) {
      throw new DockerfileSyntaxError(file, instruction.location.startLine, err.message);
    }
    throw err;
  }
}

function expandTyped(i: Instruction, word: (w: string) => string, words: (w: string) => string[], raw: (w: string) => string): Instruction {
  switch (i.kind) {
    case 'copy':
    case 'add': {
      const out = {
        ...i,
        sources: i.sources.map(word),
        destination: word(i.destination),
        excludes: i.excludes.map(word),
        heredocSources: i.heredocSources.map((h) => (h.expand ? { ...h, content: raw(h.content) } : h)),
      };
      if (i.chown !== undefined) out.chown = word(i.chown);
      if (i.chmod !== undefined) {
        out.chmod = word(i.chmod);
        out.mode = parseFileMode(out.chmod);
      }
      if (out.kind === 'add' && out.checksum !== undefined) {
        out.checksum = word(out.checksum);
        validateChecksum(out);
      }
      return out;
    }
    case 'env': {
      const pairs = i.pairs.map((p) => ({ ...p, key: word(p.key), value: word(p.value) }));
      if (pairs.some((p) => p.key === '')) throw new InstructionError('ENV names can not be blank');
      return { ...i, pairs };
    }
    case 'label':
      return { ...i, labels: i.labels.map((p) => ({ ...p, key: word(p.key), value: word(p.value) })) };
    case 'expose': {
      const expanded = i.words.flatMap(words);
      return { ...i, words: expanded, ports: expanded.map(parsePortSpec) };
    }
    case 'stopsignal': {
      const signal = word(i.signal);
      validateSignal(signal);
      return { ...i, signal };
    }
    case 'user':
      return { ...i, user: word(i.user) };
    case 'workdir':
      return { ...i, path: word(i.path) };
    case 'volume': {
      const volumes = i.volumes.map(word);
      if (volumes.some((v) => v === '')) throw new InstructionError('VOLUME specified can not be an empty string');
      return { ...i, volumes };
    }
    case 'run':
      if (i.mountSpecs.length === 0) return i;
      return { ...i, mounts: parseMounts(i.mountSpecs, word) };
    default:
      return i;
  }
}
