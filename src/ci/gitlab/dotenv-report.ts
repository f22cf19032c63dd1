/**
 * The job's dotenv report (`artifacts:reports:dotenv`), which GitLab turns into variables of later
 * jobs. GitLab's parser takes `KEY=VALUE` lines and keeps the value as written, so values must be
 * single-line and need no quoting.
 */
import { writeFile } from 'node:fs/promises';
import { parseReference } from '../../image/reference.js';
import { GitLabJobError } from './job-inputs.js';

const variableName = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function formatDotenv(variables: Readonly<Record<string, string>>): string {
  return Object.entries(variables)
    .map(([name, text]) => {
      if (!variableName.test(name)) throw new GitLabJobError(`dotenv report: "${name}" is not a variable name`);
      if (/[\r\n]/.test(text)) throw new GitLabJobError(`dotenv report: the value of ${name} spans lines`);
      return `${name}=${text}\n`;
    })
    .join('');
}

/**
 * KILN_DIGEST (the manifest digest), KILN_IMAGE (the first destination pinned to it, `REPO@DIGEST`)
 * and KILN_IMAGES (every destination pinned, space-separated).
 */
export function buildVariables(digest: string, destinations: readonly string[]): Record<string, string> {
  const pinned = destinations.map((destination) => `${parseReference(destination).name}@${digest}`);
  return {
    KILN_DIGEST: digest,
    KILN_IMAGE: pinned[0] ?? '',
    KILN_IMAGES: [...new Set(pinned)].join(' '),
  };
}

export async function writeDotenvReport(path: string, digest: string, destinations: readonly string[]): Promise<Record<string, string>> {
  const variables = buildVariables(digest, destinations);
  await writeFile(path, formatDotenv(variables));
  return variables;
}
