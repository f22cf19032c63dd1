import type { Dispatcher } from 'undici';

/** What a credential store hands the client for one registry host. Never logged. */
export type Credential =
  | { kind: 'basic'; username: string; password: string }
  /** An OAuth2 refresh token (config.json `identitytoken`), exchanged at the Bearer realm. */
  | { kind: 'identityToken'; token: string }
  /** A ready Bearer token (config.json `registrytoken`). */
  | { kind: 'registryToken'; token: string };

export interface CredentialStore {
  /** `registry` is the host as written in image references (`docker.io`, `ghcr.io`, `127.0.0.1:5000`). */
  get(registry: string): Promise<Credential | undefined>;
}

/**
 * Where and how to reach one registry: the result of applying --insecure*, --skip-tls-verify*,
 * --registry-certificate, --registry-client-cert, --registry-mirror and --registry-map to a host.
 */
export interface RegistryEndpoint {
  /** The registry host as written in references (`docker.io`). Used for credentials and errors. */
  registry: string;
  /** The host:port actually contacted (`registry-1.docker.io`, a mirror, ...). */
  apiHost: string;
  scheme: 'http' | 'https';
  /** One undici dispatcher per endpoint, carrying its TLS settings; reused across requests. */
  dispatcher: Dispatcher;
  /** Repository prefix a mirror needs (e.g. `library/`), or '' */
  pathPrefix?: string;
}

/** Whether an endpoint is used for reading (pull) or writing (push): kaniko's flags differ per side. */
export type Direction = 'pull' | 'push';
