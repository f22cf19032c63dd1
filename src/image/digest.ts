import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

const digestPattern = /^sha256:[a-f0-9]{64}$/;

export class DigestMismatchError extends Error {
  constructor(
    readonly what: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`${what}: content digest ${actual} does not match the expected ${expected}`);
    this.name = 'DigestMismatchError';
  }
}

export function isDigest(value: string): boolean {
  return digestPattern.test(value);
}

export function sha256Digest(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/**
 * A pass-through stream that hashes and counts what flows through it, so a digest and size come
 * out of the same single pass that moves the bytes.
 */
export class DigestingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private byteCount = 0;
  private result: string | undefined;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.byteCount += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.result = `sha256:${this.hash.digest('hex')}`;
    callback();
  }

  /** Available once the stream has ended. */
  get digest(): string {
    if (this.result === undefined) throw new Error('digest read before the stream ended');
    return this.result;
  }

  get size(): number {
    return this.byteCount;
  }
}

/**
 * A pass-through stream that fails (instead of ending) when the bytes do not hash to `expected`,
 * or when their count differs from `expectedSize`: consumers never see a silently corrupt blob end.
 */
export class VerifyingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private byteCount = 0;

  constructor(
    private readonly expected: string,
    private readonly what: string,
    private readonly expectedSize?: number,
  ) {
    super();
    if (!expected.startsWith('sha256:')) {
      throw new Error(`${what}: unsupported digest algorithm in ${expected}`);
    }
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.byteCount += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    const actual = `sha256:${this.hash.digest('hex')}`;
    if (actual !== this.expected) {
      callback(new DigestMismatchError(this.what, this.expected, actual));
      return;
    }
    if (this.expectedSize !== undefined && this.byteCount !== this.expectedSize) {
      callback(new Error(`${this.what}: got ${this.byteCount} bytes, the descriptor says ${this.expectedSize}`));
      return;
    }
    callback();
  }
}

/** Throws unless `data` hashes to `expected`. */
export function verifyDigest(data: Buffer, expected: string, what: string): void {
  const actual = sha256Digest(data);
  if (actual !== expected) throw new DigestMismatchError(what, expected, actual);
}
