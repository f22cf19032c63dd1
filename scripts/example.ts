/**
 * The main job, end to end on this machine: a throw-away registry on 127.0.0.1, a busybox base image
 * made from Debian's busybox-static (with umoci and skopeo, as the tests do), then kiln for real:
 * the build of examples/hello pushed to that registry, its digest, a copy into an OCI layout, and the
 * image read back by skopeo. Run through scripts/example.sh.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pushBusyboxImage } from '../test/harness/base-images.js';
import { startRegistry } from '../test/harness/registry.js';

const run = promisify(execFile);
const repo = path.resolve(import.meta.dirname, '..');
const cli = path.join(repo, 'dist/cli.js');

async function kiln(args: string[]): Promise<string> {
  console.log(`\n$ kiln ${args.join(' ')}`);
  const child = execFile(process.execPath, [cli, ...args], { maxBuffer: 64 << 20 });
  child.stderr?.pipe(process.stderr);
  let stdout = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  process.stdout.write(stdout);
  if (code !== 0) throw new Error(`kiln exited with ${code}`);
  return stdout.trim().split('\n').at(-1) ?? '';
}

const work = await mkdtemp(path.join(os.tmpdir(), 'kiln-example-'));
const registry = await startRegistry('plain');
try {
  const base = await pushBusyboxImage({ registry: registry.host, skopeoDestArgs: registry.skopeoDestArgs() });
  console.log(`registry ${registry.url}, base image ${base.reference}`);
  const destination = `${registry.host}/examples/hello:latest`;
  const digest = await kiln(['--context', path.join(repo, 'examples/hello'), '--build-arg', `BASE=${base.reference}`, '--destination', destination]);
  await kiln(['copy', `${destination}`, `oci:${path.join(work, 'layout')}:hello`]);
  const { stdout } = await run('skopeo', ['inspect', '--tls-verify=false', `docker://${destination}`]);
  const inspected = JSON.parse(stdout) as { Digest: string; Layers: string[] };
  console.log(`\nskopeo reads ${destination}: digest ${inspected.Digest}, ${inspected.Layers.length} layers`);
  if (inspected.Digest !== digest) throw new Error(`kiln printed ${digest} but the registry holds ${inspected.Digest}`);
  console.log('the example image was built and pushed by kiln, and its digest checks out');
} finally {
  await registry.stop();
  await rm(work, { recursive: true, force: true });
}
