/**
 * `kiln copy` as a user runs it: the bundled CLI (dist/cli.js, built by `npm run build`) against
 * real registries, with skopeo reading back what it wrote.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Digest } from '../../src/image/digest.js';
import { pushBusyboxImage } from '../harness/base-images.js';
import { runTool } from '../harness/process.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';

const cli = path.resolve(import.meta.dirname, '../../dist/cli.js');
const execFileAsync = promisify(execFile);

async function kiln(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ stdout: string; stderr: string }> {
  return execFileAsync(process.execPath, [cli, ...args], { env: { ...process.env, ...env } });
}

/** skopeo inspect spells the copy flags without their `--src-` prefix. */
function inspectArgs(registry: TestRegistry): string[] {
  return registry.skopeoSrcArgs().map((arg) => arg.replace(/^--src-/, '--'));
}

function lastLine(text: string): string {
  return text.trim().split('\n').at(-1) ?? '';
}

describe('kiln copy (bundled CLI, real registries)', () => {
  let plain: TestRegistry;
  let secure: TestRegistry;
  let work: string;
  let sourceDigest: string;
  let dockerConfig: string;

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'kiln-cli-copy-'));
    [plain, secure] = await Promise.all([startRegistry('plain'), startRegistry('basic')]);
    const pushed = await pushBusyboxImage({ registry: plain.host, skopeoDestArgs: plain.skopeoDestArgs() });
    sourceDigest = sha256Digest(pushed.rawManifest);
    dockerConfig = path.join(work, 'docker');
    await runTool('mkdir', ['-p', dockerConfig]);
    const auth = Buffer.from(`${secure.username}:${secure.password}`).toString('base64');
    await writeFile(path.join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [secure.host]: { auth } } }));
  });

  afterAll(async () => {
    await Promise.all([plain?.stop(), secure?.stop()]);
    await rm(work, { recursive: true, force: true });
  });

  it('copies within a registry, keeping the digest, and prints it last', async () => {
    const { stdout } = await kiln(['copy', '--insecure-pull', '--insecure', `${plain.host}/busybox:latest`, `docker://${plain.host}/mirror/busybox:copied`]);
    expect(lastLine(stdout)).toBe(sourceDigest);
    const { stdout: inspected } = await runTool('skopeo', ['inspect', '--raw', ...inspectArgs(plain), `docker://${plain.host}/mirror/busybox:copied`]);
    expect(sha256Digest(inspected)).toBe(sourceDigest);
    // Mounted from the source repository (201), never uploaded again.
    const log = await plain.readLog();
    expect(log).toMatch(/"POST \/v2\/mirror\/busybox\/blobs\/uploads\/\?mount=sha256%3A[0-9a-f]{64}&from=busybox HTTP\/1\.1" 201/);
    expect(log).not.toMatch(/"PUT \/v2\/mirror\/busybox\/blobs\/uploads\//);
  });

  it('copies to another registry with credentials from DOCKER_CONFIG, never printing them', async () => {
    const { stdout, stderr } = await kiln(['copy', `${plain.host}/busybox:latest`, `${secure.host}/team/busybox:1`], { DOCKER_CONFIG: dockerConfig });
    expect(lastLine(stdout)).toBe(sourceDigest);
    expect(stdout + stderr).not.toContain(secure.password);
    const { stdout: inspected } = await runTool('skopeo', ['inspect', '--raw', ...inspectArgs(secure), `docker://${secure.host}/team/busybox:1`]);
    expect(sha256Digest(inspected)).toBe(sourceDigest);
  });

  it('fails clearly without credentials, naming the registry and its own message', async () => {
    const failure = await kiln(['copy', `${plain.host}/busybox:latest`, `${secure.host}/team/busybox:2`], { DOCKER_CONFIG: path.join(work, 'none') }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toContain(secure.host);
    expect(failure?.stderr).toMatch(/401|unauthori[sz]ed|authentication required/i);
  });

  it('reports an untrusted certificate as such instead of falling back to plain HTTP, and trusts a given CA', async () => {
    const tls = await startRegistry('tls');
    try {
      const failure = await kiln(['copy', `${plain.host}/busybox:latest`, `${tls.host}/busybox:1`]).then(
        () => undefined,
        (error: { stderr: string }) => error,
      );
      expect(failure?.stderr).toMatch(/certificate/i);
      const caFile = path.join(work, 'ca.pem');
      await writeFile(caFile, tls.caCert ?? '');
      const { stdout } = await kiln(['copy', '--registry-certificate', `${tls.host}=${caFile}`, `${plain.host}/busybox:latest`, `${tls.host}/busybox:1`]);
      expect(lastLine(stdout)).toBe(sourceDigest);
    } finally {
      await tls.stop();
    }
  });

  it('writes an OCI layout and a docker-archive that skopeo reads, and copies back from them', async () => {
    const layout = path.join(work, 'layout');
    const { stdout } = await kiln(['copy', `${plain.host}/busybox:latest`, `oci:${layout}:bb`]);
    expect(lastLine(stdout)).toBe(sourceDigest);
    const { stdout: fromLayout } = await runTool('skopeo', ['inspect', '--raw', `oci:${layout}:bb`]);
    expect(sha256Digest(fromLayout)).toBe(sourceDigest);

    const archive = path.join(work, 'busybox.tar');
    await kiln(['copy', `oci:${layout}:bb`, `docker-archive:${archive}:busybox:kiln`]);
    const { stdout: archived } = await runTool('skopeo', ['inspect', '--raw', `docker-archive:${archive}`]);
    expect(JSON.parse(archived).layers).toHaveLength(1);
    const { stdout: manifestJson } = await runTool('tar', ['-xOf', archive, 'manifest.json']);
    expect(JSON.parse(manifestJson)[0].RepoTags).toEqual(['busybox:kiln']);

    const back = await kiln(['copy', `oci:${layout}:bb`, `${plain.host}/from-layout:1`]);
    expect(lastLine(back.stdout)).toBe(sourceDigest);
  });
});
