import { Duplex, Transform } from 'node:stream';
import zlib from 'node:zlib';
import {
  type Compression,
  type CompressionEnv,
  findExecutable,
  nodeZstd,
  processStream,
  ZstdUnavailableError,
  zlibChunkSize,
  zstdChoice,
  zstdLevelParameter,
} from '../rootfs/decompress.js';

// Decompression and magic-byte sniffing live in rootfs/ (unpacking needs them, and rootfs/ may not
// import layer/); they are re-exported here so callers find both directions in one place.
export {
  type Compression,
  type CompressionEnv,
  CompressionToolError,
  compressionOfMediaType,
  createDecompressor,
  decompressedStream,
  detectCompression,
  ZstdUnavailableError,
} from '../rootfs/decompress.js';

export const defaultCompressionLevel: Record<Exclude<Compression, 'none'>, number> = { gzip: 6, zstd: 3 };

export function createCompressor(compression: Compression, level?: number, env: CompressionEnv = {}): Duplex {
  switch (compression) {
    case 'none':
      return new Transform({ transform: (chunk: Buffer, _e, cb) => cb(null, chunk) });
    case 'gzip':
      return zlib.createGzip({ level: level ?? defaultCompressionLevel.gzip, chunkSize: zlibChunkSize });
    case 'zstd': {
      const zstdLevel = level ?? defaultCompressionLevel.zstd;
      const choice = zstdChoice(env, 'compress');
      if (choice === 'node') {
        const binding = nodeZstd();
        if (binding === undefined) throw new ZstdUnavailableError(`node ${process.version} has no zlib zstd`);
        return binding.createZstdCompress({ params: { [zstdLevelParameter()]: zstdLevel } });
      }
      if (choice === 'fzstd') throw new ZstdUnavailableError('fzstd only decompresses');
      const binary = env.zstdBinary ?? 'zstd';
      if (findExecutable(binary) === undefined) throw new ZstdUnavailableError(`no ${binary} executable found`);
      // Single-threaded on purpose: the output then does not depend on the machine's core count.
      return processStream(binary, [`-${zstdLevel}`, '-q', '-c', '--no-progress', '-'], 'zstd', () => new ZstdUnavailableError(`${binary} not found`));
    }
  }
}

