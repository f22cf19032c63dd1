/**
 * The stage graph: what each stage is built on, which stages it copies or mounts from, which stages a
 * target needs, in which order, and which can run side by side. Names are matched case-insensitively
 * (BuildKit lower-cases `AS` names; it fails on `FROM Name` for such stages, kiln accepts it).
 */
import { DockerfileSyntaxError } from './ast.js';

export type StageBase =
  | { kind: 'scratch' }
  | { kind: 'image'; ref: string }
  | { kind: 'stage'; index: number };

export type DependencyKind = 'from' | 'copy' | 'mount';

export interface StageDependency {
  stage: number;
  via: DependencyKind;
  line: number;
}

export interface ImageDependency {
  ref: string;
  via: Exclude<DependencyKind, 'from'>;
  line: number;
}

/** What stages.ts needs to know of a stage, names already expanded with the global ARGs. */
export interface StageSource {
  name?: string;
  /** The expanded FROM argument. */
  baseName: string;
  line: number;
  /** `COPY --from` values (expanded) with their lines. */
  copyFrom: { value: string; line: number }[];
  /** `RUN --mount=from=` values with their lines. */
  mountFrom: { value: string; line: number }[];
}

export interface StageNode {
  index: number;
  name?: string;
  /** `name` or `stage-N`, as BuildKit prints it. */
  displayName: string;
  line: number;
  base: StageBase;
  dependsOn: StageDependency[];
  images: ImageDependency[];
}

export interface StageSelection {
  target: number;
  /** Stages to build, in build order. */
  order: number[];
  skipped: number[];
  /** Groups of stages from `order` whose dependencies are all in earlier groups: each group can run in parallel. */
  parallelGroups: number[][];
}

function lookupByName(sources: readonly StageSource[], name: string, before: number): number | undefined {
  const wanted = name.toLowerCase();
  // The latest stage of that name wins, as BuildKit's name table keeps the last one added.
  for (let i = Math.min(before, sources.length) - 1; i >= 0; i--) {
    if (sources[i]?.name === wanted) return i;
  }
  return undefined;
}

function stageReference(
  sources: readonly StageSource[],
  value: string,
  file: string,
  line: number,
): number | undefined {
  if (/^[+-]?\d+$/.test(value)) {
    const index = Number(value);
    if (index < 0 || index >= sources.length) throw new DockerfileSyntaxError(file, line, `invalid stage index ${index}`);
    return index;
  }
  return lookupByName(sources, value, sources.length);
}

/** Resolves bases and dependencies. Throws on a duplicate stage name, a bad index or a cycle. */
export function buildStageGraph(sources: readonly StageSource[], file = 'Dockerfile'): StageNode[] {
  const seen = new Map<string, number>();
  for (const s of sources) {
    if (s.name === undefined) continue;
    if (seen.has(s.name)) {
      throw new DockerfileSyntaxError(file, s.line, `duplicate stage name "${s.name}", stage names should be unique (first defined on line ${sources[seen.get(s.name) ?? 0]?.line ?? 0})`);
    }
    seen.set(s.name, sources.indexOf(s));
  }
  const nodes = sources.map((s, index): StageNode => {
    const dependsOn: StageDependency[] = [];
    const images: ImageDependency[] = [];
    let base: StageBase;
    const parent = lookupByName(sources, s.baseName, index);
    if (parent !== undefined) {
      base = { kind: 'stage', index: parent };
      dependsOn.push({ stage: parent, via: 'from', line: s.line });
    } else if (s.baseName.toLowerCase() === 'scratch') {
      base = { kind: 'scratch' };
    } else {
      base = { kind: 'image', ref: s.baseName };
    }
    const refs = [
      ...s.copyFrom.map((r) => ({ ...r, via: 'copy' as const })),
      ...s.mountFrom.map((r) => ({ ...r, via: 'mount' as const })),
    ];
    for (const ref of refs) {
      const stage = stageReference(sources, ref.value, file, ref.line);
      if (stage === undefined) images.push({ ref: ref.value, via: ref.via, line: ref.line });
      else dependsOn.push({ stage, via: ref.via, line: ref.line });
    }
    const node: StageNode = { index, displayName: s.name ?? `stage-${index}`, line: s.line, base, dependsOn, images };
    if (s.name !== undefined) node.name = s.name;
    return node;
  });
  checkCycles(nodes, file);
  return nodes;
}

