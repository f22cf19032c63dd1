/**
 * A whole build, kiln vs buildah (the peer installable here), same context and base, same invocation:
 * the Debian example context (COPY, RUN useradd/chown, WORKDIR, USER), then a COPY-only build.
 * kiln is timed per snapshot mode. Run: npm run build && npx tsx bench/build.ts
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pushDebianImage } from '../test/harness/debian-image.js';
import { PeerBuildah } from '../test/harness/peer-buildah.js';
import { startRegistry } from '../test/harness/registry.js';

const run = promisify(execFile);
const cli = path.resolve(import.meta.dirname, '../dist/cli.js');

async function time(label: string, work: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await work();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(`${label.padEnd(44)} ${seconds.toFixed(2)} s`);
  return seconds;
}

const work = await mkdtemp(path.join(os.tmpdir(), 'kiln-bench-build-'));
const registry = await startRegistry('plain');
const buildah = await PeerBuildah.create();
try {
  const base = (await pushDebianImage({ registry: registry.host, skopeoDestArgs: registry.skopeoDestArgs() })).reference;
  const example = path.join(work, 'example');
  await cp(path.resolve(import.meta.dirname, '../test/fixtures/contexts/debian-example'), example, { recursive: true });
  const dockerfile = path.join(example, 'Dockerfile');
  await writeFile(dockerfile, (await readFile(dockerfile, 'utf8')).replace(/^FROM \S+/m, `FROM ${base}`));
  const copyOnly = path.join(work, 'copy-only');
  await cp(example, copyOnly, { recursive: true });
  await writeFile(path.join(copyOnly, 'Dockerfile'), `FROM ${base}\nCOPY hello.txt /app/hello.txt\nCMD ["cat", "/app/hello.txt"]\n`);

  const kiln = (context: string, tag: string, mode: string) => () =>
    run(process.execPath, [cli, '--context', context, '--destination', `${registry.host}/bench/kiln:${tag}`, '--snapshot-mode', mode, '--kaniko-dir', path.join(work, 'kiln')]);
  const peer = (context: string, tag: string) => () => buildah.build({ context, destination: `${registry.host}/bench/buildah:${tag}`, registry });

  const buildahCold = await time('buildah (overlay storage, first build)', peer(example, 'cold'));
  const buildahWarm = await time('buildah (base already pulled)', peer(example, 'warm'));
  const results: Record<string, number> = {};
  for (const mode of ['full', 'redo', 'overlay']) results[mode] = await time(`kiln --snapshot-mode ${mode}`, kiln(example, mode, mode));
  const kilnCopyOnly = await time('kiln COPY-only build', kiln(copyOnly, 'copy-only', 'full'));
  const buildahCopyOnly = await time('buildah COPY-only build (base pulled)', peer(copyOnly, 'copy-only'));
  for (const [mode, seconds] of Object.entries(results)) {
    console.log(`ratio kiln ${mode}/buildah warm: ${(seconds / buildahWarm).toFixed(2)}  (cold ${(seconds / buildahCold).toFixed(2)})`);
  }
  console.log(`ratio COPY-only kiln/buildah: ${(kilnCopyOnly / buildahCopyOnly).toFixed(2)}  (below 1 = kiln faster)`);
} finally {
  await buildah.dispose();
  await registry.stop();
  await rm(work, { recursive: true, force: true });
}
