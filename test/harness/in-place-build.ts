/**
 * In-place isolation against a root directory of the test's own instead of "/": a registry with a
 * busybox base, the root holding kiln's runtime (kiln/, from the host's setpriv) and kiln's work
 * directory (kiln/work), and builds whose context (workspace/) lies in the root, as a job
 * container's checkout does, with the isolation probes saying "in a container, no namespaces".
 * The step's working directory is inside the root while its programs (/bin/sh, cat) are the host's:
 * RUN commands must use paths relative to it.
 *
 *   const fixture = await startInPlaceFixture();
 *   const { result, log } = await buildInPlace(fixture, 'FROM BASE\nRUN echo hi > hi.txt\n', 'repo:tag');
 *   await fixture.stop();
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { executeBuild, type BuildResult } from '../../src/build/executor.js';
import type { IsolationProbes } from '../../src/build/in-place.js';
import { buildOptionsFromArguments } from '../../src/ci/cli-options.js';
import { withRegistryAccess } from '../../src/cli/registry-access.js';
import { pushBusyboxImage } from './base-images.js';
import { makeKilnRuntimeDir } from './kiln-runtime-dir.js';
import { startRegistry, type TestRegistry } from './registry.js';

export const inAContainer: IsolationProbes = { inContainer: async () => true, namespacesUnavailable: async () => 'no CAP_SYS_ADMIN (test)' };

export interface InPlaceFixture {
  registry: TestRegistry;
  /** The test's scratch directory, outside the root (HOME lives here). */
  work: string;
  /** The root builds replace. */
  root: string;
  /** The busybox base image; `BASE` in a Dockerfile stands for it. */
  base: string;
  stop(): Promise<void>;
}

export async function startInPlaceFixture(): Promise<InPlaceFixture> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'kiln-in-place-'));
  const registry = await startRegistry('plain');
  const stop = async (): Promise<void> => {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  };
  try {
    const base = (await pushBusyboxImage({ registry: registry.host, skopeoDestArgs: registry.skopeoDestArgs() })).reference;
    const root = path.join(work, 'root');
    await makeKilnRuntimeDir(path.join(root, 'kiln'));
    return { registry, work, root, base, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

export interface InPlaceBuild {
  /** `BASE` is replaced by the fixture's base image. */
  dockerfile: string;
  /** `repository:tag`, pushed to the fixture's registry. */
  tag: string;
  /** More kiln flags (`--secret …`, `--cleanup`). */
  flags?: readonly string[];
  /** Files of the context besides the Dockerfile, by relative path. */
  files?: Readonly<Record<string, string>>;
  /** More of kiln's environment (variables `--secret env=` reads). */
  env?: Readonly<Record<string, string>>;
}

/** The context is the root's workspace/, and kiln's work directory kiln/work, both protected there. */
export async function buildInPlace(fixture: InPlaceFixture, build: InPlaceBuild): Promise<{ result: BuildResult; log: string }> {
  const context = path.join(fixture.root, 'workspace');
  await mkdir(context, { recursive: true });
  await writeFile(path.join(context, 'Dockerfile'), build.dockerfile.replaceAll('BASE', fixture.base));
  for (const [relative, content] of Object.entries(build.files ?? {})) {
    await mkdir(path.dirname(path.join(context, relative)), { recursive: true });
    await writeFile(path.join(context, relative), content);
  }
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: path.join(fixture.work, 'home'),
    KILN_RUNTIME_DIR: path.join(fixture.root, 'kiln'),
    ...build.env,
  };
  const options = buildOptionsFromArguments(
    [
      '--context', context,
      '--destination', `${fixture.registry.host}/in-place/${build.tag}`,
      '--kaniko-dir', path.join(fixture.root, 'kiln', 'work'),
      '--isolation', 'auto',
      ...(build.flags ?? []),
    ],
    env,
  );
  const stderr = new PassThrough();
  const chunks: Buffer[] = [];
  stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
  const result = await withRegistryAccess(options.registry, env, stderr, (access) =>
    executeBuild(options, { env, stderr, registry: access, inPlaceRoot: fixture.root, isolationProbes: inAContainer }),
  );
  return { result, log: Buffer.concat(chunks).toString('utf8') };
}
