/** A build context downloaded as a tarball over http(s), streamed straight into the extractor. */
import { Agent, interceptors, request, type Dispatcher } from 'undici';
import { displayUrl } from './git-source.js';
import { extractTarStream } from './tar-source.js';
import { ContextFetchError } from './types.js';

export interface UrlFetchOptions {
  /** Injected HTTP client (e.g. an Agent trusting a test CA); default: a fresh Agent following redirects. */
  dispatcher?: Dispatcher;
  onWarning?: (message: string) => void;
}

const maxRedirections = 5;

/** Downloads `url` and extracts the tar or tar.gz it serves into `dest`. */
export async function fetchUrlContext(url: string, dest: string, options: UrlFetchOptions = {}): Promise<void> {
  const shown = displayUrl(url);
  const owned = options.dispatcher === undefined ? new Agent() : undefined;
  const dispatcher = options.dispatcher ?? (owned as Agent).compose(interceptors.redirect({ maxRedirections }));
  try {
    let response: Dispatcher.ResponseData;
    try {
      response = await request(url, { method: 'GET', dispatcher, headers: { 'user-agent': 'kiln', accept: '*/*' } });
    } catch (err) {
      throw new ContextFetchError(shown, undefined, err instanceof Error ? err.message : String(err), { cause: err });
    }
    if (response.statusCode < 200 || response.statusCode >= 300) {
      // The body must be consumed or the connection is never reused.
      const text = await response.body.text().catch((err: unknown) => `(body unreadable: ${String(err)})`);
      const snippet = text.trim().slice(0, 200);
      throw new ContextFetchError(shown, response.statusCode, `server answered HTTP ${response.statusCode}${snippet === '' ? '' : `: ${snippet}`}`);
    }
    await extractTarStream(response.body, dest, { label: shown, ...(options.onWarning ? { onWarning: options.onWarning } : {}) });
  } finally {
    await owned?.close();
  }
}
