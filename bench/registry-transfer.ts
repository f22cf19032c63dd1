/**
 * Pull and push of a ~200 MB multi-layer image: kiln (the bundled CLI) vs `skopeo copy`, in the same
 * invocation, each push into a fresh registry so neither side finds blobs already there.
 * Run: npm run build && npx tsx bench/registry-transfer.ts [megabytes]
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { writeImageToLayout } from '../src/layout/oci-layout.js';
import { generateImage } from '../test/harness/generated-image.js';
import { startRegistry } from '../test/harness/registry.js';

const run = promisify(execFile);
const cli = path.resolve(import.meta.dirname, '../dist/cli.js');
const totalMegabytes = Number(process.argv[2] ?? 200);
const layerCount = 4;

async function timed(label: string, command: string, args: string[]): Promise<number> {
  const start = process.hrtime.bigint();
  await run(command, args, { maxBuffer: 16 * 1024 * 1024 });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(`${label.padEnd(34)} ${seconds.toFixed(2)} s`);
  return seconds;
}

const work = await mkdtemp(path.join(os.tmpdir(), 'kiln-bench-transfer-'));
const source = await startRegistry('plain');
try {
  const perLayer = Math.round((totalMegabytes * 1024 * 1024) / layerCount);
  const image = await generateImage(work, {
    layers: Array.from({ length: layerCount }, (_, i) => [{ name: `data/layer-${i}.bin`, content: { randomBytes: perLayer } }]),
  });
  const layout = path.join(work, 'layout');
  await writeImageToLayout(layout, image, { tag: 'big' });
  await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:big`, `docker://${source.host}/big:1`]);
  console.log(`image: ${layerCount} layers, ${(image.layers.reduce((n, l) => n + l.descriptor.size, 0) / 1e6).toFixed(0)} MB compressed`);

  const kilnPull = await timed('pull  kiln copy → oci:', process.execPath, [cli, 'copy', `${source.host}/big:1`, `oci:${work}/pull-kiln:big`]);
  const skopeoPull = await timed('pull  skopeo copy → oci:', 'skopeo', ['copy', '--src-tls-verify=false', `docker://${source.host}/big:1`, `oci:${work}/pull-skopeo:big`]);

  const kilnTarget = await startRegistry('plain');
  const skopeoTarget = await startRegistry('plain');
  try {
    const kilnPush = await timed('push  kiln copy oci: →', process.execPath, [cli, 'copy', `oci:${layout}:big`, `${kilnTarget.host}/big:1`]);
    const skopeoPush = await timed('push  skopeo copy oci: →', 'skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:big`, `docker://${skopeoTarget.host}/big:1`]);
    console.log(`ratio pull kiln/skopeo: ${(kilnPull / skopeoPull).toFixed(2)}  (below 1 = kiln faster)`);
    console.log(`ratio push kiln/skopeo: ${(kilnPush / skopeoPush).toFixed(2)}`);
  } finally {
    await Promise.all([kilnTarget.stop(), skopeoTarget.stop()]);
  }
} finally {
  await source.stop();
  await rm(work, { recursive: true, force: true });
}
