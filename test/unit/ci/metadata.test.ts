import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { readTaskInputs } from '../../../src/ci/azure/inputs.js';
import { readActionInputs } from '../../../src/ci/github/inputs.js';

const root = path.resolve(import.meta.dirname, '../../..');

describe('action.yml and task.json declare exactly the inputs the code reads', () => {
  it('action.yml: node24, main and post bundles, inputs and outputs', async () => {
    const action = parse(await readFile(path.join(root, 'action.yml'), 'utf8')) as {
      inputs: Record<string, unknown>;
      outputs: Record<string, unknown>;
      runs: { using: string; main: string; post: string };
    };
    expect(action.runs).toEqual({ using: 'node24', main: 'dist/github-main.js', post: 'dist/github-post.js' });
    const read: string[] = [];
    readActionInputs((name) => (read.push(name), ''));
    expect(Object.keys(action.inputs).sort()).toEqual([...read].sort());
    expect(Object.keys(action.outputs).sort()).toEqual(['digest', 'imageid', 'images', 'metadata']);
  });

  it('task.json: Node20_1 and Node24 run the bundle beside it, inputs as read from INPUT_*', async () => {
    const task = JSON.parse(await readFile(path.join(root, 'azure', 'task.json'), 'utf8')) as {
      inputs: { name: string }[];
      outputVariables: { name: string }[];
      execution: Record<string, { target: string }>;
    };
    expect(Object.keys(task.execution).sort()).toEqual(['Node20_1', 'Node24']);
    for (const handler of Object.values(task.execution)) expect((await stat(path.join(root, 'azure', handler.target))).isFile()).toBe(true);
    const read = new Set<string>();
    const env = new Proxy({} as NodeJS.ProcessEnv, {
      get: (_target, key) => {
        if (typeof key === 'string' && key.startsWith('INPUT_')) read.add(key);
        return undefined;
      },
    });
    readTaskInputs(env, '/src');
    expect(task.inputs.map((input) => `INPUT_${input.name.toUpperCase()}`).sort()).toEqual([...read].sort());
    expect(task.outputVariables.map((v) => v.name)).toContain('digest');
  });
});

describe('the release workflow publishes the images the templates name', () => {
  it('passes only inputs action.yml declares, builds both targets, and tags what GitLab and Kubernetes pull', async () => {
    const action = parse(await readFile(path.join(root, 'action.yml'), 'utf8')) as { inputs: Record<string, unknown> };
    const workflow = parse(await readFile(path.join(root, '.github/workflows/release.yml'), 'utf8')) as {
      jobs: { 'executor-image': { strategy: { matrix: { include: { target: string; tags: string }[] } }; steps: { uses?: string; with?: Record<string, unknown> }[] } };
    };
    const job = workflow.jobs['executor-image'];
    const ownAction = job.steps.find((step) => step.uses === './');
    expect(Object.keys(ownAction?.with ?? {}).filter((name) => !(name in action.inputs))).toEqual([]);
    const dockerfile = await readFile(path.join(root, 'images/executor/Dockerfile'), 'utf8');
    const targets = job.strategy.matrix.include.map((entry) => entry.target);
    for (const target of targets) expect(dockerfile).toMatch(new RegExp(`^FROM .* AS ${target}$`, 'm'));
    const tags = job.strategy.matrix.include.flatMap((entry) => entry.tags.trim().split('\n'));
    // With the repository at kiln-build/kiln, these are the names the template and the example use.
    const published = tags.map((tag) => tag.replace('${{ github.repository }}', 'kiln-build/kiln'));
    const template = await readFile(path.join(root, 'gitlab/templates/kiln.yml'), 'utf8');
    const kubernetesJob = await readFile(path.join(root, 'examples/kubernetes/kiln-job.yaml'), 'utf8');
    expect(published).toContain(/default: (\S+)/.exec(template.slice(template.indexOf('image:')))?.[1]);
    expect(published).toContain(/image: (\S+)/.exec(kubernetesJob)?.[1]);
  });
});
