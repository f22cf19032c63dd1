import { describe, expect, it } from 'vitest';
import { createProgress, formatBytes } from '../../../src/build/progress.js';
import { unsupportedOptions } from '../../../src/build/unsupported.js';
import type { BuildOptions } from '../../../src/build/options.js';

function capture(settings: Parameters<typeof createProgress>[1]): { lines: string[]; progress: ReturnType<typeof createProgress> } {
  const lines: string[] = [];
  let t = 0;
  const progress = createProgress((text) => lines.push(text), settings, () => (t += 1500), () => new Date(0));
  return { lines, progress };
}

describe('build progress', () => {
  it('prints each step and how long it took', () => {
    const { lines, progress } = capture({ verbosity: 'info', format: 'text', timestamp: false });
    progress.step('[app] 3: RUN make')('layer 1.2 MiB');
    expect(lines).toEqual(['[app] 3: RUN make\n', '  layer 1.2 MiB in 1.50 s\n']);
  });

  it("honours kaniko's --log-format json, --log-timestamp and quiet verbosities", () => {
    const json = capture({ verbosity: 'debug', format: 'json', timestamp: false });
    json.progress.info('hello');
    expect(JSON.parse(json.lines[0] ?? '')).toEqual({ level: 'info', msg: 'hello', time: '1970-01-01T00:00:00.000Z' });
    const stamped = capture({ verbosity: 'info', format: 'text', timestamp: true });
    stamped.progress.info('hello');
    expect(stamped.lines).toEqual(['1970-01-01T00:00:00.000Z hello\n']);
    const quiet = capture({ verbosity: 'error', format: 'text', timestamp: false });
    quiet.progress.info('hidden');
    expect(quiet.lines).toEqual([]);
  });

  it('formats sizes', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(300 * 1024 * 1024)).toBe('300 MiB');
  });
});

describe('flags kiln cannot honour yet', () => {
  it('are refused with a reason, never ignored', () => {
    const options = { cache: true, isolation: 'in-place', pushIgnoreImmutableTagErrors: true } as BuildOptions;
    const problems = unsupportedOptions(options);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/--cache/);
    expect(problems[1]).toMatch(/--push-ignore-immutable-tag-errors/);
    expect(unsupportedOptions({ cache: false, isolation: 'in-place', pushIgnoreImmutableTagErrors: false } as BuildOptions)).toEqual([]);
  });
});
