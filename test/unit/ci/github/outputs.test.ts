import { summary } from '@actions/core';
import { describe, expect, it } from 'vitest';
import type { BuildReport } from '../../../../src/ci/build-report.js';
import { actionOutputs, addBuildSummary } from '../../../../src/ci/github/outputs.js';

const digest = `sha256:${'a'.repeat(64)}`;
const report: BuildReport = {
  digest,
  imageId: `sha256:${'c'.repeat(64)}`,
  manifestMediaType: 'application/vnd.oci.image.manifest.v1+json',
  images: [`r.example/app:1@${digest}`, `r.example/app:latest@${digest}`],
  pushed: true,
  layers: [
    { digest: `sha256:${'b'.repeat(64)}`, size: 2048, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', createdBy: 'RUN /bin/sh -c echo <b> & done' },
  ],
  steps: [{ label: 'Dockerfile:2: RUN echo hi', outcome: 'layer 2.0 KiB', seconds: 1.234 }],
};

describe('action outputs and job summary', () => {
  it('gives the digest, image ID, pinned images and metadata JSON', () => {
    const outputs = actionOutputs(report);
    expect(outputs.digest).toBe(digest);
    expect(outputs.imageid).toBe(report.imageId);
    expect(outputs.images.split('\n')).toEqual(report.images);
    const metadata = JSON.parse(outputs.metadata) as Record<string, unknown>;
    expect(metadata['containerimage.digest']).toBe(digest);
    expect(metadata['image.name']).toBe('r.example/app:1,r.example/app:latest');
    expect(metadata['kiln.layers']).toEqual(report.layers);
  });
  it('writes images, digest, layers with sizes and step times, HTML-escaped', () => {
    const html = addBuildSummary(summary.emptyBuffer(), report).stringify();
    summary.emptyBuffer();
    expect(html).toContain(`r.example/app:1@${digest}`);
    expect(html).toContain(digest);
    expect(html).toContain('sha256:bbbbbbbbbbbb…');
    expect(html).toContain('2.0 KiB');
    expect(html).toContain('RUN /bin/sh -c echo &#60;b&#62; &#38; done');
    expect(html).toContain('1.23 s');
    expect(html).toContain('layer 2.0 KiB');
  });
});
