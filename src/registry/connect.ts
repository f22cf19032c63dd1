import type { Reference } from '../image/reference.js';
import { RegistryClient, type RegistryClientOptions } from './client.js';
import type { EndpointFactory, ResolvedEndpoint } from './endpoints.js';
import type { CredentialStore, Direction } from './types.js';

/** Everything needed to talk to registries; made once per kiln run from its flags and config. */
export interface RegistryAccess {
  endpoints: EndpointFactory;
  credentials: CredentialStore;
  /** Passed to every client (retry policy, clock, debug log...). */
  clientOptions?: Omit<RegistryClientOptions, 'endpoint' | 'credentials'>;
  /** One line per fallback taken, for the user: which mirror failed and why. */
  warn?: (line: string) => void;
}

/** A client and the repository path to use with it (a mirror may prefix it). */
export interface Connection {
  client: RegistryClient;
  repository: string;
  endpoint: ResolvedEndpoint;
}

function clientFor(access: RegistryAccess, endpoint: ResolvedEndpoint): RegistryClient {
  return new RegistryClient({ ...access.clientOptions, endpoint, credentials: access.credentials });
}

/**
 * Docker treats a loopback registry that does not speak TLS as plain HTTP; the endpoint plan marks
 * where that is allowed, and the ping tells whether TLS answered at all.
 */
async function reachable(access: RegistryAccess, endpoint: ResolvedEndpoint): Promise<RegistryClient> {
  const client = clientFor(access, endpoint);
  if (!endpoint.plainHttpFallback) return client;
  try {
    await client.ping();
    return client;
  } catch (error) {
    if (!spokePlainHttp(error)) throw error;
    const plain = clientFor(access, { ...endpoint, scheme: 'http', plainHttpFallback: false });
    await plain.ping();
    return plain;
  }
}

/**
 * A TLS handshake answered by a plain-HTTP server fails with OpenSSL's "wrong version number" (or
 * "packet length too long"); certificate failures must surface as themselves, never as a fallback.
 */
function spokePlainHttp(error: unknown): boolean {
  const signs = ['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'wrong version number', 'packet length too long'];
  let current: unknown = error;
  for (let depth = 0; depth < 6 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (signs.some((sign) => sign === code || current instanceof Error && current.message.includes(sign))) return true;
    current = current.cause;
  }
  return false;
}

/**
 * Runs `use` against each candidate endpoint in order (--registry-map targets, mirrors, then the
 * registry itself) until one succeeds, as kaniko does for pulls; a push has exactly one candidate.
 * The last error is thrown, with the earlier ones reported through `warn`.
 */
export async function withRegistry<T>(
  access: RegistryAccess,
  reference: Reference,
  direction: Direction,
  use: (connection: Connection) => Promise<T>,
): Promise<T> {
  const candidates = access.endpoints.resolveEndpoints(reference.registry, direction);
  let lastError: unknown;
  for (const [position, endpoint] of candidates.entries()) {
    try {
      const client = await reachable(access, endpoint);
      return await use({ client, repository: `${endpoint.pathPrefix}${reference.repository}`, endpoint });
    } catch (error) {
      lastError = error;
      if (position < candidates.length - 1) {
        const reason = error instanceof Error ? error.message : String(error);
        access.warn?.(`${endpoint.source} ${endpoint.apiHost} failed for ${reference.toString()}, trying the next one: ${reason}`);
      }
    }
  }
  throw lastError;
}
