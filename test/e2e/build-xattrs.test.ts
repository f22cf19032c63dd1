/**
 * RUN steps that set extended attributes (file capabilities, user.*) give layers that keep them, in
 * every snapshot mode: built with the bundled CLI (dist/cli.js) on a busybox base in a real
 * registry, read back with skopeo and umoci (never kiln), and run with podman as a non-root user
 * whom only the file capability lets read /etc/shadow.
 *
 * A capability set on a file an earlier step made is seen too (walking modes compare it, as BuildKit does).
 * busybox has no setfattr, so the step runs the host's, with its libraries and dynamic loader, from
 * a context directory bound into the step (RUN --mount=type=bind).
 *
 * `COPY --from` a stage keeps them too, as BuildKit's copy does; a COPY from the context keeps none
 * (BuildKit's context transfer carries none), even of a context file that has some on the host.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBusyboxImage } from '../harness/base-images.js';
import { sharedLibraries } from '../harness/node-runtime-image.js';
import { Podman } from '../harness/podman.js';
import { runTool } from '../harness/process.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';

const cli = path.resolve(import.meta.dirname, '../../dist/cli.js');
const execFileAsync = promisify(execFile);

/** cap_dac_override+ep (VFS_CAP_REVISION_2): reading any file, whoever runs the program. */
const dacOverride = '0x0100000202000000000000000000000000000000';
/** Bytes no UTF-8 string holds, to show the layer keeps values as bytes. */
const binaryValue = '0x00ff80';

