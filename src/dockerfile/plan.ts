/**
 * The build plan: a parsed Dockerfile turned into stages (base, platform, typed instructions), the
 * order to build them in, the ones skipped, and build-check warnings. Plain JSON, so `kiln --dry-run`
 * can print it.
 *
 * Variable scoping follows BuildKit: ARGs before the first FROM are global (usable in FROM, and inside
 * a stage only after a bare `ARG NAME`); a stage's ARG takes the `--build-arg` value, else its default
 * expanded in the stage, else the global value; ARG and ENV share one environment in which the later
 * definition wins; a stage built `FROM` another inherits its ENV and ARG values. What the base image's
 * own ENV adds is only known at build time: `resolveStage` is the hook the executor calls with it.
 */
import { posix } from 'node:path';
import { DockerfileSyntaxError, type Dockerfile } from './ast.js';
import { PROXY_ARGS, automaticArgs, formatPlatform, parsePlatform, resolveBuildArgs, InvalidPlatformError, type PlatformSpec } from './args.js';
import {
  applyCheckConfig,
  checkViolation,
  formatWarning,
  parseCheckDirective,
  staticChecks,
  undefinedArgInFromWarning,
  undefinedVarWarning,
  warning,
  type BuildCheckWarning,
} from './checks.js';
import { createExpander, expandInstruction, type Expander } from './expand.js';
import { formatInstruction, mountFrom as mountFromValue, parseInstruction, type ArgInstruction, type FromInstruction, type Instruction } from './instructions.js';
import { parseDockerfile } from './parser.js';
import { ShellExpansionError } from './shell-lexer.js';
import { buildStageGraph, selectStages, type StageBase, type StageDependency, type StageSource, TargetNotFoundError } from './stages.js';

export interface PlanOptions {
  /** The Dockerfile's name in messages. */
  file: string;
  /** `--build-arg` values: the CLI list (`K=V`, or bare `K` read from `env`) or already resolved. */
  buildArgs: readonly string[] | Readonly<Record<string, string>>;
  /** The process environment, for bare `--build-arg K` (injected so tests need no globals). */
  env?: Readonly<Record<string, string | undefined>>;
  target?: string;
  platform: PlatformSpec;
  buildPlatform: PlatformSpec;
  /** Build every stage up to the target instead of only those the target needs. */
  skipUnusedStages: boolean;
}

export interface PlannedInstruction {
  line: number;
  endLine: number;
  /** The instruction as written, typed. */
  instruction: Instruction;
  /** After expansion; absent for stages that are not built. */
  expanded?: Instruction;
  /** One line of text: expanded when known. */
  text: string;
  /** For ARG: the value each declared name took (null: declared without a value). */
  argValues?: Record<string, string | null>;
  /** A trigger inherited from the parent stage's ONBUILD. */
  fromOnbuild?: boolean;
}

export interface PlannedStage {
  index: number;
  name?: string;
  displayName: string;
  line: number;
  /** The FROM argument after expansion with the global ARGs. */
  baseName: string;
  base: StageBase;
  /** `--platform` of FROM after expansion, normalised. */
  platform?: string;
  /** The FROM line after expansion, for printing. */
  fromText: string;
  dependsOn: StageDependency[];
  /** Images named by `COPY --from` / `RUN --mount=from=` that are not stages. */
  images: { ref: string; via: 'copy' | 'mount'; line: number }[];
  skipped: boolean;
  /**
   * False when the stage derives from a registry image: expansions below assumed that image sets no
   * ENV, and the executor must call `resolveStage` with the image's config Env.
   */
  envComplete: boolean;
  instructions: PlannedInstruction[];
}

export interface BuildPlan {
  file: string;
  escape: '\\' | '`';
  platform: string;
  buildPlatform: string;
  target: number;
  /** Global ARG values (automatic platform ARGs and ARGs before the first FROM). */
  globalArgs: Record<string, string>;
  buildArgs: Record<string, string>;
  /** Predefined proxy ARGs passed with --build-arg: in every RUN's environment, not in history. */
  proxyEnv: Record<string, string>;
  stages: PlannedStage[];
  order: number[];
  parallelGroups: number[][];
  skipped: number[];
  warnings: BuildCheckWarning[];
}

