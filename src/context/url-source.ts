/** A build context downloaded as a tarball over http(s), streamed straight into the extractor. */
import type { Dispatcher } from 'undici';
import { displayUrl } from './git-source.js';
import { withHttpGet } from './http-get.js';
import { extractTarStream } from './tar-source.js';
import { ContextFetchError } from './types.js';

export interface UrlFetchOptions {
  /** Injected HTTP client (e.g. an Agent trusting a test CA); default: a fresh Agent following redirects. */
  dispatcher?: Dispatcher;
  onWarning?: (message: string) => void;
}

/** Downloads `url` and extracts the tar or tar.gz it serves into `dest`. */
export async function fetchUrlContext(url: string, dest: string, options: UrlFetchOptions = {}): Promise<void> {
  const shown = displayUrl(url);
  await withHttpGet(
    url,
    options.dispatcher,
    (status, reason, cause) => new ContextFetchError(shown, status, reason, cause === undefined ? undefined : { cause }),
    (response) => extractTarStream(response.body, dest, { label: shown, ...(options.onWarning ? { onWarning: options.onWarning } : {}) }),
  );
}
