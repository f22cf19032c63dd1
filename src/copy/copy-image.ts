/**
 * `kiln copy`: an image or a whole index from one place to another. Registry to registry goes
 * manifest-for-manifest (same digests, blobs mounted within one registry); everything else goes
 * through the Image model: read from the source as an Image or index, write it to the destination.
 */
import type { Image, ImageIndexSource } from '../image/image.js';
import { parsePlatform, selectManifest } from '../image/platform.js';
import { parseReference, type Reference } from '../image/reference.js';
import type { Platform } from '../image/types.js';
import { readDockerArchive, writeDockerArchiveFile } from '../layout/docker-archive.js';
import type { LayoutLocation } from '../layout/location.js';
import { readImageFromLayout, readIndexFromLayout, readLayoutIndex, writeImageToLayout, writeIndexToLayout } from '../layout/oci-layout.js';
import { withRegistry, type RegistryAccess } from '../registry/connect.js';
import { copyImage as copyBetweenRegistries } from '../registry/copy.js';
import { pull, pushImage, pushIndex } from '../registry/remote-image.js';
import { isIndexMediaType } from '../image/media-types.js';

/** A registry reference, or a registry-less location in skopeo's syntax (src/layout/location.ts). */
export type ImageLocation = { transport: 'registry'; reference: string } | LayoutLocation;

export interface CopyImageRequest {
  source: ImageLocation;
  destination: ImageLocation;
  /** `os/arch[/variant]`: only this image of an index; without it an index is copied whole where the destination can hold one. */
  platform?: string;
}

/** What the source holds: one image, or an index with lazily read children. */
type Content = { kind: 'image'; image: Image } | { kind: 'index'; index: ImageIndexSource };

export class CopyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CopyError';
  }
}

/** Copies and returns the destination digest. */
export async function copyImage(request: CopyImageRequest, access: RegistryAccess): Promise<string> {
  const platform = request.platform === undefined ? undefined : parsePlatform(request.platform);
  const { source, destination } = request;
  if (source.transport === 'registry' && destination.transport === 'registry') {
    return copyRegistryToRegistry(parseReference(source.reference), parseReference(destination.reference), platform, access);
  }
  const content = await readContent(source, platform, access);
  return writeContent(content, destination, access);
}

async function copyRegistryToRegistry(from: Reference, to: Reference, platform: Platform | undefined, access: RegistryAccess): Promise<string> {
  return withRegistry(access, from, 'pull', async (src) => {
    // With --platform the child's digest is what gets copied: resolve it at the source first.
    let identifier = from.identifier;
    if (platform !== undefined) {
      const pulled = await pull(src.client, src.repository, identifier);
      if (pulled.kind === 'index') identifier = (await pulled.index.image(selectManifest(pulled.index.index, platform))).digest;
    }
    return withRegistry(access, to, 'push', async (dst) => {
      const result = await copyBetweenRegistries(
        { client: src.client, repository: src.repository, reference: identifier },
        { client: dst.client, repository: dst.repository, tags: to.digest === undefined ? [to.tag ?? 'latest'] : [] },
      );
      if (to.digest !== undefined && to.digest !== result.digest) {
        throw new CopyError(`${to.toString()}: the copied content has digest ${result.digest}`);
      }
      return result.digest;
    });
  });
}

async function readContent(location: ImageLocation, platform: Platform | undefined, access: RegistryAccess): Promise<Content> {
  switch (location.transport) {
    case 'registry': {
      const reference = parseReference(location.reference);
      return withRegistry(access, reference, 'pull', async ({ client, repository }) => {
        const pulled = await pull(client, repository, reference.identifier);
        if (pulled.kind === 'image') return { kind: 'image', image: pulled.image };
        if (platform === undefined) return { kind: 'index', index: pulled.index };
        return { kind: 'image', image: await pulled.index.image(selectManifest(pulled.index.index, platform)) };
      });
    }
    case 'oci': {
      const selector = { ...(location.tag === undefined ? {} : { tag: location.tag }), ...(platform === undefined ? {} : { platform }) };
      if (platform === undefined && (await layoutEntryIsIndex(location.directory, location.tag))) {
        return { kind: 'index', index: await readIndexFromLayout(location.directory, selector) };
      }
      return { kind: 'image', image: await readImageFromLayout(location.directory, selector) };
    }
    case 'docker-archive': {
      const selector = { ...(location.reference === undefined ? {} : { reference: location.reference }), ...(location.index === undefined ? {} : { index: location.index }) };
      return { kind: 'image', image: await readDockerArchive(location.file, selector) };
    }
  }
}

async function layoutEntryIsIndex(directory: string, tag: string | undefined): Promise<boolean> {
  const index = await readLayoutIndex(directory);
  const entry = tag === undefined ? index.manifests[0] : index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  return isIndexMediaType(entry?.mediaType);
}

async function writeContent(content: Content, location: ImageLocation, access: RegistryAccess): Promise<string> {
  switch (location.transport) {
    case 'registry': {
      const reference = parseReference(location.reference);
      const tags = reference.digest === undefined ? [reference.tag ?? 'latest'] : [];
      return withRegistry(access, reference, 'push', ({ client, repository }) =>
        content.kind === 'image' ? pushImage(client, repository, content.image, { tags }) : pushIndex(client, repository, content.index, { tags }),
      );
    }
    case 'oci': {
      const options = location.tag === undefined ? {} : { tag: location.tag };
      const descriptor = content.kind === 'image' ? await writeImageToLayout(location.directory, content.image, options) : await writeIndexToLayout(location.directory, content.index, options);
      return descriptor.digest;
    }
    case 'docker-archive': {
      if (content.kind === 'index') {
        throw new CopyError('a docker-archive holds single images: pass --platform to pick one from the index');
      }
      await writeDockerArchiveFile(location.file, [{ image: content.image, tags: location.reference === undefined ? [] : [location.reference] }]);
      return content.image.digest;
    }
  }
}