/** The environment of a stage after some instructions: what the next stage built FROM it inherits. */
export interface StageState {
  /** Build-time environment (ENV and ARG values), in definition order. */
  env: [string, string][];
  /** The image config's Env (ENV only). */
  configEnv: [string, string][];
  /** ARGs declared so far (inherited ones included), for RUN history (`RUN |2 A=1 B=2 ...`). */
  args: { key: string; value: string | null }[];
  /** The working directory, absolute (`/` when nothing set one). */
  workdir: string;
  /** A WORKDIR of this Dockerfile ran (in this stage or a parent stage): WorkdirRelativePath looks at the first. */
  workdirSet: boolean;
}

export interface ResolvedInstruction {
  line: number;
  instruction: Instruction;
  text: string;
  argValues?: Record<string, string | null>;
  /** The working directory in effect (after this instruction, for WORKDIR), for relative COPY/ADD destinations. */
  workdir: string;
  /** RUN: the environment it runs with (`K=V`, proxies not included). */
  runEnv?: string[];
  /** RUN: the declared ARGs as BuildKit writes them in history, `|N K=V ...` without the `|N`. */
  historyArgs?: string[];
  fromOnbuild?: boolean;
}

export interface ResolvedStage {
  instructions: ResolvedInstruction[];
  state: StageState;
  warnings: BuildCheckWarning[];
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

class OrderedEnv {
  private readonly map = new Map<string, string>();
  constructor(entries: Iterable<readonly [string, string]> = []) {
    for (const [k, v] of entries) this.map.set(k, v);
  }
  get(k: string): string | undefined {
    return this.map.get(k);
  }
  set(k: string, v: string): void {
    this.map.set(k, v);
  }
  has(k: string): boolean {
    return this.map.has(k);
  }
  keys(): string[] {
    return [...this.map.keys()];
  }
  entries(): [string, string][] {
    return [...this.map.entries()];
  }
  lines(): string[] {
    return this.entries().map(([k, v]) => `${k}=${v}`);
  }
}

function parseEnvLines(lines: readonly string[]): [string, string][] {
  return lines.map((l) => {
    const eq = l.indexOf('=');
    return eq < 0 ? [l, ''] : [l.slice(0, eq), l.slice(eq + 1)];
  });
}

interface ParsedStage {
  from: FromInstruction;
  body: Instruction[];
}

function typeAll(dockerfile: Dockerfile, file: string): { meta: ArgInstruction[]; stages: ParsedStage[] } {
  const meta: ArgInstruction[] = [];
  const stages: ParsedStage[] = [];
  for (const node of dockerfile.instructions) {
    const i = parseInstruction(node, file);
    if (i.kind === 'from') {
      stages.push({ from: i, body: [] });
      continue;
    }
    const current = stages[stages.length - 1];
    if (current === undefined) {
      if (i.kind === 'arg') {
        meta.push(i);
        continue;
      }
      throw new DockerfileSyntaxError(file, node.range.startLine, `no build stage in current context: ${node.original.toUpperCase()} must come after a FROM (only ARG may precede the first FROM)`);
    }
    current.body.push(i);
  }
  if (stages.length === 0) throw new DockerfileSyntaxError(file, dockerfile.instructions[0]?.range.startLine ?? 1, 'dockerfile contains no stages to build (add a FROM instruction)');
  return { meta, stages };
}

function wrapLexerError(file: string, line: number, fn: () => string): string {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ShellExpansionError) throw new DockerfileSyntaxError(file, line, err.message);
    throw err;
  }
}

