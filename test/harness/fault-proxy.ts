/**
 * A reverse proxy on 127.0.0.1 in front of a real registry that injects faults on request: cut a
 * response body after N bytes, answer 500, answer 429 with Retry-After, each for the first K
 * requests a matcher selects. Everything else passes through untouched (bodies are streamed), and
 * every request is recorded so tests can count what the client did.
 */
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Transform, type TransformCallback, pipeline } from 'node:stream';

export interface RequestMatcher {
  /** HTTP method, upper-case; any when absent. */
  method?: string;
  /** Tested against the path with its query (`/v2/x/blobs/uploads/?mount=...`). */
  path?: RegExp;
}

export type Fault =
  /** Send the status line, headers and this many body bytes, then destroy the connection. */
  | { kind: 'drop'; afterBytes: number }
  /** Answer with this status (500, 502, 503...) and a distribution-style error body. */
  | { kind: 'status'; status: number; message?: string }
  /** Answer 429 with `Retry-After: seconds`. */
  | { kind: 'throttle'; retryAfterSeconds: number };

export interface FaultRule {
  match: RequestMatcher;
  fault: Fault;
  /** How many of the matching requests get the fault (the first ones); default 1. */
  times?: number;
}

export interface SeenRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Status sent to the client (the fault's, or the registry's). Undefined while in flight. */
  status: number | undefined;
  fault: Fault['kind'] | undefined;
}

interface ActiveRule {
  rule: FaultRule;
  remaining: number;
}

export function matches(matcher: RequestMatcher, method: string, path: string): boolean {
  if (matcher.method !== undefined && matcher.method.toUpperCase() !== method) return false;
  if (matcher.path !== undefined && !matcher.path.test(path)) return false;
  return true;
}

export class FaultProxy {
  readonly #server: Server;
  readonly #upstream: URL;
  readonly #agent: Agent;
  readonly #rules: ActiveRule[] = [];
  readonly #seen: SeenRequest[] = [];
  readonly #sockets = new Set<Socket>();
  /** `127.0.0.1:PORT`, to be used as the registry host in references. */
  readonly host: string;

  private constructor(server: Server, upstream: URL, agent: Agent, host: string) {
    this.#server = server;
    this.#upstream = upstream;
    this.#agent = agent;
    this.host = host;
  }

