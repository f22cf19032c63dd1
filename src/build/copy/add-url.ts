/**
 * ADD of an http(s) URL, as BuildKit's http source does it: the file is named after the last
 * segment of the URL's path (`__unnamed__` when there is none; BuildKit names it itself, so a
 * Content-Disposition header does not change the name), written 0600 with its mtime from
 * Last-Modified, never extracted, and checked against `--checksum` while it streams to disk.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, utimes } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Dispatcher } from 'undici';
import { displayUrl } from '../../context/git-source.js';
import { withHttpGet } from '../../context/http-get.js';
import { ChecksumMismatchError, RemoteSourceError, type InstructionSite } from './errors.js';

export interface UrlDownloadOptions {
  /** Injected HTTP client; default: a fresh Agent following up to 5 redirects. */
  dispatcher?: Dispatcher;
  /** `--checksum` (`sha256:…`, `sha384:…` or `sha512:…`). */
  checksum?: string;
}

export interface DownloadedFile {
  /** Host path of the downloaded file. */
  host: string;
  /** The name it gets in the destination directory. */
  name: string;
}


export function isHttpSource(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/** The file name BuildKit's Dockerfile frontend gives a URL source. */
export function urlFileName(url: string): string {
  let pathname: string;
  try {
    pathname = new URL(url).pathname;
  } catch {
    return '__unnamed__';
  }
  const base = path.posix.basename(path.posix.normalize(pathname));
  return base === '' || base === '.' || base === '/' ? '__unnamed__' : decodeURIComponent(base);
}

export async function downloadUrl(site: InstructionSite, url: string, scratchDir: string, options: UrlDownloadOptions = {}): Promise<DownloadedFile> {
  const shown = displayUrl(url);
  const name = urlFileName(url);
  const host = path.join(scratchDir, 'download');
  return withHttpGet(
    url,
    options.dispatcher,
    (status, reason, cause) => new RemoteSourceError(site, shown, status, reason, cause === undefined ? undefined : { cause }),
    async (response) => {
      const algorithm = options.checksum?.split(':')[0] ?? 'sha256';
      const hash = createHash(algorithm);
      const hashing = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          hash.update(chunk);
          callback(null, chunk);
        },
      });
      await pipeline(response.body, hashing, createWriteStream(host, { mode: 0o600 }));
      const actual = `${algorithm}:${hash.digest('hex')}`;
      if (options.checksum !== undefined && actual !== options.checksum) {
        throw new ChecksumMismatchError(site, shown, options.checksum, actual);
      }
      await chmod(host, 0o600);
      const lastModified = response.headers['last-modified'];
      const modified = typeof lastModified === 'string' ? Date.parse(lastModified) : Number.NaN;
      if (!Number.isNaN(modified)) await utimes(host, modified / 1000, modified / 1000);
      return { host, name };
    },
  );
}
