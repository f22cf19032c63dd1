import { describe, expect, it } from 'vitest';
import { RootPaths } from '../../../src/rootfs/root-paths.js';

describe('RootPaths', () => {
  const paths = new RootPaths(['var/run', 'etc/hosts', 'kiln']);

  it('covers a path and everything below it, by whole components', () => {
    expect(paths.covers('var/run')).toBe(true);
    expect(paths.covers('var/run/x')).toBe(true);
    expect(paths.covers('var/run/x/y')).toBe(true);
    expect(paths.covers('var/running')).toBe(false);
    expect(paths.covers('var/runx/y')).toBe(false);
    expect(paths.covers('var')).toBe(false);
    expect(paths.covers('kilnx')).toBe(false);
    expect(paths.covers('etc/hosts.allow')).toBe(false);
    expect(paths.covers('')).toBe(false);
  });

  it('tells which paths hold one of the set strictly below them, the root holding all', () => {
    expect(paths.holdsBelow('')).toBe(true);
    expect(paths.holdsBelow('var')).toBe(true);
    expect(paths.holdsBelow('etc')).toBe(true);
    // Itself is not below itself, and a prefix of a component is not an ancestor.
    expect(paths.holdsBelow('var/run')).toBe(false);
    expect(paths.holdsBelow('va')).toBe(false);
    expect(paths.holdsBelow('et')).toBe(false);
    expect(paths.holdsBelow('usr')).toBe(false);
    expect(paths.holdsBelow('var/run/x')).toBe(false);
    expect(new RootPaths([]).holdsBelow('')).toBe(false);
  });

  it('knows its exact members and lists them sorted', () => {
    expect(paths.has('var/run')).toBe(true);
    expect(paths.has('var/run/x')).toBe(false);
    expect(paths.list()).toEqual(['etc/hosts', 'kiln', 'var/run']);
  });
});
