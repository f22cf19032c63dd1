/**
 * A small Bearer token server for tests (docker's token protocol): GET with Basic credentials, and
 * the OAuth2 POST with a password or refresh-token grant. It signs RS256 JWTs with node:crypto;
 * the JWS header carries the signing certificate in `x5c`, which distribution 2.8 accepts when the
 * certificate is in its `rootcertbundle`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createSign, randomBytes, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { runTool } from './process.js';

export interface TokenServerOptions {
  /** Directory for the key and certificate (the caller removes it). */
  dir: string;
  /** username → password accepted for Basic and the password grant. */
  users: Record<string, string>;
  /** refresh token (a config.json identitytoken) → username. */
  refreshTokens?: Record<string, string>;
  /** Lifetime of issued tokens in seconds. */
  lifetimeSeconds?: number;
  service?: string;
  issuer?: string;
}

export interface TokenRequestRecord {
  method: string;
  /** The username the request authenticated as, or undefined (anonymous). */
  account: string | undefined;
  grantType: string | undefined;
  scopes: string[];
  status: number;
}

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  /** PEM file with the signing certificate: the registry's rootcertbundle. */
  rootCertBundle: string;
  /** Every token request, in order (tests count them). */
  readonly requests: TokenRequestRecord[];
  /**
   * While above 0, each token issued is already expired by its `exp` claim (though `expires_in`
   * promises the usual lifetime), and the count goes down: the registry then answers 401 to a token
   * the client believes valid, which is how a client's refresh-on-401 is tested without waiting.
   */
  expiredTokensToIssue: number;
  /** Repositories for which no access at all is granted (to anyone) while listed. */
  readonly deniedRepositories: Set<string>;
  stop(): Promise<void>;
}

export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const keyPath = path.join(options.dir, 'token-signing.key');
  const certPath = path.join(options.dir, 'token-signing.crt');
  await runTool('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
    '-keyout', keyPath, '-out', certPath, '-subj', '/CN=kiln-test-token-issuer',
  ]);
  const keyPem = await readFile(keyPath, 'utf8');
  const certDer = new X509Certificate(await readFile(certPath)).raw.toString('base64');
  const service = options.service ?? 'kiln-test-registry';
  const issuer = options.issuer ?? 'kiln-test-issuer';
  const lifetime = options.lifetimeSeconds ?? 300;
  const requests: TokenRequestRecord[] = [];
  const state = { expiredTokensToIssue: 0 };
  const deniedRepositories = new Set<string>();

  const sign = (account: string | undefined, scopes: string[]): string => {
    let now = Math.floor(Date.now() / 1000);
    if (state.expiredTokensToIssue > 0) {
      state.expiredTokensToIssue--;
      now -= 2 * 3600; // far beyond any leeway the registry allows
    }
    const access =
      account === undefined ? [] : scopes.flatMap(scopeToAccess).filter((entry) => !deniedRepositories.has(entry.name));
    const headerPart = base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', x5c: [certDer] }));
    const claims = {
      iss: issuer,
      sub: account ?? '',
      aud: service,
      exp: now + lifetime,
      nbf: now - 30,
      iat: now,
      jti: randomBytes(12).toString('hex'),
      access,
    };
    const payload = `${headerPart}.${base64url(JSON.stringify(claims))}`;
    const signature = createSign('RSA-SHA256').update(payload).sign(keyPem);
    return `${payload}.${base64url(signature)}`;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://token.invalid');
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const record = (status: number, account: string | undefined, grantType: string | undefined, scopes: string[]): void => {
      requests.push({ method: req.method ?? '', account, grantType, scopes, status });
    };
    if (url.pathname !== '/token') {
      reply(404, { errors: [{ code: 'NOT_FOUND', message: 'no such endpoint' }] });
      return;
    }
    if (req.method === 'GET') {
      const scopes = url.searchParams.getAll('scope');
      let account: string | undefined;
      const authorization = req.headers.authorization;
      if (authorization) {
        const [scheme, value] = authorization.split(' ');
        const decoded = scheme?.toLowerCase() === 'basic' && value ? Buffer.from(value, 'base64').toString('utf8') : '';
        const cut = decoded.indexOf(':');
        const user = decoded.slice(0, cut);
        if (cut < 0 || options.users[user] === undefined || options.users[user] !== decoded.slice(cut + 1)) {
          record(401, undefined, undefined, scopes);
          reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] });
          return;
        }
        account = user;
      }
      record(200, account, undefined, scopes);
      reply(200, { token: sign(account, scopes), expires_in: lifetime, issued_at: new Date().toISOString() });
      return;
    }
    if (req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      const grantType = form.get('grant_type') ?? undefined;
      const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
      let account: string | undefined;
      if (grantType === 'refresh_token') {
        account = options.refreshTokens?.[form.get('refresh_token') ?? ''];
      } else if (grantType === 'password') {
        const user = form.get('username') ?? '';
        if (options.users[user] !== undefined && options.users[user] === form.get('password')) account = user;
      }
      if (account === undefined) {
        record(401, undefined, grantType, scopes);
        reply(401, { error: 'invalid_grant', error_description: 'unknown refresh token or credentials' });
        return;
      }
      record(200, account, grantType, scopes);
      reply(200, { access_token: sign(account, scopes), expires_in: lifetime, scope: scopes.join(' ') });
      return;
    }
    reply(405, { errors: [{ code: 'UNSUPPORTED', message: 'method not allowed' }] });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'INTERNAL', message: String(error) }] }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    rootCertBundle: certPath,
    requests,
    deniedRepositories,
    get expiredTokensToIssue() {
      return state.expiredTokensToIssue;
    },
    set expiredTokensToIssue(count: number) {
      state.expiredTokensToIssue = count;
    },
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

function scopeToAccess(scope: string): { type: string; name: string; actions: string[] }[] {
  const parts = scope.split(':');
  if (parts.length < 3) return [];
  const type = parts[0] ?? '';
  const actions = (parts[parts.length - 1] ?? '').split(',').filter(Boolean);
  const name = parts.slice(1, -1).join(':');
  return [{ type, name, actions }];
}

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

async function readBody(req: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) parts.push(chunk);
  return Buffer.concat(parts).toString('utf8');
}
