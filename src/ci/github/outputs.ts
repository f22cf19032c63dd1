/** The build report as the action's outputs and its job summary. */
import type { summary as coreSummary } from '@actions/core';
import { formatBytes } from '../../build/progress.js';
import type { BuildReport } from '../build-report.js';

export interface ActionOutputs {
  digest: string;
  imageid: string;
  /** One pinned reference per line. */
  images: string;
  metadata: string;
}

/** `metadata` follows docker/build-push-action's key names where they exist. */
export function actionOutputs(report: BuildReport): ActionOutputs {
  const metadata = {
    'containerimage.digest': report.digest,
    'containerimage.config.digest': report.imageId,
    'containerimage.descriptor': { mediaType: report.manifestMediaType, digest: report.digest },
    'image.name': report.images.map((image) => image.slice(0, image.lastIndexOf('@'))).join(','),
    'kiln.images': report.images,
    'kiln.pushed': report.pushed,
    'kiln.layers': report.layers,
    'kiln.steps': report.steps,
  };
  return { digest: report.digest, imageid: report.imageId, images: report.images.join('\n'), metadata: JSON.stringify(metadata) };
}

/** The summary API of @actions/core, whose table cells are HTML. */
export type Summary = typeof coreSummary;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function shortDigest(digest: string): string {
  return digest.replace(/^(sha256:[0-9a-f]{12})[0-9a-f]+$/, '$1…');
}

function clip(text: string, length: number): string {
  return text.length <= length ? text : `${text.slice(0, length - 1)}…`;
}

/** Adds the build's images, digest, layers and step times to the summary (the caller writes it). */
export function addBuildSummary(summary: Summary, report: BuildReport): Summary {
  const header = (text: string): { data: string; header: true } => ({ data: text, header: true });
  summary
    .addHeading('kiln build', 2)
    .addTable([
      [header('Image'), header(report.pushed ? 'Pushed' : 'Built (not pushed)')],
      ...report.images.map((image) => [escapeHtml(image), report.pushed ? 'yes' : 'no']),
    ])
    .addRaw(`<p><b>Digest</b> <code>${escapeHtml(report.digest)}</code><br><b>Image ID</b> <code>${escapeHtml(report.imageId)}</code></p>`, true)
    .addHeading('Layers', 3)
    .addTable([
      [header('#'), header('Digest'), header('Size'), header('Created by')],
      ...report.layers.map((layer, index) => [
        String(index + 1),
        `<code>${escapeHtml(shortDigest(layer.digest))}</code>`,
        formatBytes(layer.size),
        escapeHtml(clip(layer.createdBy ?? '', 120)),
      ]),
    ])
    .addRaw(`<p>${report.layers.length} layer(s), ${formatBytes(report.layers.reduce((total, layer) => total + layer.size, 0))} in all</p>`, true);
  if (report.steps.length > 0) {
    summary.addHeading('Steps', 3).addTable([
      [header('Step'), header('Outcome'), header('Time')],
      ...report.steps.map((step) => [escapeHtml(clip(step.label, 120)), escapeHtml(step.outcome), `${step.seconds.toFixed(2)} s`]),
    ]);
  }
  return summary;
}
