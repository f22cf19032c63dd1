import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { Duplex, type Readable, Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import { Decompress as FzstdDecompress } from 'fzstd';

/** How a layer blob is compressed. */
export type Compression = 'gzip' | 'zstd' | 'none';

export class ZstdUnavailableError extends Error {
  constructor(readonly reason: string) {
    super(`zstd is not available (${reason}): install zstd or run on Node 22.15+`);
    this.name = 'ZstdUnavailableError';
  }
}

export class CompressionToolError extends Error {
  constructor(
    readonly tool: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`${tool} failed${exitCode === null ? '' : ` (exit ${exitCode})`}: ${stderr.trim() || 'no message'}`);
    this.name = 'CompressionToolError';
  }
}

/**
 * node:zlib's zstd (Node >= 22.15 and 23.8). @types/node 20 does not declare it, so it is looked up
 * by feature detection; on Node 20 it is absent and kiln falls back (see {@link CompressionEnv}).
 */
export interface ZlibZstd {
  createZstdCompress(options?: { params?: Record<number, number> }): Transform;
  createZstdDecompress(): Transform;
}

export function nodeZstd(): ZlibZstd | undefined {
  const candidate = zlib as unknown as Partial<ZlibZstd>;
  if (typeof candidate.createZstdCompress === 'function' && typeof candidate.createZstdDecompress === 'function') {
    return candidate as ZlibZstd;
  }
  return undefined;
}

export function zstdLevelParameter(): number {
  const zlibConstants = zlib.constants as unknown as Record<string, number | undefined>;
  // ZSTD_c_compressionLevel is 100 in zstd's own API; Node exposes the same number.
  return zlibConstants['ZSTD_c_compressionLevel'] ?? 100;
}

/**
 * Where zstd comes from. Injected so tests can force each path on any Node.
 * - `node`: node:zlib's binding (Node 22.15+ / 24): in-process, fastest, nothing to install.
 * - `binary`: the `zstd` CLI through its stdin/stdout. On Node 20 this is the only way to compress.
 * - `fzstd`: pure JS, decompression only. Measured on this machine on a 780 MB tar: the zstd
 *   binary decompresses at ~1.2 GB/s, fzstd at ~175 MB/s, so fzstd is only the last resort when
 *   the binary is missing (it still beats failing the build on a zstd base image).
 */
export interface CompressionEnv {
  zstd?: 'auto' | 'node' | 'binary' | 'fzstd';
  /** The zstd executable (default `zstd` on PATH). */
  zstdBinary?: string;
}

/** Magic-byte sniffing: gzip 1f 8b, zstd frame 28 b5 2f fd; anything else is taken as plain tar. */
export function detectCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/** What a layer's media type claims, for the error message when it disagrees with the bytes. */
export function compressionOfMediaType(mediaType: string | undefined): Compression | undefined {
  if (mediaType === undefined) return undefined;
  if (mediaType.endsWith('+gzip') || mediaType.endsWith('.tar.gzip')) return 'gzip';
  if (mediaType.endsWith('+zstd')) return 'zstd';
  if (mediaType.endsWith('.tar') || mediaType.endsWith('.rootfs.diff.tar')) return 'none';
  return undefined;
}

/**
 * Reads the first bytes of `stream` without consuming them (they are unshifted back), so the
 * same stream can then be piped whole into the right decompressor.
 */
export async function peekBytes(stream: Readable, count: number): Promise<Buffer> {
  for (;;) {
    const chunk: Buffer | null = stream.read(count);
    if (chunk !== null) {
      stream.unshift(chunk);
      return chunk;
    }
    if (stream.readableEnded) return Buffer.alloc(0);
    if (stream.errored !== null) throw stream.errored;
    await new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        stream.off('readable', onReadable);
        stream.off('end', onReadable);
        stream.off('error', onError);
      };
      const onReadable = (): void => {
        cleanup();
        resolve();
      };
      const onError = (error: Error): void => {
        cleanup();
        reject(error);
      };
      stream.once('readable', onReadable);
      stream.once('end', onReadable);
      stream.once('error', onError);
    });
  }
}

/**
 * A child process's stdin/stdout as one duplex. Its readable side ends only once the process has
 * exited 0: a tool that fails after writing part of its output (corrupt input) fails the stream
 * with its stderr instead of ending it early and looking like success.
 */
class ChildProcessStream extends Duplex {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly stderr: Buffer[] = [];

