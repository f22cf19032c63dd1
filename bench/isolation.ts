/**
 * In-place isolation against chroot isolation and buildah, same context and base, same invocation:
 * the Debian example context (COPY, RUN useradd/chown, WORKDIR, USER) built
 * - by the executor image under podman (runc, default capabilities: in-place, as a CI job runs it),
 *   less the time podman takes to start the same image for `--version` (the container's own cost);
 * - by the same bundle on the host with `--isolation chroot`;
 * - by buildah on the host (first build, and with the base already in its storage).
 * Run: npx tsx bench/isolation.ts
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runCommand, type CommandResult } from '../test/harness/command.js';
import { pushDebianImage } from '../test/harness/debian-image.js';
import { buildExecutorImages } from '../test/harness/executor-image.js';
import { PeerBuildah } from '../test/harness/peer-buildah.js';
import { Podman } from '../test/harness/podman.js';
import { startRegistry } from '../test/harness/registry.js';

/** A podman or process result that says the command failed (buildah's build throws instead). */
function failedCommand(value: unknown): value is CommandResult {
  return typeof value === 'object' && value !== null && 'exitCode' in value && (value as CommandResult).exitCode !== 0;
}

async function time(label: string, work: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  const result = await work();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (failedCommand(result)) throw new Error(`${label} failed:\n${result.stderr}`);
  console.log(`${label.padEnd(52)} ${seconds.toFixed(2)} s`);
  return seconds;
}

const work = await mkdtemp(path.join(os.tmpdir(), 'kiln-bench-isolation-'));
const registry = await startRegistry('plain');
const podman = await Podman.create();
const buildah = await PeerBuildah.create();
try {
  const images = await buildExecutorImages({ registry, work });
  const base = (await pushDebianImage({ registry: registry.host, skopeoDestArgs: registry.skopeoDestArgs() })).reference;
  const context = path.join(work, 'example');
  await cp(path.resolve(import.meta.dirname, '../test/fixtures/contexts/debian-example'), context, { recursive: true });
  const dockerfile = path.join(context, 'Dockerfile');
  await writeFile(dockerfile, (await readFile(dockerfile, 'utf8')).replace(/^FROM \S+/m, `FROM ${base}`));
  await podman.pull(images.executor.reference, registry);

  const inPlace = (tag: string) => () =>
    podman.run(images.executor.reference, {
      registry,
      network: 'host',
      extraArgs: ['--volume', `${context}:/workspace:ro`],
      command: ['--context', '/workspace', '--destination', `${registry.host}/bench/in-place:${tag}`, '--isolation', 'in-place'],
      timeoutMs: 600_000,
    });
  const startOnly = await time('podman run executor --version (start-up only)', () => podman.run(images.executor.reference, { registry, command: ['--version'] }));
  const inPlaceSeconds = (await time('kiln in-place, in the executor image under podman', inPlace('1'))) - startOnly;
  const chrootSeconds = await time('kiln chroot, on the host', () =>
    runCommand(process.execPath, [
      path.join(images.bundleDir, 'cli.js'),
      '--context', context,
      '--destination', `${registry.host}/bench/chroot:1`,
      '--isolation', 'chroot',
      '--kaniko-dir', path.join(work, 'kiln'),
    ]),
  );
  const buildahCold = await time('buildah (first build)', () => buildah.build({ context, destination: `${registry.host}/bench/buildah:cold`, registry }));
  const buildahWarm = await time('buildah (base already pulled)', () => buildah.build({ context, destination: `${registry.host}/bench/buildah:warm`, registry }));
  console.log(`in-place build less container start-up: ${inPlaceSeconds.toFixed(2)} s`);
  console.log(`ratio in-place/chroot: ${(inPlaceSeconds / chrootSeconds).toFixed(2)}`);
  console.log(`ratio in-place/buildah cold: ${(inPlaceSeconds / buildahCold).toFixed(2)}  (warm ${(inPlaceSeconds / buildahWarm).toFixed(2)})`);
} finally {
  await buildah.dispose();
  await podman.dispose();
  await registry.stop();
  await rm(work, { recursive: true, force: true });
}