/** Plans a build. Throws `DockerfileSyntaxError` (located) or `TargetNotFoundError`. */
export function planBuild(dockerfile: Dockerfile, options: PlanOptions): BuildPlan {
  const file = options.file;
  const givenArgs: Readonly<Record<string, string>> = isArgList(options.buildArgs) ? resolveBuildArgs(options.buildArgs, options.env ?? {}) : options.buildArgs;
  const expander = createExpander(dockerfile.directives.escape);
  const checkConfig = parseCheckDirective(dockerfile.directives.check, file);
  const { meta, stages } = typeAll(dockerfile, file);
  const warnings: BuildCheckWarning[] = staticChecks(stages.map((s) => [s.from, ...s.body]));
  for (const w of dockerfile.warnings) warnings.push(warning('NoEmptyContinuation', 'Empty continuation line', w.range.startLine));

  // The target's name feeds TARGETSTAGE, so find it from the raw names first.
  const targetName = options.target !== undefined && options.target !== '' ? options.target.toLowerCase() : (stages[stages.length - 1]?.from.stageName ?? '');
  const global = new OrderedEnv(automaticArgs(options.platform, options.buildPlatform, targetName));
  const declared = new Set<string>();
  for (const arg of meta) {
    for (const a of arg.args) {
      declared.add(a.key);
      const given = Object.hasOwn(givenArgs, a.key) ? givenArgs[a.key] : undefined;
      let value = given;
      if (value === undefined && a.defaultValue !== undefined) {
        const d = a.defaultValue;
        value = wrapLexerError(file, arg.location.startLine, () => expander.lexer.processWord(d, (k) => global.get(k)));
      }
      if (value !== undefined) global.set(a.key, value);
    }
  }

  const globalLookup = (k: string): string | undefined => global.get(k);
  const sources: StageSource[] = stages.map((s) => {
    const line = s.from.location.startLine;
    const match = wrapMatches(file, line, () => expander.lexer.processWordWithMatches(s.from.image, globalLookup));
    // A declared global ARG without a value is not "undeclared", only empty.
    for (const name of match.unmatched) if (!declared.has(name)) warnings.push(undefinedArgInFromWarning(name, line, global.keys()));
    if (match.result === '') throw new DockerfileSyntaxError(file, line, `base name (${s.from.image}) should not be blank`);
    const copyFrom: StageSource['copyFrom'] = [];
    const mountFrom: StageSource['mountFrom'] = [];
    for (const i of s.body) {
      if (i.kind === 'copy' && i.from !== undefined) {
        const raw = i.from;
        const value = wrapLexerError(file, i.location.startLine, () => expander.lexer.processWord(raw, globalLookup));
        if (value === '') throw new DockerfileSyntaxError(file, i.location.startLine, `COPY --from=${raw} is empty after expanding the global ARGs (only ARGs before the first FROM apply to --from)`);
        copyFrom.push({ value, line: i.location.startLine });
      }
      if (i.kind === 'run') {
        for (const spec of i.mountSpecs) {
          const from = mountFromValue(spec);
          if (from !== undefined && from !== '') mountFrom.push({ value: from, line: i.location.startLine });
        }
      }
    }
    const source: StageSource = { baseName: match.result, line, copyFrom, mountFrom };
    if (s.from.stageName !== undefined) source.name = s.from.stageName;
    return source;
  });

  const nodes = buildStageGraph(sources, file);
  const selection = selectStages(nodes, options.target === undefined ? { skipUnusedStages: options.skipUnusedStages } : { target: options.target, skipUnusedStages: options.skipUnusedStages }, file);

  const plannedStages: PlannedStage[] = nodes.map((node, index) => {
    const s = stages[index] as ParsedStage;
    const source = sources[index] as StageSource;
    const planned: PlannedStage = {
      index,
      displayName: node.displayName,
      line: node.line,
      baseName: source.baseName,
      base: node.base,
      dependsOn: node.dependsOn,
      images: node.images,
      skipped: !selection.order.includes(index),
      envComplete: false,
      fromText: '',
      instructions: s.body.map((i) => ({ line: i.location.startLine, endLine: i.location.endLine, instruction: i, text: formatInstruction(i) })),
    };
    if (node.name !== undefined) planned.name = node.name;
    if (s.from.platform !== undefined) {
      const raw = s.from.platform;
      const text = wrapLexerError(file, node.line, () => expander.lexer.processWord(raw, globalLookup));
      if (text === '') throw new DockerfileSyntaxError(file, node.line, `empty platform value from expression ${raw}`);
      try {
        planned.platform = formatPlatform(parsePlatform(text));
      } catch (err) {
        if (err instanceof InvalidPlatformError) throw new DockerfileSyntaxError(file, node.line, `failed to parse platform ${raw}: ${err.message}`);
        throw err;
      }
    }
    planned.fromText = ['FROM', planned.platform === undefined ? '' : `--platform=${planned.platform}`, planned.baseName, node.name === undefined ? '' : `AS ${node.name}`]
      .filter((x) => x !== '')
      .join(' ');
    return planned;
  });

  const buildArgs = { ...givenArgs };
  const proxyEnv: Record<string, string> = {};
  for (const k of PROXY_ARGS) if (Object.hasOwn(buildArgs, k)) proxyEnv[k] = buildArgs[k] as string;

  const plan: BuildPlan = {
    file,
    escape: dockerfile.directives.escape,
    platform: formatPlatform(options.platform),
    buildPlatform: formatPlatform(options.buildPlatform),
    target: selection.target,
    globalArgs: Object.fromEntries(global.entries()),
    buildArgs,
    proxyEnv,
    stages: plannedStages,
    order: selection.order,
    parallelGroups: selection.parallelGroups,
    skipped: selection.skipped,
    warnings: [],
  };

  // Expand what can be expanded now; a registry base's ENV is assumed empty until resolveStage runs.
  const states = new Map<number, StageState>();
  for (const index of selection.order) {
    const stage = plannedStages[index] as PlannedStage;
    const parentIndex = stage.base.kind === 'stage' ? stage.base.index : undefined;
    const parentState = parentIndex === undefined ? undefined : states.get(parentIndex);
    const complete = stage.base.kind === 'scratch' || (parentIndex !== undefined && (plannedStages[parentIndex]?.envComplete ?? false));
    const resolved = resolveStage(plan, index, parentState === undefined ? { baseImageEnv: [] } : { baseImageEnv: [], parent: parentState }, expander);
    states.set(index, resolved.state);
    stage.envComplete = complete;
    stage.instructions = resolved.instructions.map((r) => {
      const p: PlannedInstruction = {
        line: r.line,
        endLine: r.instruction.location.endLine,
        instruction: findRaw(stage, r),
        expanded: r.instruction,
        text: r.text,
      };
      if (r.argValues !== undefined) p.argValues = r.argValues;
      if (r.fromOnbuild === true) p.fromOnbuild = true;
      return p;
    });
    for (const i of resolved.instructions) if (i.instruction.kind === 'arg') for (const a of i.instruction.args) declared.add(a.key);
    // Without the base image's ENV an unset variable may still come from it: only report when known.
    warnings.push(...resolved.warnings.filter((w) => complete || w.rule !== 'UndefinedVar'));
  }

  const unused = Object.keys(buildArgs).filter((k) => !declared.has(k) && !PROXY_ARGS.includes(k)).sort();
  if (unused.length > 0) {
    // Not a BuildKit rule (docker prints it as a plain warning), so it has no documentation page.
    warnings.push({ rule: 'UnusedBuildArgs', message: `One or more build-args [${unused.join(' ')}] were not consumed`, line: 0 });
  }

  plan.warnings = applyCheckConfig(warnings, checkConfig);
  const violation = checkViolation(plan.warnings, checkConfig);
  if (violation !== undefined) {
    const first = plan.warnings.find((w) => w.line > 0)?.line ?? 1;
    throw new DockerfileSyntaxError(file, first, violation);
  }
  return plan;
}

