/**
 * When to try a registry request again, and how long to wait first. The decisions are pure
 * functions of (attempt, what happened, clock reading, random number) so they are tested without
 * waiting; the waiting itself goes through an injected `Clock`.
 */

export interface RetryPolicy {
  /** Total tries including the first one. */
  maxAttempts: number;
  /** Backoff before the second try; doubled for each further one. */
  baseDelayMs: number;
  /** Cap of the exponential backoff. */
  maxDelayMs: number;
  /** A `Retry-After` beyond this is cut down to it: a CI job should not sleep for an hour. */
  maxRetryAfterMs: number;
}

export const defaultRetryPolicy: RetryPolicy = {
  maxAttempts: 5,
  baseDelayMs: 250,
  maxDelayMs: 8_000,
  maxRetryAfterMs: 60_000,
};

export interface Clock {
  /** Milliseconds since the epoch (for token expiry and `Retry-After` dates). */
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** What a try ended with, as far as retrying cares. */
export type AttemptOutcome =
  | { kind: 'status'; status: number; retryAfter?: string | undefined }
  | { kind: 'network'; error: unknown };

export type RetryDecision = { retry: true; delayMs: number } | { retry: false };

/** 429 and the 5xx statuses that mean "not now" (501 and 505 mean "never"). */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599 && status !== 501 && status !== 505);
}

const retryableNetworkCodes = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/**
 * A dropped or refused connection is worth another try; a TLS verification failure, a bad URL or a
 * digest mismatch is not (trying again gives the same answer).
 */
export function isRetryableNetworkError(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current !== null && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && retryableNetworkCodes.has(code)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * `Retry-After` as milliseconds from `nowMs`: either delta-seconds or an HTTP date (RFC 9110
 * 10.2.3). Undefined when absent or unreadable; a date in the past gives 0.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // An HTTP date always names a month; Date.parse alone would read "-5" as a year.
  if (!/[A-Za-z]{3}/.test(text)) return undefined;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowMs);
}

/**
 * Exponential backoff with "equal jitter": half the step is fixed, half random, so concurrent
 * clients spread out but none retries immediately. `failures` counts failed tries so far (>= 1).
 */
export function backoffDelay(failures: number, policy: RetryPolicy, random: number): number {
  const step = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, failures - 1));
  return Math.round(step / 2 + (step / 2) * random);
}

/**
 * Decide after try number `attempt` (1-based) ended with `outcome`. `random` is in [0, 1).
 */
export function decideRetry(
  attempt: number,
  outcome: AttemptOutcome,
  policy: RetryPolicy,
  nowMs: number,
  random: number,
): RetryDecision {
  if (attempt >= policy.maxAttempts) return { retry: false };
  if (outcome.kind === 'network') {
    if (!isRetryableNetworkError(outcome.error)) return { retry: false };
    return { retry: true, delayMs: backoffDelay(attempt, policy, random) };
  }
  if (!isRetryableStatus(outcome.status)) return { retry: false };
  const retryAfter = parseRetryAfter(outcome.retryAfter, nowMs);
  if (retryAfter !== undefined) return { retry: true, delayMs: Math.min(retryAfter, policy.maxRetryAfterMs) };
  return { retry: true, delayMs: backoffDelay(attempt, policy, random) };
}
