/** What a CI wrapper shows after a build: digests, references, layers and step times, as plain data. */
import type { BuildResult, StepTiming } from '../build/executor.js';
import type { BuildOptions } from '../build/options.js';

export interface LayerReport {
  digest: string;
  size: number;
  mediaType: string;
  /** The history line that made the layer (e.g. `RUN /bin/sh -c make`), when the history says. */
  createdBy?: string;
}

export interface BuildReport {
  /** The manifest digest: what `skopeo inspect` reports and what a pull by digest uses. */
  digest: string;
  /** The config digest, which docker calls the image ID. */
  imageId: string;
  manifestMediaType: string;
  /** Every destination pinned to the digest (`REPO:TAG@DIGEST`). */
  images: string[];
  pushed: boolean;
  layers: LayerReport[];
  steps: StepTiming[];
}

/** `REF@DIGEST`, replacing a digest the reference already carried. */
export function pinReference(reference: string, digest: string): string {
  const at = reference.indexOf('@');
  return `${at < 0 ? reference : reference.slice(0, at)}@${digest}`;
}

export function buildReport(result: BuildResult, options: Pick<BuildOptions, 'destinations' | 'noPush'>): BuildReport {
  const { image } = result;
  // Non-empty history entries line up with the layers, in order (the image spec's rule).
  const layerHistory = (image.config.history ?? []).filter((entry) => entry.empty_layer !== true);
  const offset = layerHistory.length - image.manifest.layers.length;
  return {
    digest: result.digest,
    imageId: image.manifest.config.digest,
    manifestMediaType: image.manifest.mediaType ?? '',
    images: options.destinations.map((destination) => pinReference(destination, result.digest)),
    pushed: !options.noPush,
    layers: image.manifest.layers.map((descriptor, index) => {
      const createdBy = offset >= 0 ? layerHistory[index + offset]?.created_by : undefined;
      return { digest: descriptor.digest, size: descriptor.size, mediaType: descriptor.mediaType, ...(createdBy ? { createdBy } : {}) };
    }),
    steps: result.steps,
  };
}

export interface SourceLocatedError {
  file: string;
  line: number;
  message: string;
}

/**
 * `FILE:LINE[:COLUMN]: message` (BuildStepError, DockerfileSyntaxError) split into its parts, for
 * annotations. Only the Dockerfile of this build counts: other messages may start with `host:port: `.
 */
export function locateErrorInSource(message: string, dockerfile: string): SourceLocatedError | undefined {
  if (dockerfile === '' || !message.startsWith(`${dockerfile}:`)) return undefined;
  const match = /^(\d+)(?::\d+)?: ([\s\S]+)$/.exec(message.slice(dockerfile.length + 1));
  if (!match?.[1] || !match[2]) return undefined;
  return { file: dockerfile, line: Number(match[1]), message: match[2] };
}
