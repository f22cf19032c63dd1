/** Where a built image goes: registries (every --destination), a docker-archive, an OCI layout, digest files. */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Image } from '../image/image.js';
import { parseReference, type Reference } from '../image/reference.js';
import { writeDockerArchiveFile } from '../layout/docker-archive.js';
import { writeImageToLayout } from '../layout/oci-layout.js';
import { withRegistry, type RegistryAccess } from '../registry/connect.js';
import { pushImage } from '../registry/remote-image.js';
import type { BuildOptions } from './options.js';
import type { Progress } from './progress.js';

export function parseDestinations(destinations: readonly string[]): Reference[] {
  return destinations.map((destination) => parseReference(destination));
}

/** Pushes (blobs, then config, then manifest by digest, tags last) to every destination; retried as a whole. */
export async function pushToDestinations(
  image: Image,
  destinations: readonly Reference[],
  sources: readonly Reference[],
  options: Pick<BuildOptions, 'registry'>,
  access: RegistryAccess,
  progress: Progress,
): Promise<void> {
  for (const destination of destinations) {
    const done = progress.step(`pushing ${destination.toString()}`);
    const tags = destination.digest === undefined ? [destination.tag ?? 'latest'] : [];
    const mountFrom = sources.filter((source) => source.registry === destination.registry).map((source) => source.repository);
    let attempt = 0;
    for (;;) {
      try {
        await withRegistry(access, destination, 'push', ({ client, repository }) => pushImage(client, repository, image, { tags, mountFrom }));
        break;
      } catch (error) {
        if (attempt >= options.registry.pushRetry) throw error;
        attempt++;
        progress.info(`  push failed (${error instanceof Error ? error.message : String(error)}), retry ${attempt} of ${options.registry.pushRetry}`);
      }
    }
    done(`pushed ${image.digest}`);
  }
}

/** Before any build work: every destination must accept a push (skipped with --skip-push-permission-check). */
export async function checkPushPermissions(destinations: readonly Reference[], access: RegistryAccess): Promise<void> {
  for (const destination of destinations) {
    await withRegistry(access, destination, 'push', ({ client, repository }) => client.checkPushPermission(repository));
  }
}

/** --tar-path, --oci-layout-path and the three digest files, with kaniko's contents. */
export async function writeLocalOutputs(image: Image, destinations: readonly Reference[], options: BuildOptions): Promise<void> {
  if (options.tarPath !== undefined) {
    await writeDockerArchiveFile(options.tarPath, [{ image, tags: destinations.filter((d) => d.tag !== undefined).map((d) => d.toString()) }]);
  }
  if (options.ociLayoutPath !== undefined) await writeImageToLayout(options.ociLayoutPath, image);
  if (options.digestFile !== undefined) await writeOutputFile(options.digestFile, image.digest);
  if (options.imageNameWithDigestFile !== undefined) {
    await writeOutputFile(options.imageNameWithDigestFile, destinations.map((d) => `${d.name}@${image.digest}\n`).join(''));
  }
  if (options.imageNameTagWithDigestFile !== undefined) {
    await writeOutputFile(options.imageNameTagWithDigestFile, destinations.map((d) => `${d.name}:${d.tag ?? 'latest'}@${image.digest}\n`).join(''));
  }
}

/** A digest file, in a directory made for it if it is missing (as the layouts and archives are). */
async function writeOutputFile(file: string, content: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, content);
}
