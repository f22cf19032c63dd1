import { describe, expect, it } from 'vitest';
import { DockerfileSyntaxError } from '../../../src/dockerfile/ast.js';
import { parseDockerfile } from '../../../src/dockerfile/parser.js';
import { planBuild, type BuildPlan, type PlanOptions } from '../../../src/dockerfile/plan.js';
import { buildStageGraph, selectStages, type StageSource } from '../../../src/dockerfile/stages.js';

function plan(text: string, options: Partial<PlanOptions> = {}): BuildPlan {
  return planBuild(parseDockerfile(text, 'Dockerfile'), {
    file: 'Dockerfile',
    buildArgs: {},
    platform: { os: 'linux', architecture: 'amd64' },
    buildPlatform: { os: 'linux', architecture: 'amd64' },
    skipUnusedStages: true,
    ...options,
  });
}

function planError(text: string, options: Partial<PlanOptions> = {}): DockerfileSyntaxError {
  try {
    plan(text, options);
  } catch (err) {
    if (err instanceof DockerfileSyntaxError) return err;
    throw err;
  }
  throw new Error('expected a DockerfileSyntaxError');
}

const multiStage = [
  'FROM golang:1.22 AS deps', //     0
  'RUN go mod download',
  'FROM deps AS build', //           1
  'RUN go build -o /app',
  'FROM node:20 AS web', //          2
  'RUN npm ci',
  'FROM alpine AS unused', //        3
  'RUN true',
  'FROM scratch AS final', //        4
  'COPY --from=build /app /app',
  'COPY --from=web /dist /www',
  'COPY --from=nginx:1.27 /etc/nginx /etc/nginx',
  '',
].join('\n');

describe('the stage graph', () => {
  it('resolves bases and dependencies', () => {
    const p = plan(multiStage);
    expect(p.stages.map((s) => s.base)).toEqual([
      { kind: 'image', ref: 'golang:1.22' },
      { kind: 'stage', index: 0 },
      { kind: 'image', ref: 'node:20' },
      { kind: 'image', ref: 'alpine' },
      { kind: 'scratch' },
    ]);
    expect(p.stages[4]?.dependsOn).toEqual([
      { stage: 1, via: 'copy', line: 10 },
      { stage: 2, via: 'copy', line: 11 },
    ]);
    expect(p.stages[4]?.images).toEqual([{ ref: 'nginx:1.27', via: 'copy', line: 12 }]);
  });

  it('skips unused stages and groups independent ones', () => {
    const p = plan(multiStage);
    expect(p.order).toEqual([0, 1, 2, 4]);
    expect(p.skipped).toEqual([3]);
    expect(p.stages[3]?.skipped).toBe(true);
    expect(p.parallelGroups).toEqual([[0, 2], [1], [4]]);
  });

  it('builds every stage up to the target when asked to', () => {
    const p = plan(multiStage, { skipUnusedStages: false });
    expect(p.order).toEqual([0, 1, 2, 3, 4]);
    expect(p.parallelGroups).toEqual([[0, 2, 3], [1], [4]]);
  });

  it('stops at --target, matched case-insensitively', () => {
    const p = plan(multiStage, { target: 'BUILD' });
    expect(p.target).toBe(1);
    expect(p.order).toEqual([0, 1]);
    expect(p.skipped).toEqual([2, 3, 4]);
  });

  it('accepts a stage index and RUN --mount=from', () => {
    const p = plan('FROM alpine\nRUN true\nFROM alpine AS tools\nFROM scratch\nCOPY --from=0 /etc/os-release /\nRUN --mount=type=bind,from=tools,target=/t true\n');
    expect(p.stages[2]?.dependsOn).toEqual([
      { stage: 0, via: 'copy', line: 5 },
      { stage: 1, via: 'mount', line: 6 },
    ]);
    expect(p.stages.map((s) => s.displayName)).toEqual(['stage-0', 'tools', 'stage-2']);
  });

  it('lets FROM name an earlier stage in any case', () => {
    const p = plan('FROM alpine AS Base\nFROM BASE\n');
    expect(p.stages[1]?.base).toEqual({ kind: 'stage', index: 0 });
  });

  it('expands COPY --from with the global ARGs', () => {
    const p = plan('ARG SRC=build\nFROM alpine AS build\nFROM scratch\nCOPY --from=$SRC /a /a\n');
    expect(p.stages[1]?.dependsOn).toEqual([{ stage: 0, via: 'copy', line: 4 }]);
  });

  it('treats a later stage name in FROM as an image, as BuildKit does', () => {
    const p = plan('FROM later\nFROM alpine AS later\n', { target: 'later', skipUnusedStages: false });
    expect(p.stages[0]?.base).toEqual({ kind: 'image', ref: 'later' });
  });
});

describe('stage errors', () => {
  it('rejects a cycle, naming the stage', () => {
    const err = planError('FROM alpine AS a\nCOPY --from=b /x /x\nFROM alpine AS b\nCOPY --from=a /y /y\n');
    expect(err.detail).toMatch(/^circular dependency detected on stage: (a|b)$/);
  });

  it('rejects a stage that copies from itself', () => {
    expect(planError('FROM alpine AS a\nCOPY --from=a /x /y\n').detail).toBe('circular dependency detected on stage: a');
  });

  it('rejects copying from a stage defined later', () => {
    expect(planError('FROM alpine AS a\nCOPY --from=b /x /x\nFROM alpine AS b\n', { target: 'a' })).toMatchObject({
      line: 2,
      detail: 'cannot copy from stage "b", it needs to be defined before current stage "a"',
    });
  });

  it('rejects a stage index out of range', () => {
    expect(planError('FROM alpine\nCOPY --from=5 /x /x\n')).toMatchObject({ line: 2, detail: 'invalid stage index 5' });
  });

  it('rejects duplicate stage names', () => {
    expect(planError('FROM alpine AS x\nFROM alpine AS X\n')).toMatchObject({ line: 2 });
    expect(planError('FROM alpine AS x\nFROM alpine AS X\n').detail).toContain('duplicate stage name "x"');
  });
});

describe('selectStages on a hand-built graph', () => {
  it('puts a diamond in three groups', () => {
    const src = (baseName: string, name: string, copy: string[] = []): StageSource => ({
      name, baseName, line: 1, copyFrom: copy.map((value) => ({ value, line: 1 })), mountFrom: [],
    });
    const nodes = buildStageGraph([src('alpine', 'root'), src('root', 'left'), src('root', 'right'), src('scratch', 'join', ['left', 'right'])]);
    expect(selectStages(nodes, { skipUnusedStages: true })).toEqual({ target: 3, order: [0, 1, 2, 3], skipped: [], parallelGroups: [[0], [1, 2], [3]] });
  });
});

describe('mount sources', () => {
  it('reads a quoted from= field of a --mount', () => {
    const p = plan('FROM alpine AS tools\nFROM scratch\nRUN --mount=type=bind,"from=tools",target=/t true\n');
    expect(p.stages[1]?.dependsOn).toEqual([{ stage: 0, via: 'mount', line: 3 }]);
  });
});
