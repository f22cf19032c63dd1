/**
 * A blob upload cut part-way: a TCP relay in front of the real registry forwards the first large
 * PATCH only up to a byte count and then closes both connections. The client asks the upload
 * session how far it got (to send the rest with `Content-Range`); distribution 2.8 cannot resume a
 * cut session, so the client must start a fresh one, and the registry must end up with exactly
 * the right blob.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import net, { type AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { RegistryClient } from '../../src/registry/client.js';
import { pushImage } from '../../src/registry/remote-image.js';
import type { Clock } from '../../src/registry/retry.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { runTool } from '../harness/process.js';
import { generateImage } from '../harness/generated-image.js';

/** Relays TCP to `target`; the first time a client sends `PATCH `, cuts it after `cutAfter` more bytes. */
async function startCuttingRelay(target: { host: string; port: number }, cutAfter: number) {
  const sockets = new Set<net.Socket>();
  const state = { cuts: 0, armed: true };
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    sockets.add(client).add(upstream);
    let remaining: number | undefined;
    client.on('data', (data: Buffer) => {
      if (!state.armed) {
        upstream.write(data);
        return;
      }
      if (remaining === undefined) {
        const at = data.indexOf('PATCH ');
        if (at < 0) {
          upstream.write(data);
          return;
        }
        remaining = at + cutAfter;
      }
      if (data.length < remaining) {
        remaining -= data.length;
        upstream.write(data);
        return;
      }
      state.armed = false;
      client.pause();
      upstream.write(data.subarray(0, remaining), () => {
        state.cuts++;
        // Give the registry a moment to store what arrived before the connection goes.
        setTimeout(() => {
          upstream.destroy();
          client.destroy();
        }, 200);
      });
    });
    upstream.on('data', (data: Buffer) => client.write(data));
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    state,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

let registry: TestRegistry;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-e2e-resume-'));
  registry = await startRegistry('plain');
});

afterAll(async () => {
  await registry?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('an upload cut part-way', () => {
  it('asks the session how far it got, and starts a fresh one when the registry cannot resume it', async () => {
    const [host, port] = registry.host.split(':') as [string, string];
    const relay = await startCuttingRelay({ host, port: Number(port) }, 3 * 1024 * 1024);
    const agent = new Agent();
    try {
      const image = await generateImage(dir, { layers: [[{ name: 'big', content: { randomBytes: 8 * 1024 * 1024 } }]] });
      const lines: string[] = [];
      const clock: Clock = { now: () => Date.now(), sleep: async () => undefined };
      const client = new RegistryClient({
        endpoint: { registry: relay.host, apiHost: relay.host, scheme: 'http', dispatcher: agent },
        credentials: { get: async () => undefined },
        monolithicUploadLimit: 1024 * 1024,
        clock,
        log: (line) => lines.push(line),
      });
      const digest = await pushImage(client, 'kiln/resumed', image, { tags: ['v1'] });
      expect(relay.state.cuts).toBe(1);
      expect(digest).toBe(image.digest);

      const log = (await registry.readLog()).split('\n');
      // The client asked the cut session how far it got; distribution 2.8 cannot say (it answers
      // 404 BLOB_UPLOAD_INVALID), so a second session carried the whole blob.
      const statusQueries = log.filter((l) => /"GET \/v2\/kiln\/resumed\/blobs\/uploads\/[^"]*" (204|404)/.test(l));
      expect(statusQueries).toHaveLength(1);
      const sessions = log.filter((l) => /"POST \/v2\/kiln\/resumed\/blobs\/uploads\/ [^"]*" 202/.test(l));
      expect(sessions.length).toBe(3); // the layer twice, the config once
      expect(lines.some((l) => l.includes('cannot be resumed') || l.includes('resuming at byte'))).toBe(true);

      // skopeo reads the blob the registry assembled and checks its digest.
      await runTool('skopeo', ['copy', '--src-tls-verify=false', `docker://${registry.host}/kiln/resumed:v1`, `oci:${path.join(dir, 'out')}:v1`]);
    } finally {
      await agent.close();
      await relay.stop();
    }
  });
});
