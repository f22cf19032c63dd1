/**
 * Registry → registry copy of an image or a whole index, byte for byte: manifests are moved as
 * served (so the destination digest equals the source digest) and blobs are streamed, or mounted
 * when source and destination are the same registry.
 */
import { parseManifest } from '../image/manifest.js';
import type { Descriptor } from '../image/types.js';
import type { RegistryClient } from './client.js';
import { forEachLimited } from './parallel.js';
import { defaultBlobConcurrency, isForeignLayer } from './remote-image.js';

export interface CopySource {
  client: RegistryClient;
  repository: string;
  /** Tag or digest. */
  reference: string;
}

export interface CopyDestination {
  client: RegistryClient;
  repository: string;
  /** Tags to set once everything is in place; none copies by digest only. */
  tags: readonly string[];
}

export interface CopyOptions {
  /** Blobs moving at once (default 4). */
  concurrency?: number;
}

export interface CopyResult {
  digest: string;
  mediaType: string;
  /** How each blob got there, for progress output and tests. */
  blobs: { exists: number; mounted: number; uploaded: number };
}

/** Copies what `source` names to `destination`; returns the destination digest. */
export async function copyImage(source: CopySource, destination: CopyDestination, options: CopyOptions = {}): Promise<CopyResult> {
  const blobs = { exists: 0, mounted: 0, uploaded: 0 };
  const sameRegistry = source.client.origin === destination.client.origin;
  const copier = new Copier(source, destination, sameRegistry, options.concurrency ?? defaultBlobConcurrency, blobs);
  const { raw, digest, mediaType } = await copier.copyManifest(source.reference);
  for (const tag of destination.tags) {
    await destination.client.putManifest(destination.repository, tag, raw, mediaType);
  }
  return { digest, mediaType, blobs };
}

class Copier {
  constructor(
    private readonly source: CopySource,
    private readonly destination: CopyDestination,
    private readonly sameRegistry: boolean,
    private readonly concurrency: number,
    private readonly counts: CopyResult['blobs'],
  ) {}

  /** Copies one manifest and everything it references (children first); puts it by digest. */
  async copyManifest(reference: string): Promise<{ raw: Buffer; digest: string; mediaType: string }> {
    const { client, repository } = this.source;
    const fetched = await client.getManifest(repository, reference);
    const parsed = parseManifest(fetched.raw, {
      contentType: fetched.contentType,
      source: `manifest ${reference} of ${client.registry}/${repository}`,
    });
    const present = await this.destination.client.headManifest(this.destination.repository, fetched.digest);
    if (!present) {
      if (parsed.kind === 'index') {
        for (const child of parsed.index.manifests) await this.copyManifest(child.digest);
      } else {
        const manifest = parsed.manifest;
        await this.copyBlobs([manifest.config, ...manifest.layers.filter((layer) => !isForeignLayer(layer))]);
      }
      await this.destination.client.putManifest(this.destination.repository, fetched.digest, fetched.raw, parsed.mediaType);
    }
    return { raw: fetched.raw, digest: fetched.digest, mediaType: parsed.mediaType };
  }

  private async copyBlobs(descriptors: readonly Descriptor[]): Promise<void> {
    const unique = [...new Map(descriptors.map((d) => [d.digest, d])).values()];
    const { client: from, repository: fromRepository } = this.source;
    const mountFrom = this.sameRegistry ? [fromRepository] : [];
    await forEachLimited(unique, this.concurrency, async (descriptor) => {
      const how = await this.destination.client.pushBlob(
        this.destination.repository,
        { digest: descriptor.digest, size: descriptor.size, open: () => from.openBlob(fromRepository, descriptor) },
        { mountFrom },
      );
      this.counts[how === 'exists' ? 'exists' : how]++;
    });
  }
}