function isArgList(v: PlanOptions['buildArgs']): v is readonly string[] {
  return Array.isArray(v);
}

/**
 * A registry base image's ONBUILD triggers (its config's `OnBuild` texts) as typed instructions, located
 * at the FROM line that pulled them in, for `resolveStage`'s `baseOnbuild`.
 */
export function parseOnbuildTriggers(triggers: readonly string[], file: string, fromLine: number, escape: '\\' | '`' = '\\'): Instruction[] {
  return triggers.map((text) => {
    const prefix = escape === '`' ? '# escape=`\n' : '';
    let parsed;
    try {
      parsed = parseDockerfile(prefix + text, file);
    } catch (err) {
      if (err instanceof DockerfileSyntaxError) throw new DockerfileSyntaxError(file, fromLine, `invalid ONBUILD trigger of the base image: ${err.detail}`);
      throw err;
    }
    const node = parsed.instructions[0];
    if (parsed.instructions.length !== 1 || node === undefined) throw new DockerfileSyntaxError(file, fromLine, 'onbuild trigger should be a single expression');
    const kw = node.keyword.toUpperCase();
    if (kw === 'ONBUILD' || kw === 'FROM' || kw === 'MAINTAINER') throw new DockerfileSyntaxError(file, fromLine, `${kw} isn't allowed as an ONBUILD trigger`);
    return parseInstruction({ ...node, range: { startLine: fromLine, endLine: fromLine } }, file);
  });
}

