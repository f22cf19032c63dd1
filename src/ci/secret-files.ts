/** Inline secret values as 0600 files the build's `--secret id=…,src=…` can read. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { InlineSecret } from './inputs.js';

export async function writeSecretFiles(dir: string, secrets: readonly InlineSecret[]): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  if (secrets.length === 0) return files;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const [index, secret] of secrets.entries()) {
    // Numbered names: an id is user text and should not become a path.
    const file = join(dir, `secret-${index}`);
    await writeFile(file, secret.value, { mode: 0o600 });
    files.set(secret.id, file);
  }
  return files;
}
