/**
 * Compression throughput: kiln's compressors vs the `gzip -6` and `zstd -3` command-line tools on
 * the same ~150 MB tar, and a whole writeLayer (walk + tar + two digests + compression) vs
 * `tar -czf`, all in this one invocation. Prints ratios (kiln time / tool time).
 * Run: npx tsx bench/compress.ts [MB]
 */
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Compression, createCompressor } from '../src/layer/compression.js';
import { writeLayer } from '../src/layer/write-layer.js';
import { nodeZstd } from '../src/rootfs/decompress.js';
import type { Change } from '../src/snapshot/change.js';
import { makeFixtureTree, median, timeAsync, timeCommand } from './fixture-tree.js';

const discard = (): Writable => new Writable({ write: (_chunk, _encoding, callback) => callback() });

async function allPaths(root: string, relative = ''): Promise<Change[]> {
  const changes: Change[] = [];
  const children = await readdir(path.join(root, relative), { withFileTypes: true });
  for (const child of children.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = relative === '' ? child.name : `${relative}/${child.name}`;
    changes.push({ kind: 'upsert', path: p });
    if (child.isDirectory()) changes.push(...(await allPaths(root, p)));
  }
  return changes;
}

async function main(): Promise<void> {
  const megabytes = Number(process.argv[2] ?? 150);
  const work = await mkdtemp(path.join(process.env['KILN_BENCH_DIR'] ?? os.tmpdir(), 'kiln-bench-compress-'));
  try {
    const source = path.join(work, 'source');
    const { files } = await makeFixtureTree(source, megabytes * 1024 * 1024);
    const tar = path.join(work, 'layer.tar');
    execFileSync('tar', ['-cf', tar, '-C', source, '.']);
    const tarBytes = (await stat(tar)).size;
    const mb = tarBytes / 1048576;
    console.log(`tar: ${files} files, ${mb.toFixed(0)} MB; zstd from ${nodeZstd() !== undefined ? 'node:zlib' : 'the zstd binary'} (node ${process.version})`);

    const rounds = 3;
    const compare = async (label: string, kiln: () => Promise<unknown>, tool: [string, string[]]) => {
      const kilnTimes: number[] = [];
      const toolTimes: number[] = [];
      for (let i = 0; i < rounds; i += 1) {
        toolTimes.push(timeCommand(...tool));
        kilnTimes.push(await timeAsync(kiln));
      }
      const [k, t] = [median(kilnTimes), median(toolTimes)];
      console.log(
        `${label.padEnd(28)} kiln ${k.toFixed(0).padStart(6)} ms (${(mb / (k / 1000)).toFixed(0)} MB/s)   ` +
          `${tool[0]} ${t.toFixed(0).padStart(6)} ms (${(mb / (t / 1000)).toFixed(0)} MB/s)   ratio ${(k / t).toFixed(2)}`,
      );
    };
    const compressFile = (compression: Compression, level: number) => () =>
      pipeline(createReadStream(tar, { highWaterMark: 1 << 20 }), createCompressor(compression, level), discard());

    await compare('gzip -6', compressFile('gzip', 6), ['sh', ['-c', `gzip -6 -c '${tar}' > /dev/null`]]);
    await compare('zstd -3', compressFile('zstd', 3), ['sh', ['-c', `zstd -3 -q -c '${tar}' > /dev/null`]]);

    const changes = await allPaths(source);
    const out = path.join(work, 'blobs');
    await mkdir(out);
    await compare(
      'writeLayer gzip vs tar -czf',
      async () => {
        const written = await writeLayer({ root: source, changes }, { compression: 'gzip', outputDir: out });
        if (written !== null) await rm(written.path);
      },
      ['tar', ['-czf', path.join(work, 'gnu.tar.gz'), '-C', source, '.']],
    );
    await compare(
      'writeLayer zstd vs tar --zstd',
      async () => {
        const written = await writeLayer({ root: source, changes }, { compression: 'zstd', outputDir: out });
        if (written !== null) await rm(written.path);
      },
      ['tar', ['--zstd', '-cf', path.join(work, 'gnu.tar.zst'), '-C', source, '.']],
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