function findRaw(stage: PlannedStage, r: ResolvedInstruction): Instruction {
  if (r.fromOnbuild === true) return r.instruction;
  return stage.instructions.find((p) => p.instruction.location.startLine === r.line && p.instruction.kind === r.instruction.kind)?.instruction ?? r.instruction;
}

export interface ResolveInput {
  /** The base image's config Env (`K=V`); for a stage built FROM another stage, ignored in favour of `parent`. */
  baseImageEnv: readonly string[];
  /** The final state of the parent stage, when this stage is built FROM a stage. */
  parent?: StageState;
  /** ONBUILD triggers of a registry base image, typed (see `parseOnbuildTriggers`). */
  baseOnbuild?: Instruction[];
  /** The base image's config WorkingDir (empty or absent: `/`). */
  baseImageWorkdir?: string;
}

/**
 * The build-time hook: expands a stage's instructions in order against its real environment, following
 * Docker's ARG/ENV rules. The executor calls it per stage, in plan order, with the base image's config
 * Env (or the parent stage's final state) and keeps the returned state for child stages.
 */
export function resolveStage(plan: BuildPlan, stageIndex: number, input: ResolveInput, expander: Expander = createExpander(plan.escape)): ResolvedStage {
  const stage = plan.stages[stageIndex];
  if (stage === undefined) throw new RangeError(`no stage ${stageIndex} in the plan`);
  const file = plan.file;
  let env: OrderedEnv;
  let configEnv: OrderedEnv;
  let args: { key: string; value: string | null }[];
  let workdir = '/';
  let workdirSet = input.parent?.workdirSet ?? false;
  if (input.parent !== undefined) {
    env = new OrderedEnv(input.parent.env);
    configEnv = new OrderedEnv(input.parent.configEnv);
    args = input.parent.args.map((a) => ({ ...a }));
    workdir = input.parent.workdir;
  } else {
    if (input.baseImageWorkdir !== undefined && input.baseImageWorkdir !== '') workdir = posix.resolve('/', input.baseImageWorkdir);
    configEnv = new OrderedEnv(parseEnvLines(input.baseImageEnv));
    if (!configEnv.has('PATH')) configEnv.set('PATH', DEFAULT_PATH);
    env = new OrderedEnv(configEnv.entries());
    args = [];
  }
  const warnings: BuildCheckWarning[] = [];
  const out: ResolvedInstruction[] = [];
  const lookup = (k: string): string | undefined => env.get(k);

  const triggers: { instruction: Instruction; onbuild: boolean }[] = [];
  if (stage.base.kind === 'stage') {
    const parent = plan.stages[stage.base.index];
    for (const p of parent?.instructions ?? []) {
      if (p.instruction.kind === 'onbuild' && p.fromOnbuild !== true) triggers.push({ instruction: p.instruction.trigger, onbuild: true });
    }
  } else {
    for (const t of input.baseOnbuild ?? []) triggers.push({ instruction: t, onbuild: true });
  }
  for (const p of stage.instructions) if (p.fromOnbuild !== true) triggers.push({ instruction: p.instruction, onbuild: false });

  const reportUnmatched = (names: readonly string[], line: number): void => {
    const declaredArgs = new Set(args.map((a) => a.key));
    for (const n of names) if (!declaredArgs.has(n)) warnings.push(undefinedVarWarning(n, line, env.keys()));
  };

  for (const { instruction, onbuild } of triggers) {
    const line = instruction.location.startLine;
    if (instruction.kind === 'arg') {
      const values: Record<string, string | null> = {};
      for (const a of instruction.args) {
        const given = Object.hasOwn(plan.buildArgs, a.key) ? plan.buildArgs[a.key] : undefined;
        let value: string | undefined;
        if (given !== undefined) {
          value = given;
        } else if (a.defaultValue !== undefined) {
          const d = a.defaultValue;
          const m = wrapMatches(file, line, () => expander.lexer.processWordWithMatches(d, lookup));
          reportUnmatched([...m.unmatched], line);
          value = m.result;
        } else if (Object.hasOwn(plan.globalArgs, a.key)) {
          value = plan.globalArgs[a.key];
        }
        const existing = args.find((x) => x.key === a.key);
        if (value !== undefined) {
          env.set(a.key, value);
          if (existing !== undefined) existing.value = value;
          else args.push({ key: a.key, value });
        } else if (existing === undefined) {
          args.push({ key: a.key, value: null });
        }
        // A bare ARG keeps what the parent stage gave it.
        values[a.key] = value ?? existing?.value ?? null;
      }
      const text = `ARG ${Object.entries(values).map(([k, v]) => (v === null ? k : `${k}=${v}`)).join(' ')}`;
      const r: ResolvedInstruction = { line, instruction, text, argValues: values, workdir };
      if (onbuild) r.fromOnbuild = true;
      out.push(r);
      continue;
    }
    const expansion = expandInstruction(instruction, lookup, expander, file);
    reportUnmatched(expansion.unmatched, line);
    let expanded = expansion.instruction;
    if (expanded.kind === 'workdir') {
      if (!workdirSet && !expanded.path.startsWith('/')) {
        warnings.push(warning('WorkdirRelativePath', `Relative workdir ${JSON.stringify(expanded.path)} can have unexpected results if the base image changes`, line));
      }
      workdirSet = true;
      // Docker records the absolute, cleaned directory (`WORKDIR a` after `WORKDIR /x` is `/x/a`).
      workdir = posix.resolve(workdir, expanded.path);
      expanded = { ...expanded, path: workdir };
    }
    const r: ResolvedInstruction = { line, instruction: expanded, text: formatInstruction(expanded), workdir };
    if (onbuild) r.fromOnbuild = true;
    if (expanded.kind === 'env') {
      for (const p of expanded.pairs) {
        env.set(p.key, p.value);
        configEnv.set(p.key, p.value);
      }
    } else if (expanded.kind === 'run') {
      r.runEnv = env.lines();
      const seen = new Map<string, string>();
      for (const a of args) seen.set(a.key, env.get(a.key) ?? a.value ?? '');
      r.historyArgs = [...seen].map(([k, v]) => `${k}=${v}`);
    }
    out.push(r);
  }
  return { instructions: out, state: { env: env.entries(), configEnv: configEnv.entries(), args, workdir, workdirSet }, warnings };
}

