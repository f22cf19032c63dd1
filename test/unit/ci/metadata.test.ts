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
