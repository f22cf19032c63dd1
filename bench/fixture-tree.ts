import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * A generated root filesystem shaped like a distro image: many small files, some medium, a few big
 * ones; text-like content that compresses about 2:1 with gzip and zstd alike (random words from a 64k vocabulary), so the
 * gzip/zstd work is realistic rather than trivial.
 */
export type TreeShape = 'mixed' | 'small-files';

export async function makeFixtureTree(root: string, targetBytes: number, shape: TreeShape = 'mixed'): Promise<{ files: number; bytes: number }> {
  let seed = 42;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const vocabulary = Array.from({ length: 65536 }, () => Math.floor(random() * 0xffffffff).toString(36));
  const text = (size: number): Buffer => {
    const parts: string[] = [];
    let length = 0;
    while (length < size) {
      const word = vocabulary[Math.floor(random() * vocabulary.length)] as string;
      parts.push(word);
      length += word.length + 1;
    }
    return Buffer.from(parts.join(' ').slice(0, size));
  };
  let bytes = 0;
  let files = 0;
  for (let dir = 0; bytes < targetBytes; dir += 1) {
    const directory = path.join(root, `usr/share/pkg${dir % 40}/sub${dir}`);
    await mkdir(directory, { recursive: true });
    for (let i = 0; i < 60 && bytes < targetBytes; i += 1) {
      const roll = random();
      const size = shape === 'small-files' ? Math.floor(random() * 8_192) : roll < 0.8 ? Math.floor(random() * 16_384) : roll < 0.98 ? Math.floor(random() * 262_144) : Math.floor(random() * 4_194_304);
      await writeFile(path.join(directory, `file${i}.dat`), text(size));
      bytes += size;
      files += 1;
    }
  }
  return { files, bytes };
}

export function timeCommand(command: string, args: string[]): number {
  const start = process.hrtime.bigint();
  execFileSync(command, args, { stdio: ['ignore', 'ignore', 'inherit'], maxBuffer: 1 << 30 });
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export async function timeAsync(run: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}