function wrapMatches(file: string, line: number, fn: () => { result: string; unmatched: Set<string> }): { result: string; unmatched: Set<string> } {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ShellExpansionError) throw new DockerfileSyntaxError(file, line, err.message);
    throw err;
  }
}

export { TargetNotFoundError };

/**
 * The plan as text for `kiln --dry-run`: stages in build order with their parallel group, skipped
 * stages marked at the end, each instruction with its line, then the warnings.
 */
export function formatPlanText(plan: BuildPlan): string {
  const out: string[] = [];
  const target = plan.stages[plan.target];
  out.push(`# ${plan.file}: target ${target?.displayName ?? '?'} (stage ${plan.target}), platform ${plan.platform}, build platform ${plan.buildPlatform}`);
  const groupOf = new Map<number, number>();
  plan.parallelGroups.forEach((g, n) => g.forEach((i) => groupOf.set(i, n + 1)));
  const describe = (stage: PlannedStage, status: string): void => {
    const deps = stage.dependsOn.map((d) => plan.stages[d.stage]?.displayName ?? String(d.stage));
    const note = [status, deps.length > 0 ? `needs ${[...new Set(deps)].join(', ')}` : '', !stage.skipped && !stage.envComplete ? 'base image ENV applied at build time' : '']
      .filter((x) => x !== '')
      .join('; ');
    out.push(`stage ${stage.index} ${stage.displayName} (${note})`);
    out.push(`  ${String(stage.line).padStart(4)}: ${stage.fromText}`);
    for (const i of stage.instructions) {
      const text = i.text.replace(/\n/g, '\\n');
      out.push(`  ${i.fromOnbuild === true ? 'ONBUILD' : String(i.line).padStart(4)}: ${text}`);
    }
  };
  for (const i of plan.order) {
    const stage = plan.stages[i];
    if (stage !== undefined) describe(stage, `group ${groupOf.get(i) ?? 0}`);
  }
  for (const i of plan.skipped) {
    const stage = plan.stages[i];
    if (stage !== undefined) describe(stage, 'SKIPPED: not needed by the target');
  }
  for (const w of plan.warnings) out.push(formatWarning(w, plan.file));
  return `${out.join('\n')}\n`;
}
