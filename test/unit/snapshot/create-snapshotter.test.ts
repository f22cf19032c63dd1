import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CommandRunner } from '../../../src/rootfs/command-runner.js';
import { createSnapshotter } from '../../../src/snapshot/create-snapshotter.js';

describe('createSnapshotter', () => {
  let scratch: string;
  beforeEach(() => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-snap-'));
  });
  afterEach(() => fs.rmSync(scratch, { recursive: true, force: true }));

  it('auto falls back to redo when the probe mount fails, and logs why', async () => {
    const calls: string[] = [];
    const run: CommandRunner = async (command, args) => {
      calls.push(`${command} ${args.join(' ')}`);
      return { exitCode: 32, stdout: '', stderr: 'mount: permission denied\n' };
    };
    const messages: string[] = [];
    const snapshotter = await createSnapshotter({ mode: 'auto', scratchDir: scratch, run, logger: { info: (m) => messages.push(m) } });
    expect(snapshotter.mode).toBe('redo');
    expect(messages).toEqual(['snapshot mode auto: using redo (overlay mount failed: mount: permission denied)']);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatch(/^mount -t overlay overlay -o lowerdir=.*,redirect_dir=off,metacopy=off,index=off /);
    expect(fs.readdirSync(scratch)).toEqual([]);
  });

  it('auto falls back when getfattr is missing', async () => {
    const run: CommandRunner = async (command) => {
      if (command === 'getfattr') throw Object.assign(new Error('spawn getfattr ENOENT'), { code: 'ENOENT' });
      return { exitCode: 0, stdout: '', stderr: '' };
    };
    const messages: string[] = [];
    const snapshotter = await createSnapshotter({ mode: 'auto', scratchDir: scratch, run, logger: { info: (m) => messages.push(m) } });
    expect(snapshotter.mode).toBe('redo');
    expect(messages[0]).toContain('getfattr (Debian package "attr") is missing');
  });

  it('gives the named mode without probing', async () => {
    const run: CommandRunner = async () => {
      throw new Error('must not run');
    };
    for (const mode of ['full', 'redo', 'time', 'overlay'] as const) {
      expect((await createSnapshotter({ mode, scratchDir: scratch, run })).mode).toBe(mode);
    }
  });
});

describe('auto with an in-place root', () => {
  it('uses redo when the scratch dir lies inside the root, without probing', async () => {
    const run: CommandRunner = async () => {
      throw new Error('must not run');
    };
    const messages: string[] = [];
    const snapshotter = await createSnapshotter({ mode: 'auto', root: '/', scratchDir: '/kaniko/snap', run, logger: { info: (m) => messages.push(m) } });
    expect(snapshotter.mode).toBe('redo');
    expect(messages[0]).toContain('lies inside the root /');
  });
});
