/**
 * A smart-HTTP git server on 127.0.0.1: a node http server that runs `git http-backend` (the host's
 * git) as a CGI program for each request, serving the repositories below one directory, optionally
 * behind a check of each request (Basic auth). Also makes the repositories it serves.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { runTool } from './process.js';

export interface GitHttpServerOptions {
  /** The directory served: `/NAME.git` is the repository `projectRoot/NAME.git`. */
  projectRoot: string;
  /** Whether a request may go on; one refused is answered 401 with a Basic challenge (default: all may). */
  authorize?: (request: IncomingMessage) => boolean;
}

export interface GitHttpServer {
  /** `http://127.0.0.1:PORT` */
  origin: string;
  /** `127.0.0.1:PORT` */
  host: string;
  stop(): Promise<void>;
}

export async function startGitHttpServer(options: GitHttpServerOptions): Promise<GitHttpServer> {
  const server = createServer((request, response) => {
    if (options.authorize !== undefined && !options.authorize(request)) {
      response.writeHead(401, { 'www-authenticate': 'Basic realm="kiln"' });
      response.end('auth required');
      return;
    }
    runHttpBackend(options.projectRoot, request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin: `http://${host}`,
    host,
    stop: () => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
  };
}

/** Runs `git http-backend` as a CGI program for one request. */
function runHttpBackend(projectRoot: string, request: IncomingMessage, response: ServerResponse): void {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const child = spawn('git', ['http-backend'], {
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      GIT_PROJECT_ROOT: projectRoot,
      GIT_HTTP_EXPORT_ALL: '1',
      REQUEST_METHOD: request.method ?? 'GET',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: request.headers['content-type'] ?? '',
      HTTP_CONTENT_ENCODING: request.headers['content-encoding'] ?? '',
      GIT_PROTOCOL: String(request.headers['git-protocol'] ?? ''),
      REMOTE_USER: 'kiln',
      REMOTE_ADDR: '127.0.0.1',
    },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  request.pipe(child.stdin);
  const out: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  child.on('error', (error) => {
    response.writeHead(500);
    response.end(`git http-backend: ${error.message}`);
  });
  child.on('close', () => {
    if (response.headersSent) return;
    const all = Buffer.concat(out);
    const split = all.indexOf('\r\n\r\n');
    const head = all.subarray(0, split).toString('latin1');
    let status = 200;
    const headers: Record<string, string> = {};
    for (const line of head.split('\r\n')) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === 'status') status = Number(value.split(' ')[0]);
      else headers[name] = value;
    }
    response.writeHead(status, headers);
    response.end(all.subarray(split + 4));
  });
}

/**
 * Writes the files (relative path → content) into the repository at `repository` (made when absent)
 * and commits them on `branch`, which starts from the current commit when it is new.
 */
export async function commitFiles(repository: string, branch: string, files: Readonly<Record<string, string>>): Promise<void> {
  const identity = ['-c', 'user.name=kiln', '-c', 'user.email=kiln@example.com', '-c', `init.defaultBranch=${branch}`];
  const git = (...args: string[]) => runTool('git', [...identity, ...args], { cwd: repository });
  await mkdir(repository, { recursive: true });
  // On an existing repository this changes nothing (git "reinitializes" it).
  await git('init', '--quiet', '.');
  await git('checkout', '--quiet', '-B', branch);
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(repository, name)), { recursive: true });
    await writeFile(path.join(repository, name), content);
  }
  await git('add', '.');
  await git('commit', '--quiet', '-m', `${branch}: ${Object.keys(files).join(', ')}`);
}
