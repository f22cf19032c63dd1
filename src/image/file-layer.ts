import { createReadStream } from 'node:fs';
import { Readable, pipeline } from 'node:stream';
import { VerifyingStream } from './digest.js';
import type { Layer } from './image.js';
import type { Descriptor } from './types.js';

/**
 * Streams `source` through a digest (and size) check: the returned stream errors instead of ending
 * when the bytes are not what the descriptor promised. Errors of the source reach the consumer too.
 */
export function verifiedStream(source: Readable, descriptor: Pick<Descriptor, 'digest' | 'size'>, what: string): Readable {
  const verifier = new VerifyingStream(descriptor.digest, what, descriptor.size);
  pipeline(source, verifier, (error) => {
    // pipeline has already destroyed the verifier with this error; the consumer sees it there.
    if (error !== undefined && error !== null && !verifier.destroyed) verifier.destroy(error);
  });
  return verifier;
}

export interface FileLayerOptions {
  /** The compressed (or plain) blob on disk, exactly the bytes behind descriptor.digest. */
  path: string;
  descriptor: Descriptor;
  diffId: string;
  /** Where the blob starts inside the file (a docker-archive tarball holds many blobs); default 0. */
  offset?: number;
}

/** A layer whose blob lives in a file (a build's output, an OCI layout, a docker-archive entry). */
export class FileLayer implements Layer {
  readonly path: string;
  readonly descriptor: Descriptor;
  readonly diffId: string;
  readonly offset: number;

  constructor(options: FileLayerOptions) {
    this.path = options.path;
    this.descriptor = options.descriptor;
    this.diffId = options.diffId;
    this.offset = options.offset ?? 0;
  }

  async open(): Promise<Readable> {
    const { size } = this.descriptor;
    // createReadStream's `end` is inclusive, so an empty blob cannot be expressed as a range.
    const source = size === 0 ? Readable.from([]) : createReadStream(this.path, { start: this.offset, end: this.offset + size - 1 });
    return verifiedStream(source, this.descriptor, `layer ${this.descriptor.digest} (${this.path})`);
  }
}
