/**
 * Registry authentication: the `WWW-Authenticate` challenge, Basic credentials, and Bearer tokens
 * from a token server (docker's token protocol and its OAuth2 variant for identity tokens).
 *
 * Credentials only ever go into request headers or a token request's form body; they are never
 * put into an error, a log line or a URL.
 */
import { request, type Dispatcher } from 'undici';
import type { Credential, CredentialStore } from './types.js';
import { RegistryError, parseRegistryErrorBody } from './errors.js';
import { decideRetry, defaultRetryPolicy, type Clock, type RetryPolicy } from './retry.js';

export interface Challenge {
  /** Lower-cased auth scheme: `basic`, `bearer`, … */
  scheme: string;
  /** Auth-params with lower-cased names (`realm`, `service`, `scope`, `error`). */
  params: Record<string, string>;
}

/**
 * Parses a `WWW-Authenticate` header value (RFC 9110 11.6.1) into its challenges. Hand-written:
 * undici has no parser for it, and a header may carry several challenges whose quoted params
 * contain commas (`scope="repository:a:pull,push"`), so a plain split does not do.
 */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  let pos = 0;
  const length = header.length;
  const skipSpaceAndCommas = (): void => {
    while (pos < length && /[\s,]/.test(header[pos] ?? '')) pos++;
  };
  const readToken = (): string => {
    const start = pos;
    while (pos < length && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(header[pos] ?? '')) pos++;
    return header.slice(start, pos);
  };
  const skipSpace = (): void => {
    while (pos < length && /\s/.test(header[pos] ?? '')) pos++;
  };

  while (pos < length) {
    skipSpaceAndCommas();
    const scheme = readToken();
    if (scheme === '') {
      pos++; // an unexpected character: skip it rather than loop forever
      continue;
    }
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);
    // Params follow until the next thing that looks like `token SP` (a new scheme).
    for (;;) {
      skipSpaceAndCommas();
      const save = pos;
      const name = readToken();
      skipSpace();
      if (name === '' || header[pos] !== '=') {
        pos = save; // not `name=`: the next challenge starts here
        break;
      }
      pos++; // '='
      skipSpace();
      let value = '';
      if (header[pos] === '"') {
        pos++;
        while (pos < length && header[pos] !== '"') {
          if (header[pos] === '\\' && pos + 1 < length) pos++;
          value += header[pos];
          pos++;
        }
        pos++; // closing quote
      } else {
        const start = pos;
        while (pos < length && header[pos] !== ',' && !/\s/.test(header[pos] ?? '')) pos++;
        value = header.slice(start, pos);
      }
      challenge.params[name.toLowerCase()] = value;
    }
  }
  return challenges;
}

/** `repository:NAME:ACTIONS` as the token protocol spells a scope. */
export function repositoryScope(repository: string, actions: readonly ('pull' | 'push')[]): string {
  return `repository:${repository}:${actions.join(',')}`;
}

/** Merges scopes of the same resource (`repository:a:pull` + `repository:a:push` → `pull,push`). */
export function mergeScopes(scopes: readonly string[]): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const scope of scopes) {
    const cut = scope.lastIndexOf(':');
    if (cut < 0) {
      byResource.set(scope, byResource.get(scope) ?? new Set());
      continue;
    }
    const resource = scope.slice(0, cut);
    const actions = byResource.get(resource) ?? new Set<string>();
    for (const action of scope.slice(cut + 1).split(',')) if (action) actions.add(action);
    byResource.set(resource, actions);
  }
  return [...byResource.entries()]
    .map(([resource, actions]) => (actions.size ? `${resource}:${[...actions].sort().join(',')}` : resource))
    .sort();
}

interface CachedToken {
  token: string;
  /** Clock time after which the token is not used any more. */
  expiresAt: number;
}

/** Token lifetime when the server names none (the token spec's default). */
const defaultTokenLifetimeSeconds = 60;

export interface AuthenticatorOptions {
  /** Registry host as written in references: the key for credentials and errors. */
  registry: string;
  credentials: CredentialStore;
  dispatcher: Dispatcher;
  clock: Clock;
  /** Sent as `client_id` in OAuth2 token requests. */
  clientId?: string;
  /** Token requests are retried like registry requests (a token server has bad moments too). */
  retryPolicy?: RetryPolicy;
  random?: () => number;
}

