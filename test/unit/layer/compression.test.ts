import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  type Compression,
  type CompressionEnv,
  ZstdUnavailableError,
  createCompressor,
  createDecompressor,
  decompressedStream,
  detectCompression,
} from '../../../src/layer/compression.js';
import { nodeZstd, processStream } from '../../../src/rootfs/decompress.js';

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

async function roundTrip(data: Buffer, compression: Compression, compress: CompressionEnv, decompress: CompressionEnv, level?: number) {
  const compressed = await collect(Readable.from([data]).pipe(createCompressor(compression, level, compress)));
  const { compression: detected, tar } = await decompressedStream(Readable.from([compressed]), decompress);
  return { compressed, detected, restored: await collect(tar) };
}

// Compressible but not trivial: repeated random blocks.
const block = randomBytes(64 * 1024);
const data = Buffer.concat(Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? randomBytes(16 * 1024) : block)));

describe('compression', () => {
  it('detects gzip, zstd and plain tar by magic bytes', () => {
    expect(detectCompression(Buffer.from([0x1f, 0x8b, 8, 0]))).toBe('gzip');
    expect(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))).toBe('zstd');
    expect(detectCompression(Buffer.from('usr/'))).toBe('none');
    expect(detectCompression(Buffer.alloc(0))).toBe('none');
  });

  it('round-trips gzip at different levels, and the level matters', async () => {
    const fast = await roundTrip(data, 'gzip', {}, {}, 1);
    const best = await roundTrip(data, 'gzip', {}, {}, 9);
    expect(fast.detected).toBe('gzip');
    expect(fast.restored.equals(data)).toBe(true);
    expect(best.restored.equals(data)).toBe(true);
    expect(best.compressed.equals(fast.compressed)).toBe(false);
  });

  const zstdWays: [string, CompressionEnv, CompressionEnv][] = [
    ['binary → binary', { zstd: 'binary' }, { zstd: 'binary' }],
    ['binary → fzstd', { zstd: 'binary' }, { zstd: 'fzstd' }],
    ['auto → auto', {}, {}],
  ];
  if (nodeZstd() !== undefined) zstdWays.push(['node → fzstd', { zstd: 'node' }, { zstd: 'fzstd' }]);
  for (const [label, compress, decompress] of zstdWays) {
    it(`round-trips zstd (${label})`, async () => {
      const result = await roundTrip(data, 'zstd', compress, decompress, 3);
      expect(result.detected).toBe('zstd');
      expect(result.restored.equals(data)).toBe(true);
      expect(result.compressed.length).toBeLessThan(data.length / 2);
    });
  }

  it('passes a plain tar through untouched', async () => {
    const { compression: detected, tar } = await decompressedStream(Readable.from([data]));
    expect(detected).toBe('none');
    expect((await collect(tar)).equals(data)).toBe(true);
  });

  it('says how to get zstd when the binary is missing', () => {
    expect(() => createCompressor('zstd', 3, { zstd: 'binary', zstdBinary: '/nonexistent/zstd' })).toThrow(ZstdUnavailableError);
    expect(() => createCompressor('zstd', 3, { zstd: 'binary', zstdBinary: '/nonexistent/zstd' })).toThrow(/install zstd or run on Node 22\.15\+/);
  });

  it('fails the stream on corrupt zstd input instead of ending it', async () => {
    const corrupt = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), randomBytes(1000)]);
    for (const env of [{ zstd: 'binary' }, { zstd: 'fzstd' }] as CompressionEnv[]) {
      await expect(collect(Readable.from([corrupt]).pipe(createDecompressor('zstd', env)))).rejects.toThrow();
    }
  });
});

describe('processStream', () => {
  it('names a missing tool in its error', async () => {
    const stream = processStream('/nonexistent/bzip2', ['-d'], 'bzip2 -d');
    await expect(collect(Readable.from([Buffer.from('x')]).pipe(stream))).rejects.toThrow(/bzip2 -d failed: \/nonexistent\/bzip2 is not installed/);
  });
});
