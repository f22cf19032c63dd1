import { describe, expect, it } from 'vitest';
import { parseSourceDateEpoch } from '../../../src/build/executor.js';

describe('SOURCE_DATE_EPOCH', () => {
  it('is whole seconds, or absent', () => {
    expect(parseSourceDateEpoch('1700000000')).toBe(1_700_000_000);
    expect(parseSourceDateEpoch(undefined)).toBeUndefined();
    expect(parseSourceDateEpoch('')).toBeUndefined();
    expect(() => parseSourceDateEpoch('2023-01-01')).toThrow(/whole number of seconds/);
  });
});