/**
 * Holds what one registry endpoint asked for (its challenge) and the tokens obtained for it, one
 * per set of scopes, each until its expiry. One instance per `RegistryClient`, so no state is
 * shared between registries or module-wide.
 */
export class Authenticator {
  private challenge: Challenge | undefined;
  private challengeKnown = false;
  private credential: Promise<Credential | undefined> | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pending = new Map<string, Promise<CachedToken>>();

  constructor(private readonly options: AuthenticatorOptions) {}

  get hasChallenge(): boolean {
    return this.challengeKnown;
  }

  /** Records the answer of `GET /v2/`: undefined when the registry let us in anonymously. */
  setChallengeFromHeader(header: string | undefined): void {
    this.challengeKnown = true;
    this.challenge = header ? pickChallenge(parseWwwAuthenticate(header)) : undefined;
  }

  /** The `Authorization` header value for a request needing `scopes`, or undefined (anonymous). */
  async authorization(scopes: readonly string[], repository: string): Promise<string | undefined> {
    const challenge = this.challenge;
    if (!challenge) return undefined;
    const credential = await this.getCredential();
    if (challenge.scheme === 'basic') {
      if (credential?.kind !== 'basic') return undefined;
      return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
    }
    if (challenge.scheme !== 'bearer') return undefined;
    if (credential?.kind === 'registryToken') return `Bearer ${credential.token}`;
    const token = await this.bearerToken(challenge, mergeScopes(scopes), credential, repository);
    return `Bearer ${token.token}`;
  }

  /**
   * Called on a 401. Reads the fresh challenge (it may name more scope) and forgets the token used
   * for `scopes`, so the next `authorization()` fetches a new one. Returns false when another try
   * cannot help (no challenge we understand).
   */
  handleUnauthorized(header: string | undefined, scopes: readonly string[]): boolean {
    if (!header) return false;
    const challenge = pickChallenge(parseWwwAuthenticate(header));
    if (!challenge) return false;
    this.challengeKnown = true;
    this.challenge = challenge;
    this.tokens.delete(mergeScopes(scopes).join(' '));
    return true;
  }

  /**
   * Words for a final 401, so that a HEAD (which has no body) still says why: whether we sent
   * nothing, or what we sent was refused. Never the credential itself.
   */
  async describeRefusal(wwwAuthenticate: string | undefined): Promise<string> {
    const credential = await this.getCredential();
    const challenge = wwwAuthenticate ? pickChallenge(parseWwwAuthenticate(wwwAuthenticate)) : this.challenge;
    const error = challenge?.params.error;
    const said = error ? ` (${error})` : '';
    if (!credential) return `no credentials are configured for ${this.options.registry}; anonymous access was refused${said}`;
    const kind = credential.kind === 'basic' ? `the credentials of user "${credential.username}"` : 'the configured token';
    return `${kind} for ${this.options.registry} were refused or lack access${said}`;
  }

  private getCredential(): Promise<Credential | undefined> {
    this.credential ??= this.options.credentials.get(this.options.registry);
    return this.credential;
  }