  constructor(command: string, args: readonly string[], tool: string, missing: () => Error) {
    super();
    const child = spawn(command, [...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) child.stdout.pause();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (this.stderr.length < 64) this.stderr.push(chunk);
    });
    child.stdin.on('error', (error: NodeJS.ErrnoException) => {
      // EPIPE: the tool quit reading, so it is failing; its exit status and stderr tell why.
      if (error.code !== 'EPIPE') this.destroy(error);
    });
    child.on('error', (error: NodeJS.ErrnoException) => {
      this.destroy(error.code === 'ENOENT' ? missing() : error);
    });
    child.on('close', (code) => {
      if (code === 0) this.push(null);
      else this.destroy(new CompressionToolError(tool, code, Buffer.concat(this.stderr).toString('utf8')));
    });
  }

  override _read(): void {
    this.child.stdout.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.child.stdin.write(chunk)) callback();
    else this.child.stdin.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.child.stdin.end(() => callback());
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // A consumer that gives up early must not leave the child behind.
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill();
    callback(error);
  }
}

/** `missing` makes the error for a command that is not installed (default: names the command). */
export function processStream(
  command: string,
  args: readonly string[],
  tool: string,
  missing: () => Error = () => new CompressionToolError(tool, null, `${command} is not installed (not found on PATH)`),
): Duplex {
  return new ChildProcessStream(command, args, tool, missing);
}

/** fzstd's push-callback decompressor as a Transform. */
class FzstdTransform extends Transform {
  private readonly decoder = new FzstdDecompress((data) => {
    this.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  });

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.decoder.push(chunk);
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.decoder.push(new Uint8Array(0), true);
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback();
  }
}

/** Resolves `auto`: Node's zstd, else the binary; for decompression fzstd when no binary is found. */
export function zstdChoice(env: CompressionEnv, direction: 'compress' | 'decompress'): 'node' | 'binary' | 'fzstd' {
  const wanted = env.zstd ?? 'auto';
  if (wanted !== 'auto') return wanted;
  if (nodeZstd() !== undefined) return 'node';
  if (direction === 'decompress' && findExecutable(env.zstdBinary ?? 'zstd') === undefined) return 'fzstd';
  return 'binary';
}

/** The executable's path if `name` (a path, or a name looked up on PATH) can be run. */
export function findExecutable(name: string): string | undefined {
  const candidates = name.includes('/') ? [name] : (process.env['PATH'] ?? '').split(':').filter(Boolean).map((dir) => path.join(dir, name));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here (ENOENT/EACCES): try the next PATH entry; not finding it at all is reported by the caller
    }
  }
  return undefined;
}

/** Larger output chunks than zlib's 16 KiB default: fewer stream hops per megabyte. */
export const zlibChunkSize = 256 * 1024;

export function createDecompressor(compression: Compression, env: CompressionEnv = {}): Duplex {
  switch (compression) {
    case 'none':
      return new Transform({ transform: (chunk: Buffer, _e, cb) => cb(null, chunk) });
    case 'gzip':
      return zlib.createGunzip({ chunkSize: zlibChunkSize });
    case 'zstd': {
      const choice = zstdChoice(env, 'decompress');
      if (choice === 'node') {
        const binding = nodeZstd();
        if (binding === undefined) throw new ZstdUnavailableError(`node ${process.version} has no zlib zstd`);
        return binding.createZstdDecompress();
      }
      if (choice === 'fzstd') return new FzstdTransform();
      const binary = env.zstdBinary ?? 'zstd';
      return processStream(binary, ['-d', '-q', '-c', '--no-progress', '-'], 'zstd -d', () => new ZstdUnavailableError(`${binary} not found`));
    }
  }
}

/**
 * Sniffs the blob's compression from its first bytes and returns the uncompressed tar stream.
 * The magic bytes win over the media type: registries and older tools mislabel layers (a
 * `+gzip` media type on a plain tar is common), and Docker and containerd sniff too.
 */
export async function decompressedStream(
  blob: Readable,
  env: CompressionEnv = {},
): Promise<{ compression: Compression; tar: Readable }> {
  const head = await peekBytes(blob, 4);
  const compression = detectCompression(head);
  if (compression === 'none') return { compression, tar: blob };
  const decompressor = createDecompressor(compression, env);
  blob.on('error', (error) => decompressor.destroy(error));
  return { compression, tar: blob.pipe(decompressor) };
}