  /** Starts a proxy in front of `upstream` (`http://127.0.0.1:5000`) on a free loopback port. */
  static async start(upstream: string): Promise<FaultProxy> {
    const upstreamUrl = new URL(upstream);
    if (upstreamUrl.protocol !== 'http:') throw new Error(`fault proxy: only http upstreams are supported, got ${upstream}`);
    const agent = new Agent({ keepAlive: true });
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const port = (server.address() as AddressInfo).port;
    const proxy = new FaultProxy(server, upstreamUrl, agent, `127.0.0.1:${port}`);
    server.on('connection', (socket: Socket) => {
      proxy.#sockets.add(socket);
      socket.on('close', () => proxy.#sockets.delete(socket));
    });
    server.on('request', (req, res) => proxy.#handle(req, res));
    return proxy;
  }

  get url(): string {
    return `http://${this.host}`;
  }

  /** Every request seen so far, in arrival order. */
  get requests(): readonly SeenRequest[] {
    return this.#seen;
  }

  /** Adds a fault; rules are consulted in the order added, the first with uses left wins. */
  inject(rule: FaultRule): void {
    this.#rules.push({ rule, remaining: rule.times ?? 1 });
  }

  /** How many injected faults have not fired yet. */
  get pendingFaults(): number {
    return this.#rules.reduce((sum, r) => sum + r.remaining, 0);
  }

  clearFaults(): void {
    this.#rules.length = 0;
  }

  /** Forgets recorded requests (not faults). */
  resetCounts(): void {
    this.#seen.length = 0;
  }

  count(matcher: RequestMatcher): number {
    return this.#seen.filter((r) => matches(matcher, r.method, r.path)).length;
  }

  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    this.#agent.destroy();
    await closed;
  }

  #takeFault(method: string, path: string): Fault | undefined {
    for (const active of this.#rules) {
      if (active.remaining > 0 && matches(active.rule.match, method, path)) {
        active.remaining -= 1;
        return active.rule.fault;
      }
    }
    return undefined;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const method = (req.method ?? 'GET').toUpperCase();
    const path = req.url ?? '/';
    const fault = this.#takeFault(method, path);
    const seen: SeenRequest = { method, path, headers: req.headers, status: undefined, fault: fault?.kind };
    this.#seen.push(seen);

    if (fault?.kind === 'status' || fault?.kind === 'throttle') {
      // Read the request body to its end first, so the client sees an answer, not a reset.
      req.resume();
      req.on('end', () => {
        const status = fault.kind === 'status' ? fault.status : 429;
        const code = fault.kind === 'status' ? 'UNKNOWN' : 'TOOMANYREQUESTS';
        const message = fault.kind === 'status' ? (fault.message ?? 'injected fault') : 'injected throttle';
        const body = JSON.stringify({ errors: [{ code, message, detail: null }] });
        const headers: Record<string, string | number> = {
          'content-type': 'application/json; charset=utf-8',
          'content-length': Buffer.byteLength(body),
        };
        if (fault.kind === 'throttle') headers['retry-after'] = String(fault.retryAfterSeconds);
        seen.status = status;
        res.writeHead(status, headers);
        res.end(body);
      });
      return;
    }

    const upstreamReq = httpRequest(
      {
        protocol: this.#upstream.protocol,
        hostname: this.#upstream.hostname,
        port: this.#upstream.port,
        method,
        path,
        // The Host header stays the proxy's, so the registry builds upload URLs that point back here.
        headers: req.headers,
        agent: this.#agent,
      },
      (upstreamRes) => {
        const headers = { ...upstreamRes.headers };
        const location = headers.location;
        if (typeof location === 'string') headers.location = this.#rewriteLocation(location);
        seen.status = upstreamRes.statusCode ?? 502;
        res.writeHead(seen.status, headers);
        if (fault?.kind === 'drop') {
          pipeline(upstreamRes, new Truncate(fault.afterBytes, () => res.socket?.destroy()), res, () => {
            // The cut is the point of this fault; the pipeline's error only says it happened.
          });
        } else {
          pipeline(upstreamRes, res, () => {
            // A client that goes away mid-body ends the pipeline; nothing to report to it.
          });
        }
      },
    );
    upstreamReq.on('error', (error) => {
      seen.status = 502;
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`fault proxy: upstream ${this.#upstream.host} failed: ${error.message}`);
      } else {
        res.destroy(error);
      }
    });
    pipeline(req, upstreamReq, (error) => {
      if (error) upstreamReq.destroy(error);
    });
  }

  /** An absolute Location pointing at the registry must point at the proxy instead. */
  #rewriteLocation(location: string): string {
    if (!/^[a-z]+:\/\//i.test(location)) return location;
    const url = new URL(location);
    if (url.host === this.#upstream.host) {
      url.protocol = 'http:';
      url.host = this.host;
      return url.toString();
    }
    return location;
  }
}

/** Passes `limit` bytes through, then calls `cut` (which destroys the connection). */
class Truncate extends Transform {
  #left: number;
  readonly #cut: () => void;
  #done = false;

  constructor(limit: number, cut: () => void) {
    super();
    this.#left = limit;
    this.#cut = cut;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#done) {
      callback();
      return;
    }
    if (chunk.length < this.#left) {
      this.#left -= chunk.length;
      callback(null, chunk);
      return;
    }
    this.#done = true;
    const head = chunk.subarray(0, this.#left);
    this.#left = 0;
    // Let the head reach the socket before cutting it, so the client really got N bytes.
    this.push(head);
    setImmediate(() => {
      this.#cut();
      callback();
    });
  }
}
