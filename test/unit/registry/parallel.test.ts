import { describe, expect, it } from 'vitest';
import { forEachLimited } from '../../../src/registry/parallel.js';

/** A task that waits until the test lets it finish, so concurrency is observed without timers. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

describe('forEachLimited', () => {
  it('never has more than the limit in flight and runs every item', async () => {
    const gates = Array.from({ length: 7 }, gate);
    let inFlight = 0;
    let peak = 0;
    const done: number[] = [];
    const run = forEachLimited(gates, 3, async (g, i) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await g.promise;
      inFlight--;
      done.push(i);
    });
    for (const g of gates) {
      await Promise.resolve();
      await Promise.resolve();
      g.open();
    }
    await run;
    expect(peak).toBe(3);
    expect(done.sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('starts nothing new after a failure, waits for the rest, and throws the first error', async () => {
    const started: number[] = [];
    const error = await forEachLimited([0, 1, 2, 3, 4, 5], 2, async (item) => {
      started.push(item);
      if (item === 1) throw new Error('item 1 failed');
      await Promise.resolve();
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe('item 1 failed');
    expect(started.length).toBeLessThan(6);
  });

  it('handles an empty list', async () => {
    await expect(forEachLimited([], 4, async () => undefined)).resolves.toBeUndefined();
  });
});