function checkCycles(nodes: readonly StageNode[], file: string): void {
  const state = new Map<number, 'visiting' | 'done'>();
  const visit = (i: number): void => {
    const mark = state.get(i);
    if (mark === 'done') return;
    const node = nodes[i];
    if (node === undefined) return;
    if (mark === 'visiting') throw new DockerfileSyntaxError(file, node.line, `circular dependency detected on stage: ${node.displayName}`);
    state.set(i, 'visiting');
    for (const d of node.dependsOn) visit(d.stage);
    state.set(i, 'done');
  };
  for (const n of nodes) visit(n.index);
}

/**
 * Picks the target (the last stage by default) and the stages to build. With `skipUnusedStages`
 * only the stages the target needs are built; otherwise every stage up to the target (kaniko's
 * default). A stage may only use stages defined before it.
 */
export function selectStages(nodes: readonly StageNode[], options: { target?: string; skipUnusedStages: boolean }, file = 'Dockerfile'): StageSelection {
  if (nodes.length === 0) throw new DockerfileSyntaxError(file, 1, 'dockerfile contains no stages to build');
  let target = nodes.length - 1;
  if (options.target !== undefined && options.target !== '') {
    const wanted = options.target.toLowerCase();
    const found = [...nodes].reverse().find((n) => n.name === wanted);
    if (found === undefined) {
      const names = nodes.flatMap((n) => (n.name === undefined ? [] : [n.name]));
      const list = names.length === 0 ? 'the Dockerfile names no stages (use FROM image AS name)' : `stages: ${names.join(', ')}`;
      throw new TargetNotFoundError(options.target, names, `target stage "${options.target}" could not be found (${list})`);
    }
    target = found.index;
  }
  const needed = new Set<number>();
  const walk = (i: number): void => {
    if (needed.has(i)) return;
    needed.add(i);
    for (const d of nodes[i]?.dependsOn ?? []) walk(d.stage);
  };
  walk(target);
  const order = nodes.filter((n) => (options.skipUnusedStages ? needed.has(n.index) : n.index <= target)).map((n) => n.index);
  for (const i of order) {
    const node = nodes[i];
    if (node === undefined) continue;
    for (const d of node.dependsOn) {
      if (d.stage < i) continue;
      const other = nodes[d.stage]?.displayName ?? String(d.stage);
      const what = d.via === 'mount' ? 'mount from' : 'copy from';
      throw new DockerfileSyntaxError(file, d.line, `cannot ${what} stage "${other}", it needs to be defined before current stage "${node.displayName}"`);
    }
  }
  const inOrder = new Set(order);
  const level = new Map<number, number>();
  for (const i of order) {
    let l = 0;
    for (const d of nodes[i]?.dependsOn ?? []) if (inOrder.has(d.stage)) l = Math.max(l, (level.get(d.stage) ?? 0) + 1);
    level.set(i, l);
  }
  const parallelGroups: number[][] = [];
  for (const i of order) {
    const l = level.get(i) ?? 0;
    (parallelGroups[l] ??= []).push(i);
  }
  return { target, order, skipped: nodes.filter((n) => !inOrder.has(n.index)).map((n) => n.index), parallelGroups };
}

export class TargetNotFoundError extends Error {
  constructor(
    readonly target: string,
    readonly stages: string[],
    message: string,
  ) {
    super(message);
    this.name = 'TargetNotFoundError';
  }
}
