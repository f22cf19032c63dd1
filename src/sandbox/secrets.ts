import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';

/**
 * Where a build's secrets come from (`--secret id=…,src=FILE|env=VAR`): structurally the same as the
 * build options' `SecretSource`, so the executor hands those over unchanged.
 */
export interface SecretSource {
  id: string;
  /** A host file holding the secret. */
  src?: string;
  /** A variable of kiln's own environment holding the secret (used when `src` is absent). */
  env?: string;
}

/** A secret found for a step: opened only when the step reads it, never copied to disk by kiln. */
export interface AvailableSecret {
  id: string;
  /** A fresh stream of the secret's bytes. */
  open(): Readable;
  /** The whole value, for `env=` secrets (a secret is small: BuildKit caps them at 500 KiB). */
  read(): Promise<Buffer>;
}

export class SecretError extends Error {
  constructor(
    readonly secretId: string,
    message: string,
  ) {
    super(message);
    this.name = 'SecretError';
  }
}

/** BuildKit refuses secrets larger than this; so does kiln, before the step starts. */
export const maxSecretBytes = 500 * 1024;

/**
 * Looks a secret up by id. Missing (no such `--secret`, its file absent, its variable unset) gives
 * undefined: whether that is an error depends on the mount's `required`. Messages name the id and
 * the file or variable, never the value.
 */
export async function findSecret(
  id: string,
  sources: readonly SecretSource[],
  hostEnv: Readonly<Record<string, string | undefined>>,
): Promise<AvailableSecret | undefined> {
  const source = [...sources].reverse().find((candidate) => candidate.id === id);
  if (source === undefined) return undefined;
  if (source.src !== undefined) {
    const path = source.src;
    const stats = await stat(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw new SecretError(id, `secret ${id}: cannot read ${path}: ${error.message}`);
    });
    if (stats === undefined) return undefined;
    if (!stats.isFile()) throw new SecretError(id, `secret ${id}: ${path} is not a regular file`);
    if (stats.size > maxSecretBytes) throw new SecretError(id, `secret ${id}: ${path} is larger than ${maxSecretBytes} bytes`);
    return {
      id,
      open: () => createReadStream(path),
      read: async () => {
        const chunks: Buffer[] = [];
        for await (const chunk of createReadStream(path)) chunks.push(chunk as Buffer);
        return Buffer.concat(chunks);
      },
    };
  }
  const value = hostEnv[source.env ?? id];
  if (value === undefined) return undefined;
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > maxSecretBytes) throw new SecretError(id, `secret ${id}: variable ${source.env ?? id} is larger than ${maxSecretBytes} bytes`);
  return { id, open: () => Readable.from([bytes]), read: () => Promise.resolve(bytes) };
}