describe('RUN steps keep the extended attributes they set (busybox base, real registry, chroot)', () => {
  let registry: TestRegistry;
  let podman: Podman;
  let work: string;
  let context: string;

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'kiln-xattrs-e2e-'));
    registry = await startRegistry('plain');
    podman = await Podman.create();
    const base = (await pushBusyboxImage({ registry: registry.host, skopeoDestArgs: registry.skopeoDestArgs() })).reference;

    context = path.join(work, 'context');
    const tools = path.join(context, 'tools');
    await mkdir(path.join(tools, 'lib'), { recursive: true });
    const { loader, libraries } = await sharedLibraries('/usr/bin/setfattr');
    await copyFile(loader, path.join(tools, 'ld.so'));
    for (const library of libraries) await copyFile(library, path.join(tools, 'lib', path.basename(library)));
    await copyFile('/usr/bin/setfattr', path.join(tools, 'setfattr'));
    const setfattr = '/tools/ld.so --library-path /tools/lib /tools/setfattr';
    await writeFile(
      path.join(context, 'Dockerfile'),
      [
        `FROM ${base}`,
        'RUN --mount=type=bind,source=tools,target=/tools \\',
        '    mkdir -p /opt/cap && cp /bin/busybox /opt/cap/cat && echo data > /opt/file && \\',
        `    ${setfattr} -n user.kiln -v ${binaryValue} /opt/file && \\`,
        `    ${setfattr} -n user.kiln.dir -v hello /opt && \\`,
        `    ${setfattr} -n security.capability -v ${dacOverride} /opt/cap/cat && \\`,
        '    cp /bin/busybox /opt/cap/later',
        // A capability alone on a file an earlier step made: no mtime, size or content changes.
        'RUN --mount=type=bind,source=tools,target=/tools \\',
        `    ${setfattr} -n security.capability -v ${dacOverride} /opt/cap/later`,
        '',
      ].join('\n'),
    );
    await writeFile(
      path.join(context, 'Dockerfile.copy'),
      [
        `FROM ${base} AS caps`,
        'RUN --mount=type=bind,source=tools,target=/tools \\',
        '    mkdir -p /opt/cap && cp /bin/busybox /opt/cap/cat && \\',
        `    ${setfattr} -n user.kiln -v ${binaryValue} /opt/cap/cat && \\`,
        `    ${setfattr} -n security.capability -v ${dacOverride} /opt/cap/cat`,
        `FROM ${base}`,
        'COPY --from=caps /opt/cap/cat /copied/cat',
        'COPY marked /copied/marked',
        '',
      ].join('\n'),
    );
    await writeFile(path.join(context, 'marked'), 'from the context\n');
    await runTool('setfattr', ['-n', 'user.kiln.context', '-v', 'host', path.join(context, 'marked')]);
  });
  afterAll(async () => {
    const outcomes = await Promise.allSettled([registry?.stop(), podman?.dispose()]);
    await rm(work, { recursive: true, force: true });
    for (const outcome of outcomes) if (outcome.status === 'rejected') throw outcome.reason;
  });

  /** The pushed image unpacked by umoci, which applies the layers' xattrs. */
  async function unpacked(reference: string): Promise<string> {
    const layout = path.join(work, `layout-${path.basename(reference).replace(/\W/g, '-')}`);
    await runTool('skopeo', ['copy', '--src-tls-verify=false', `docker://${reference}`, `oci:${layout}:img`]);
    const rootfs = `${layout}-rootfs`;
    await runTool('umoci', ['raw', 'unpack', '--image', `${layout}:img`, rootfs]);
    return rootfs;
  }

  /** The attribute's value in hex, as getfattr prints it (`NAME=0x...`). */
  async function xattr(file: string, name: string): Promise<string | undefined> {
    const { stdout } = await runTool('getfattr', ['--absolute-names', '--no-dereference', '--encoding=hex', '-n', name, file]);
    return stdout.split('\n').find((line) => line.startsWith(`${name}=`))?.slice(name.length + 1);
  }

  /** Builds the context with the bundled CLI, chroot isolation, and pushes the image to `reference`. */
  async function build(reference: string, mode: string, dockerfile = 'Dockerfile'): Promise<void> {
    const kilnDir = path.join(work, `kiln-${path.basename(reference).replace(/\W/g, '-')}`);
    const { stdout } = await execFileAsync(
      process.execPath,
      [cli, '--kaniko-dir', kilnDir, '--context', context, '--dockerfile', path.join(context, dockerfile), '--destination', reference, '--isolation', 'chroot', '--snapshot-mode', mode],
      { maxBuffer: 64 << 20 },
    );
    expect(stdout.trim().split('\n').at(-1)).toMatch(/^sha256:[0-9a-f]{64}$/);
  }

  /** Every attribute name the file has (getfattr fails on a single missing one, so absence is shown by the list). */
  async function xattrNames(file: string): Promise<string[]> {
    const { stdout } = await runTool('getfattr', ['--absolute-names', '--no-dereference', '--dump', '--match=-', file]);
    return stdout.split('\n').filter((line) => line !== '' && !line.startsWith('#')).map((line) => line.split('=')[0] as string);
  }

  for (const mode of ['full', 'redo', 'overlay'] as const) {
    it(`--snapshot-mode ${mode}: the layer carries security.capability and user.*, and the capability works`, async () => {
      const reference = `${registry.host}/xattrs/${mode}:1`;
      await build(reference, mode);

      const rootfs = await unpacked(reference);
      expect(await xattr(path.join(rootfs, 'opt/file'), 'user.kiln')).toBe(binaryValue);
      expect(await xattr(path.join(rootfs, 'opt'), 'user.kiln.dir')).toBe(`0x${Buffer.from('hello').toString('hex')}`);
      expect(await xattr(path.join(rootfs, 'opt/cap/cat'), 'security.capability')).toBe(dacOverride);
      expect(await xattr(path.join(rootfs, 'opt/cap/later'), 'security.capability')).toBe(dacOverride);

      // /etc/shadow is root's, mode 0640: nobody reads it with busybox's cat, and does with the copy holding the capability.
      const denied = await podman.run(reference, { user: '65534:65534', command: ['cat', '/etc/shadow'] });
      expect(denied.exitCode).not.toBe(0);
      const allowed = await podman.runOk(reference, { user: '65534:65534', command: ['/opt/cap/cat', '/etc/shadow'] });
      expect(allowed.stdout).toContain('root:*:');
    });
  }

  it('COPY --from a stage keeps security.capability and user.*; COPY from the context keeps none', async () => {
    const reference = `${registry.host}/xattrs/copy-from:1`;
    await build(reference, 'full', 'Dockerfile.copy');

    const rootfs = await unpacked(reference);
    expect(await xattr(path.join(rootfs, 'copied/cat'), 'user.kiln')).toBe(binaryValue);
    expect(await xattr(path.join(rootfs, 'copied/cat'), 'security.capability')).toBe(dacOverride);
    // The context file has it on the host; the image's copy must not.
    expect(await readFile(path.join(rootfs, 'copied/marked'), 'utf8')).toBe('from the context\n');
    expect(await xattrNames(path.join(context, 'marked'))).toContain('user.kiln.context');
    expect(await xattrNames(path.join(rootfs, 'copied/marked'))).not.toContain('user.kiln.context');

    const allowed = await podman.runOk(reference, { user: '65534:65534', command: ['/copied/cat', '/etc/shadow'] });
    expect(allowed.stdout).toContain('root:*:');
  });
});
