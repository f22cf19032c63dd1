/**
 * Test layers generated in the test itself: a tar built with tar-stream (every header field set, so
 * the bytes are the same on every run), gzip-compressed with zlib, written to a file, with its
 * diffID and digest computed from the bytes.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { sha256Digest } from '../../src/image/digest.js';
import { FileLayer } from '../../src/image/file-layer.js';
import { MediaType } from '../../src/image/media-types.js';
import type { ImageConfig } from '../../src/image/types.js';

export interface TestFile {
  name: string;
  content?: string | Buffer;
  type?: 'file' | 'directory' | 'symlink';
  linkname?: string;
  mode?: number;
}

export async function makeTar(files: readonly TestFile[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const file of files) {
    const type = file.type ?? 'file';
    const data = type === 'file' ? Buffer.from(file.content ?? '') : Buffer.alloc(0);
    await new Promise<void>((resolve, reject) => {
      pack.entry(
        {
          name: file.name,
          type,
          size: data.length,
          mode: file.mode ?? (type === 'directory' ? 0o755 : 0o644),
          mtime: new Date(1_700_000_000_000),
          uid: 0,
          gid: 0,
          uname: 'root',
          gname: 'root',
          ...(file.linkname !== undefined ? { linkname: file.linkname } : {}),
        },
        data,
        (error) => (error ? reject(error) : resolve()),
      );
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export interface WrittenLayer {
  layer: FileLayer;
  tar: Buffer;
  blob: Buffer;
}

/** A gzip layer (or an uncompressed one) in `dir`, named by its digest. */
export async function writeTestLayer(dir: string, files: readonly TestFile[], compression: 'gzip' | 'none' = 'gzip'): Promise<WrittenLayer> {
  const tarBytes = await makeTar(files);
  const blob = compression === 'gzip' ? gzipSync(tarBytes, { level: 6 }) : tarBytes;
  const digest = sha256Digest(blob);
  const file = path.join(dir, `${digest.slice(7)}.layer`);
  await writeFile(file, blob);
  const layer = new FileLayer({
    path: file,
    descriptor: { mediaType: compression === 'gzip' ? MediaType.ociLayerGzip : MediaType.ociLayer, digest, size: blob.length },
    diffId: sha256Digest(tarBytes),
  });
  return { layer, tar: tarBytes, blob };
}

export function testConfig(overrides: Partial<ImageConfig> = {}): ImageConfig {
  return {
    architecture: 'amd64',
    os: 'linux',
    created: '2024-01-02T03:04:05Z',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [] },
    history: [{ created: '2024-01-02T03:04:05Z', created_by: 'kiln test' }],
    ...overrides,
  };
}

export async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
