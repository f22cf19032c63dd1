/** One GET over http(s) that follows redirects, for URL contexts and `ADD <url>`. */
import { Agent, interceptors, request, type Dispatcher } from 'undici';

const maxRedirections = 5;

/** How the caller names a failure: `status` is undefined when no answer came. */
export type HttpFailure = (status: number | undefined, reason: string, cause?: unknown) => Error;

/**
 * GETs `url` and hands a 2xx response to `use`. Any other status fails with the server's first words
 * (its body is consumed, so the connection can be reused). A dispatcher made here is closed after.
 */
export async function withHttpGet<T>(
  url: string,
  dispatcher: Dispatcher | undefined,
  fail: HttpFailure,
  use: (response: Dispatcher.ResponseData) => Promise<T>,
): Promise<T> {
  const owned = dispatcher === undefined ? new Agent() : undefined;
  const client = dispatcher ?? (owned as Agent).compose(interceptors.redirect({ maxRedirections }));
  try {
    let response: Dispatcher.ResponseData;
    try {
      response = await request(url, { method: 'GET', dispatcher: client, headers: { 'user-agent': 'kiln', accept: '*/*' } });
    } catch (error) {
      throw fail(undefined, error instanceof Error ? error.message : String(error), error);
    }
    if (response.statusCode < 200 || response.statusCode >= 300) {
      const text = await response.body.text().catch((error: unknown) => `(body unreadable: ${String(error)})`);
      const snippet = text.trim().slice(0, 200);
      throw fail(response.statusCode, `server answered HTTP ${response.statusCode}${snippet === '' ? '' : `: ${snippet}`}`);
    }
    return await use(response);
  } finally {
    await owned?.close();
  }
}
