/**
 * The executor image (images/executor/Dockerfile) and its debug variant, built by kiln itself (this
 * tree's code, freshly bundled) from a context laid out like the repository, FROM a node image made
 * of the host's node and libraries (node-runtime-image.ts) and the test busybox, pushed to a test
 * registry. The tests that run the executor image share this one recipe.
 */
import { cp, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { pushBusyboxImage } from './base-images.js';
import { bundleEntries } from './bundle-entries.js';
import { runCommand } from './command.js';
import { pushNodeRuntimeImage } from './node-runtime-image.js';
import type { TestRegistry } from './registry.js';

const repositoryRoot = path.resolve(import.meta.dirname, '../..');

/** The image's entrypoint: node through kiln's own dynamic loader, so nothing outside /kiln is needed. */
export const executorEntrypoint = ['/kiln/lib/ld.so', '--library-path', '/kiln/lib', '/kiln/bin/node', '/kiln/dist/cli.js'] as const;

export interface BuiltExecutorImage {
  /** `host:port/kiln/executor:TAG` */
  reference: string;
  /** The manifest digest kiln printed. */
  digest: string;
}

export interface ExecutorImages {
  executor: BuiltExecutorImage;
  debug: BuiltExecutorImage;
  /** The node runtime image the executor's runtime stage started FROM. */
  nodeImage: string;
  /** The busybox image the debug stage took its shell from (also a small base for tests). */
  busyboxImage: string;
  /**
   * The bundles that built the images, which the images hold too (`cli.js`, `gitlab-main.js`):
   * running this `cli.js` on the host runs exactly the code inside the image.
   */
  bundleDir: string;
}

export interface ExecutorImageOptions {
  /** The registry's `host:port` and skopeo's destination flags (a TestRegistry). */
  registry: Pick<TestRegistry, 'host' | 'skopeoDestArgs'>;
  /** A directory of the caller's: the context and kiln's work directory go below it. */
  work: string;
}

/** Builds and pushes `kiln/executor:test` and `kiln/executor:debug` (about 20 s). */
export async function buildExecutorImages(options: ExecutorImageOptions): Promise<ExecutorImages> {
  const { registry, work } = options;
  const nodeImage = await pushNodeRuntimeImage({ registry: registry.host, skopeoDestArgs: registry.skopeoDestArgs() });
  const busyboxImage = (await pushBusyboxImage({ registry: registry.host, skopeoDestArgs: registry.skopeoDestArgs() })).reference;
  // The repository's layout, with a fresh bundle rather than whatever dist/ holds now.
  const context = path.join(work, 'executor-context');
  await mkdir(context, { recursive: true });
  await cp(path.join(repositoryRoot, 'images/executor'), path.join(context, 'images/executor'), { recursive: true });
  const bundleDir = path.join(context, 'dist');
  await bundleEntries(bundleDir, { cli: 'src/cli/main.ts', 'gitlab-main': 'src/ci/gitlab/main.ts' });

  const build = async (destination: string, extra: readonly string[]): Promise<BuiltExecutorImage> => {
    const reference = `${registry.host}/${destination}`;
    const result = await runCommand(process.execPath, [
      path.join(bundleDir, 'cli.js'),
      '--context', context,
      '--dockerfile', 'images/executor/Dockerfile',
      '--destination', reference,
      '--build-arg', `NODE_IMAGE=${nodeImage}`,
      '--build-arg', `BUSYBOX_IMAGE=${busyboxImage}`,
      '--kaniko-dir', path.join(work, 'executor-kiln-dir'),
      ...extra,
    ]);
    if (result.exitCode !== 0) throw new Error(`kiln failed to build ${reference} (${result.exitCode}):\n${result.stderr}`);
    return { reference, digest: result.stdout.trim().split('\n').at(-1) ?? '' };
  };
  const executor = await build('kiln/executor:test', []);
  const debug = await build('kiln/executor:debug', ['--target', 'debug']);
  return { executor, debug, nodeImage, busyboxImage, bundleDir };
}