  private async bearerToken(
    challenge: Challenge,
    scopes: string[],
    credential: Credential | undefined,
    repository: string,
  ): Promise<CachedToken> {
    const key = scopes.join(' ');
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > this.options.clock.now()) return cached;
    // Parallel blob transfers ask for the same scope at once: fetch the token once for all.
    let pending = this.pending.get(key);
    if (!pending) {
      pending = this.fetchToken(challenge, scopes, credential, repository).finally(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    const token = await pending;
    this.tokens.set(key, token);
    return token;
  }

  private async fetchToken(
    challenge: Challenge,
    scopes: string[],
    credential: Credential | undefined,
    repository: string,
  ): Promise<CachedToken> {
    const realm = challenge.params.realm;
    const context = { registry: this.options.registry, repository, operation: 'get a token' };
    if (!realm) throw new RegistryError(context, { reason: 'the Bearer challenge names no realm' });
    let url: URL;
    try {
      url = new URL(realm);
    } catch (error) {
      throw new RegistryError(context, { reason: 'the Bearer challenge realm is not a URL' }, { cause: error });
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new RegistryError(context, { reason: `the token realm has scheme ${url.protocol}` });
    }
    const service = challenge.params.service;
    const tokenContext = { ...context, operation: `get a token from ${url.origin}${url.pathname}` };

    const send = (): Promise<Dispatcher.ResponseData> => {
      if (credential?.kind === 'identityToken') {
        // OAuth2 refresh-token grant (docker's token spec, "oauth"): the identity token is a refresh token.
        const form = new URLSearchParams();
        form.set('grant_type', 'refresh_token');
        form.set('refresh_token', credential.token);
        form.set('client_id', this.options.clientId ?? 'kiln');
        if (service) form.set('service', service);
        if (scopes.length) form.set('scope', scopes.join(' '));
        return request(url, {
          method: 'POST',
          dispatcher: this.options.dispatcher,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: form.toString(),
        });
      }
      const query = new URL(url);
      if (service) query.searchParams.set('service', service);
      for (const scope of scopes) query.searchParams.append('scope', scope);
      const headers: Record<string, string> = {};
      if (credential?.kind === 'basic') {
        query.searchParams.set('account', credential.username);
        headers.authorization = `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
      }
      return request(query, { method: 'GET', dispatcher: this.options.dispatcher, headers });
    };

    const policy = this.options.retryPolicy ?? defaultRetryPolicy;
    const random = this.options.random ?? Math.random;
    let response: Dispatcher.ResponseData;
    for (let attempt = 1; ; attempt++) {
      try {
        response = await send();
      } catch (error) {
        const decision = decideRetry(attempt, { kind: 'network', error }, policy, this.options.clock.now(), random());
        if (!decision.retry) throw new RegistryError(tokenContext, { reason: describeNetworkError(error) }, { cause: error });
        await this.options.clock.sleep(decision.delayMs);
        continue;
      }
      const retryAfter = response.headers['retry-after'];
      const decision =
        response.statusCode === 200
          ? { retry: false as const }
          : decideRetry(
              attempt,
              { kind: 'status', status: response.statusCode, retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter },
              policy,
              this.options.clock.now(),
              random(),
            );
      if (!decision.retry) break;
      await response.body.dump();
      await this.options.clock.sleep(decision.delayMs);
    }

    const text = await response.body.text();
    if (response.statusCode !== 200) {
      throw new RegistryError(tokenContext, {
        status: response.statusCode,
        details: parseRegistryErrorBody(text),
      });
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch (error) {
      throw new RegistryError(tokenContext, { reason: 'the token server answered with something not JSON' }, { cause: error });
    }
    const token =
      typeof body.token === 'string' && body.token
        ? body.token
        : typeof body.access_token === 'string'
          ? body.access_token
          : undefined;
    if (!token) throw new RegistryError(tokenContext, { reason: 'the token server answered without a token' });
    const lifetimeSeconds =
      typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : defaultTokenLifetimeSeconds;
    const issuedAt = typeof body.issued_at === 'string' ? Date.parse(body.issued_at) : Number.NaN;
    const now = this.options.clock.now();
    // Our clock decides, not the server's: issued_at only shortens the lifetime, never extends it.
    const start = Number.isNaN(issuedAt) ? now : Math.min(now, issuedAt);
    const lifetimeMs = lifetimeSeconds * 1000;
    // Stop using a token a little before it expires so it does not lapse in flight.
    const margin = Math.min(10_000, lifetimeMs / 4);
    return { token, expiresAt: start + lifetimeMs - margin };
  }
}

/** Prefer Bearer over Basic when a registry offers both. */
function pickChallenge(challenges: Challenge[]): Challenge | undefined {
  return (
    challenges.find((c) => c.scheme === 'bearer') ??
    challenges.find((c) => c.scheme === 'basic') ??
    challenges[0]
  );
}

/** An undici/Node network error as words, without anything from the request's headers. */
export function describeNetworkError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const causeCode = (error.cause as { code?: unknown } | undefined)?.code;
    const codes = [code, causeCode].filter((c): c is string => typeof c === 'string');
    return codes.length ? `${error.message} (${[...new Set(codes)].join(', ')})` : error.message;
  }
  return String(error);
}
