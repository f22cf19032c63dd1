import { describe, expect, it } from 'vitest';
import {
  backoffDelay,
  decideRetry,
  isRetryableNetworkError,
  isRetryableStatus,
  parseRetryAfter,
  type RetryPolicy,
} from '../../../src/registry/retry.js';

const policy: RetryPolicy = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 1_000, maxRetryAfterMs: 30_000 };
const now = Date.parse('2026-01-01T00:00:00Z');

describe('retryable outcomes', () => {
  it('retries 429 and passing 5xx, not 4xx, 501 or 505', () => {
    expect([429, 500, 502, 503, 504].map(isRetryableStatus)).toEqual([true, true, true, true, true]);
    expect([400, 401, 403, 404, 501, 505].map(isRetryableStatus)).toEqual([false, false, false, false, false, false]);
  });

  it('retries dropped connections found anywhere in the cause chain, not TLS failures', () => {
    expect(isRetryableNetworkError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isRetryableNetworkError(new Error('fetch failed', { cause: Object.assign(new Error('x'), { code: 'UND_ERR_SOCKET' }) }))).toBe(true);
    expect(isRetryableNetworkError(Object.assign(new Error('bad cert'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }))).toBe(false);
    expect(isRetryableNetworkError('nope')).toBe(false);
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds', () => {
    expect(parseRetryAfter('3', now)).toBe(3_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
  });

  it('reads an HTTP date relative to the injected clock', () => {
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:07 GMT', now)).toBe(7_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
  });

  it('ignores absent or unreadable values', () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
  });
});

describe('backoffDelay', () => {
  it('doubles per failure within [step/2, step] and stops at the cap', () => {
    expect(backoffDelay(1, policy, 0)).toBe(50);
    expect(backoffDelay(1, policy, 0.999999)).toBe(100);
    expect(backoffDelay(2, policy, 0)).toBe(100);
    expect(backoffDelay(3, policy, 0.5)).toBe(300);
    expect(backoffDelay(10, policy, 0)).toBe(500);
    expect(backoffDelay(10, policy, 0.999999)).toBe(1_000);
  });
});

describe('decideRetry', () => {
  it('waits what Retry-After says on a 429 rather than the backoff', () => {
    expect(decideRetry(1, { kind: 'status', status: 429, retryAfter: '2' }, policy, now, 0)).toEqual({ retry: true, delayMs: 2_000 });
  });

  it('caps a very long Retry-After', () => {
    expect(decideRetry(1, { kind: 'status', status: 503, retryAfter: '3600' }, policy, now, 0)).toEqual({ retry: true, delayMs: 30_000 });
  });

  it('backs off on a 500 without Retry-After', () => {
    expect(decideRetry(2, { kind: 'status', status: 500 }, policy, now, 0)).toEqual({ retry: true, delayMs: 100 });
  });

  it('gives up after maxAttempts tries in all', () => {
    expect(decideRetry(3, { kind: 'status', status: 500 }, policy, now, 0).retry).toBe(true);
    expect(decideRetry(4, { kind: 'status', status: 500 }, policy, now, 0)).toEqual({ retry: false });
  });

  it('does not retry a client error or a non-network failure', () => {
    expect(decideRetry(1, { kind: 'status', status: 404 }, policy, now, 0)).toEqual({ retry: false });
    expect(decideRetry(1, { kind: 'network', error: new TypeError('bad url') }, policy, now, 0)).toEqual({ retry: false });
  });

  it('retries a refused connection with backoff', () => {
    const error = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(decideRetry(1, { kind: 'network', error }, policy, now, 0.5)).toEqual({ retry: true, delayMs: 75 });
  });
});
