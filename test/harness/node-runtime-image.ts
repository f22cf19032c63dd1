/**
 * A stand-in for the official node image (there is no Docker Hub here): busybox, the host's node at
 * /usr/local/bin/node with the shared libraries and dynamic loader it links (found with the
 * loader's --list, as ldd does), util-linux's tools that chroot isolation runs, the host's git with
 * its http(s) helper (as the official image has git), and the host's CA bundle. Packed by umoci and
 * pushed by skopeo.
 */
import { copyFile, mkdir, mkdtemp, readlink, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { makeBusyboxRootfs } from './base-images.js';
import { runTool } from './process.js';

export interface NodeRuntimeImageOptions {
  registry: string;
  /** `repository:tag` (default `node-runtime:test`). */
  image?: string;
  skopeoDestArgs: readonly string[];
  /** The node binary to copy (default: the one running the tests). */
  node?: string;
  caBundle?: string;
  /**
   * Host programs copied in with their libraries, each at its own path (default util-linux's setpriv,
   * unshare, flock, and git with its helper for http(s) remotes).
   */
  tools?: readonly string[];
}

/** The ELF interpreter and libraries a dynamically linked program loads, as absolute paths. */
export async function sharedLibraries(program: string): Promise<{ loader: string; libraries: string[] }> {
  const { stdout } = await runTool('ldd', [program]);
  const libraries: string[] = [];
  let loader: string | undefined;
  for (const line of stdout.split('\n')) {
    const linked = /=>\s+(\/\S+)/.exec(line);
    if (linked?.[1]) libraries.push(linked[1]);
    else if (/^\s*(\/\S*ld-\S+)\s/.test(line)) loader = line.trim().split(/\s+/)[0];
  }
  if (loader === undefined) throw new Error(`ldd ${program}: no dynamic loader (a static binary is not what this image stands for)`);
  return { loader, libraries };
}

export async function pushNodeRuntimeImage(options: NodeRuntimeImageOptions): Promise<string> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'kiln-node-runtime-'));
  try {
    const rootfs = path.join(work, 'rootfs');
    await makeBusyboxRootfs(rootfs, '/bin/busybox');
    const node = await realPath(options.node ?? process.execPath);
    const { loader, libraries } = await sharedLibraries(node);
    for (const file of [loader, ...libraries]) await copyInto(rootfs, file, file);
    for (const tool of options.tools ?? ['/usr/bin/setpriv', '/usr/bin/unshare', '/usr/bin/flock', '/usr/bin/getfattr', '/usr/bin/setfattr', ...(await hostGit())]) {
      const linked = await sharedLibraries(tool);
      for (const file of [tool, linked.loader, ...linked.libraries]) await copyInto(rootfs, file, file);
    }
    await copyInto(rootfs, node, '/usr/local/bin/node');
    await copyInto(rootfs, options.caBundle ?? '/etc/ssl/certs/ca-certificates.crt', '/etc/ssl/certs/ca-certificates.crt');

    const layout = path.join(work, 'oci');
    const image = `${layout}:latest`;
    await runTool('umoci', ['init', '--layout', layout]);
    await runTool('umoci', ['new', '--image', image]);
    await runTool('umoci', ['insert', '--rootless=false', '--image', image, rootfs, '/']);
    await runTool('umoci', [
      'config', '--image', image, '--os=linux', `--architecture=${process.arch === 'x64' ? 'amd64' : process.arch}`,
      '--config.env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', '--config.cmd=node',
    ]);
    const reference = `${options.registry}/${options.image ?? 'node-runtime:test'}`;
    await runTool('skopeo', ['copy', ...options.skopeoDestArgs, `oci:${image}`, `docker://${reference}`]);
    return reference;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The host's git and the helper it runs for http(s) remotes, found in its exec path: the same path in the image. */
async function hostGit(): Promise<string[]> {
  const program = (await runTool('which', ['git'])).stdout.trim();
  const execPath = (await runTool(program, ['--exec-path'])).stdout.trim();
  return [program, path.join(execPath, 'git-remote-http')];
}

async function realPath(file: string): Promise<string> {
  try {
    const target = await readlink(file);
    return realPath(path.resolve(path.dirname(file), target));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EINVAL') return file;
    throw error;
  }
}

/** Copies the file's content (links followed) to the same absolute path under the root. */
async function copyInto(rootfs: string, from: string, to: string): Promise<void> {
  const target = path.join(rootfs, to);
  await mkdir(path.dirname(target), { recursive: true });
  await rm(target, { force: true });
  await copyFile(from, target);
}
