/**
 * Unpack throughput: kiln's applyLayer vs GNU `tar -xzf` on the same ~150 MB tar.gz, both timed in
 * this one invocation, into fresh directories on the same filesystem. Prints the ratio (aim: <= 1.3).
 * Run: npx tsx bench/unpack.ts [MB] [mixed|small-files]
 */
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { applyLayer } from '../src/rootfs/unpack.js';
import { makeFixtureTree, median, timeAsync, timeCommand, type TreeShape } from './fixture-tree.js';

async function main(): Promise<void> {
  const megabytes = Number(process.argv[2] ?? 150);
  const shape = (process.argv[3] ?? 'mixed') as TreeShape;
  // KILN_BENCH_DIR=/dev/shm measures the unpackers rather than the disk's writeback.
  const work = await mkdtemp(path.join(process.env['KILN_BENCH_DIR'] ?? os.tmpdir(), 'kiln-bench-unpack-'));
  try {
    const source = path.join(work, 'source');
    const { files, bytes } = await makeFixtureTree(source, megabytes * 1024 * 1024, shape);
    const blob = path.join(work, 'layer.tar.gz');
    execFileSync('tar', ['-czf', blob, '-C', source, '.']);
    const blobSize = (await stat(blob)).size;
    console.log(`tree (${shape}): ${files} files, ${(bytes / 1048576).toFixed(0)} MB; tar.gz ${(blobSize / 1048576).toFixed(0)} MB`);
    execFileSync('sync');

    const tarTimes: number[] = [];
    const kilnTimes: number[] = [];
    for (let round = 0; round < 3; round += 1) {
      const byTar = path.join(work, `tar-${round}`);
      const byKiln = path.join(work, `kiln-${round}`);
      await mkdir(byTar);
      await mkdir(byKiln);
      // Alternate who goes first so neither always gets the warmer page cache.
      const runTar = async () => tarTimes.push(timeCommand('tar', ['-xzf', blob, '-C', byTar]));
      const runKiln = async () => kilnTimes.push(await timeAsync(() => applyLayer(byKiln, createReadStream(blob, { highWaterMark: 1 << 20 }), { layerName: 'bench' })));
      if (round % 2 === 0) {
        await runTar();
        execFileSync('sync');
        await runKiln();
      } else {
        await runKiln();
        execFileSync('sync');
        await runTar();
      }
      await rm(byTar, { recursive: true });
      await rm(byKiln, { recursive: true });
      // Let writeback of this round finish before the next: dirty pages otherwise bill the next run.
      execFileSync('sync');
    }
    const tarMs = median(tarTimes);
    const kilnMs = median(kilnTimes);
    const mbps = (ms: number) => ((bytes / 1048576) / (ms / 1000)).toFixed(0);
    console.log(`tar -xzf: ${tarMs.toFixed(0)} ms (${mbps(tarMs)} MB/s)  runs ${tarTimes.map((t) => t.toFixed(0)).join(', ')}`);
    console.log(`kiln:     ${kilnMs.toFixed(0)} ms (${mbps(kilnMs)} MB/s)  runs ${kilnTimes.map((t) => t.toFixed(0)).join(', ')}`);
    console.log(`ratio kiln/tar: ${(kilnMs / tarMs).toFixed(2)}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
