/**
 * `--isolation in-place` as its users run it: the executor image (test/harness/executor-image.ts)
 * started by podman with runc, default capabilities and no --privileged (so it may neither mount nor
 * create namespaces), the build context mounted as a volume, the image pushed to a real registry.
 * What it builds is read back without kiln (skopeo, umoci, layer-tree) and compared with the same
 * Dockerfile built on the host with `--isolation chroot` by the same bundle: in-place must give the
 * same image, and nothing of the job container (kiln, the context, podman's /etc files, /proc) may
 * reach a layer.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand, type CommandResult } from '../harness/command.js';
import { pushDebianImage } from '../harness/debian-image.js';
import { buildExecutorImages, type ExecutorImages } from '../harness/executor-image.js';
import { compareTrees, formatDifferences, listImageLayers, readImageTree, type IgnoreRule, type ImageTree, type TreeDifference } from '../harness/image-tree.js';
import { Podman } from '../harness/podman.js';
import { runTool } from '../harness/process.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';

/** Where the job container sees the build context, as kaniko's documentation mounts it. */
const contextMount = '/workspace';
/** What `docker run` grants by default (CapEff of a root RUN step when the container holds it all). */
const dockerDefaultCaps = 0xa80425fbn;

/**
 * Two stages on Debian minbase: RUN steps that need /proc and real tools (grep, ls, useradd, id),
 * a non-root USER, WORKDIR, ENV, COPY from the context and COPY --from the first stage.
 */
function appDockerfile(debian: string): string {
  return [
    `FROM ${debian} AS builder`,
    'WORKDIR /src',
    'COPY greeting.txt .',
    'RUN tr a-z A-Z < greeting.txt > /shout && ls /proc/self/fd > /builder-fds',
    '',
    `FROM ${debian}`,
    'ENV APP_HOME=/app GREETING="hello in place"',
    'WORKDIR /app',
    'COPY greeting.txt ./greeting.txt',
    'RUN grep CapEff /proc/self/status > /caps && ls /proc/self/fd > /fds && env | sort > /env-root',
    'RUN useradd --create-home --uid 1234 app && chown app /app',
    'USER app',
    'RUN id > /app/id-out && grep CapEff /proc/self/status > /app/caps-app && echo "$GREETING from $(pwd)" > /app/env-out && env | sort > /app/env-app && touch /home/app/made-by-app',
    'COPY --from=builder /shout /app/shout',
    'CMD ["sh", "-c", "cat /app/greeting.txt /app/shout /app/env-out /app/id-out /app/caps-app /caps /fds"]',
    '',
  ].join('\n');
}

/** The digest kiln prints last on standard output. */
function printedDigest(result: CommandResult): string {
  return result.stdout.trim().split('\n').at(-1) ?? '';
}

function capabilityMask(statusLine: string): bigint {
  const hex = /^Cap(?:Eff|Bnd):\s*([0-9a-f]+)\s*$/m.exec(statusLine)?.[1];
  if (hex === undefined) throw new Error(`no capability line in ${JSON.stringify(statusLine)}`);
  return BigInt(`0x${hex}`);
}

/** What `ls /proc/self/fd` prints (C locale: byte order) in a step that holds `extra` besides stdio and ls's own. */
function fdListing(extra: readonly string[] = []): string {
  return `${['0', '1', '2', '3', ...extra].sort().join('\n')}\n`;
}

/** Descriptors this process holds without close-on-exec: every child it starts inherits them. */
async function inheritedDescriptors(): Promise<string[]> {
  const inherited: string[] = [];
  for (const fd of await readdir('/proc/self/fd')) {
    if (Number(fd) < 3) continue;
    const info = await readFile(`/proc/self/fdinfo/${fd}`, 'utf8').catch((error: NodeJS.ErrnoException) => {
      // The descriptor readdir itself used is closed by now.
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    const flags = info === undefined ? undefined : /^flags:\s*([0-7]+)$/m.exec(info)?.[1];
    if (flags !== undefined && (parseInt(flags, 8) & 0o2000000) === 0) inherited.push(fd);
  }
  return inherited;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

describe('in-place isolation: the executor image under podman (runc, default capabilities, not privileged)', () => {
  let registry: TestRegistry;
  let work: string;
  let images: ExecutorImages;
  let debian: string;
  let podman: Podman;
  /** The two-stage Debian context (appDockerfile). */
  let appContext: string;

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'kiln-in-place-'));
    registry = await startRegistry('plain');
    images = await buildExecutorImages({ registry, work });
    debian = (await pushDebianImage({ registry: registry.host, skopeoDestArgs: registry.skopeoDestArgs() })).reference;
    podman = await Podman.create();
    appContext = await writeContext('app', { Dockerfile: appDockerfile(debian), 'greeting.txt': 'hello from the context\n' });
  }, 300_000);
  afterAll(async () => {
    await podman?.dispose();
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  async function writeContext(name: string, files: Readonly<Record<string, string>>): Promise<string> {
    const dir = path.join(work, 'contexts', name);
    await mkdir(dir, { recursive: true });
    for (const [file, text] of Object.entries(files)) await writeFile(path.join(dir, file), text);
    return dir;
  }

  /** `kiln ARGS` in the executor image, as a user runs it: the context mounted read-only. */
  function runExecutor(context: string, args: readonly string[]): Promise<CommandResult> {
    return podman.run(images.executor.reference, {
      registry,
      network: 'host',
      extraArgs: ['--volume', `${context}:${contextMount}:ro`],
      command: ['--context', contextMount, '--dockerfile', `${contextMount}/Dockerfile`, ...args],
      timeoutMs: 240_000,
    });
  }

  async function registryDigest(reference: string): Promise<string> {
    const srcArgs = registry.skopeoSrcArgs().map((arg) => arg.replace(/^--src-/, '--'));
    return (await runTool('skopeo', ['inspect', '--format', '{{.Digest}}', ...srcArgs, `docker://${reference}`])).stdout.trim();
  }

  // The in-place build of the app context, shared by the tests that read it (built once, on first use).
  let inPlaceApp: Promise<{ reference: string; result: CommandResult }> | undefined;
  function buildAppInPlace(): Promise<{ reference: string; result: CommandResult }> {
    inPlaceApp ??= (async () => {
      const reference = `${registry.host}/in-place/app:1`;
      const result = await runExecutor(appContext, ['--destination', reference, '--isolation', 'in-place']);
      if (result.exitCode !== 0) throw new Error(`the in-place build failed (${result.exitCode}):\n${result.stderr}`);
      return { reference, result };
    })();
    return inPlaceApp;
  }
  let inPlaceAppTree: Promise<ImageTree> | undefined;
  function readInPlaceApp(): Promise<ImageTree> {
    inPlaceAppTree ??= buildAppInPlace().then(({ reference }) => readImageTree(reference, { registry, reader: 'layers' }));
    return inPlaceAppTree;
  }

  /** The job container's own bounding set: what any step in it can hold at most. */
  async function containerBoundingSet(): Promise<bigint> {
    const status = await podman.runOk(images.debug.reference, { registry, entrypoint: [''], command: ['grep', 'CapBnd', '/proc/self/status'] });
    return capabilityMask(status.stdout);
  }

  it('builds a two-stage Debian Dockerfile in place; the image runs, and no layer holds anything of the job container', async () => {
    const { reference, result } = await buildAppInPlace();
    expect(result.stderr).toMatch(/isolation: in-place/);
    expect(printedDigest(result)).toBe(await registryDigest(reference));

    const stepCaps = dockerDefaultCaps & (await containerBoundingSet());
    const ran = await podman.runOk(reference, { registry });
    expect(ran.stdout).toBe(
      [
        'hello from the context',
        'HELLO FROM THE CONTEXT',
        'hello in place from /app',
        'uid=1234(app) gid=1234(app) groups=1234(app)',
        'CapEff:\t0000000000000000',
        `CapEff:\t${stepCaps.toString(16).padStart(16, '0')}`,
        '',
      ].join('\n') +
        // Standard input, output and error, and the directory ls reads: no descriptor of kiln's leaks in.
        fdListing(),
    );

    const tree = await readInPlaceApp();
    expect(tree.config).toMatchObject({ User: 'app', WorkingDir: '/app', Env: expect.arrayContaining(['APP_HOME=/app', 'GREETING=hello in place']) });
    expect(tree.entries.get('/home/app/made-by-app')).toMatchObject({ type: 'file', uid: 1234, gid: 1234 });
    expect(tree.entries.get('/app')).toMatchObject({ type: 'directory', uid: 1234 });
    // The builder stage's own files stay in the builder stage.
    expect(tree.entries.has('/builder-fds')).toBe(false);
    expect(tree.entries.has('/src')).toBe(false);

    // Every layer kiln added (the base's own come first and are Debian's): none may hold kiln's
    // runtime, the mounted context, podman's bind-mounted files or what lives in /proc, /sys, /dev.
    const baseLayers = new Set((await listImageLayers(debian, { registry })).map((layer) => layer.digest));
    const added = (await listImageLayers(reference, { registry })).filter((layer) => !baseLayers.has(layer.digest));
    expect(added.length).toBeGreaterThanOrEqual(4);
    const containerOwn = /^\/(kiln|workspace|proc|sys|dev|run\/\.containerenv)(\/|$)|^\/etc\/(hosts|resolv\.conf|hostname)$/;
    const leaked = added.flatMap((layer) => layer.paths.filter((entry) => containerOwn.test(entry)).map((entry) => `${layer.digest}: ${entry}`));
    expect(leaked).toEqual([]);
  }, 300_000);

  it('builds the same image as chroot isolation on the host (filesystem, config, history, layer by layer)', async () => {
    const inPlace = await readInPlaceApp();
    // The same bundle the executor image holds, so that only the isolation differs.
    const chrootReference = `${registry.host}/in-place/app:chroot`;
    const chroot = await runCommand(process.execPath, [
      path.join(images.bundleDir, 'cli.js'),
      '--context', appContext,
      '--dockerfile', path.join(appContext, 'Dockerfile'),
      '--destination', chrootReference,
      '--isolation', 'chroot',
      '--kaniko-dir', path.join(work, 'chroot-kiln-dir'),
    ]);
    expect(chroot.exitCode, chroot.stderr).toBe(0);
    const reference = await readImageTree(chrootReference, { registry, reader: 'layers' });

    const ignore: IgnoreRule[] = [];
    const bounding = await containerBoundingSet();
    if ((dockerDefaultCaps & bounding) !== dockerDefaultCaps) {
      ignore.push({
        reason: 'a root step holds Docker\'s default capabilities less those the job container lacks (podman >= 4.4 leaves out AUDIT_WRITE, MKNOD, NET_RAW): no isolation can grant more',
        match: (difference: TreeDifference) => difference.where === '/caps' && (difference.field === 'sha256' || difference.field === 'size'),
      });
    }
    const leakedToChroot = await inheritedDescriptors();
    if (leakedToChroot.length > 0) {
      const withLeaks = fdListing(leakedToChroot);
      ignore.push({
        reason:
          'chroot isolation hands RUN steps every descriptor kiln inherited without close-on-exec (a known chroot gap: runc would close them); ' +
          `the host build inherits this test process's ${leakedToChroot.join(', ')}, the job container starts kiln with none`,
        match: (difference: TreeDifference) =>
          difference.where === '/fds' &&
          ((difference.field === 'sha256' && difference.a === sha256(fdListing()) && difference.b === sha256(withLeaks)) ||
            (difference.field === 'size' && difference.a === fdListing().length && difference.b === withLeaks.length)),
      });
    }
    const comparison = compareTrees(inPlace, reference, { ignore });
    expect(formatDifferences(comparison.differences)).toBe('');
    expect(comparison.unusedRules).toEqual([]);

    // Layer by layer too: a snapshot that took in more than the step changed (a file only touched by
    // the unpack, say) would leave the final tree alike but not the layers.
    const inPlaceLayers = await listImageLayers(`${registry.host}/in-place/app:1`, { registry });
    const chrootLayers = await listImageLayers(chrootReference, { registry });
    expect(inPlaceLayers.length).toBe(chrootLayers.length);
    const layerDifferences = inPlaceLayers.map((layer, index) => {
      const other = new Set(chrootLayers[index]?.paths);
      const own = new Set(layer.paths);
      return {
        onlyInPlace: layer.paths.filter((entry) => !other.has(entry)),
        // The base has no /etc/hosts: chroot isolation makes an empty one for the host's to be
        // mounted on and gives /etc its mtime back after removing it (as BuildKit does,
        // moby/buildkit#3148), so /etc is in no layer of either build.
        onlyChroot: [...other].filter((entry) => !own.has(entry)),
      };
    });
    expect(inPlace.entries.has('/etc/hosts')).toBe(false);
    expect(layerDifferences).toEqual(inPlaceLayers.map(() => ({ onlyInPlace: [], onlyChroot: [] })));
  }, 300_000);

  it('--cleanup empties "/" after each build, so one container builds twice; --isolation auto picks in-place there', async () => {
    // Both contexts under the volume at /workspace, the job container's working directory.
    const contexts = path.join(work, 'contexts', 'cleanup');
    await writeContext('cleanup/first', { Dockerfile: `FROM ${debian}\nRUN echo first > /first && test -x /bin/bash\n` });
    // Run in the second build's root: nothing of the Debian build before it may be left there.
    await writeContext('cleanup/second', {
      Dockerfile: `FROM ${images.busyboxImage}\nRUN ls -a / > /root-listing && test ! -e /etc/debian_version && test ! -e /bin/bash\n`,
    });
    const kiln = (dir: string, tag: string, isolation: string): string =>
      `kiln --context ${dir} --dockerfile ${dir}/Dockerfile --destination ${registry.host}/in-place/cleanup:${tag} --isolation ${isolation} --cleanup`;
    const mark = (name: string): string => `echo '=== ${name}'; echo '=== ${name}' >&2`;
    // As a GitLab job runs a script in the debug image: entrypoint cleared, busybox's shell.
    const job = await podman.run(images.debug.reference, {
      registry,
      network: 'host',
      entrypoint: [''],
      extraArgs: ['--volume', `${contexts}:${contextMount}:ro`],
      command: [
        'sh', '-c',
        [
          'set -e',
          mark('first'), kiln(`${contextMount}/first`, 'first', 'in-place'),
          mark('second'), kiln(`${contextMount}/second`, 'second', 'auto'),
          mark('root'), 'ls -a /',
          mark('etc'), 'ls -a /etc',
          mark('run'), 'ls -a /run',
          mark('mounts'), 'cat /proc/self/mountinfo',
        ].join('\n'),
      ],
      timeoutMs: 240_000,
    });
    expect(job.exitCode, job.stderr).toBe(0);
    const sections = (text: string): Map<string, string> =>
      new Map(text.split(/^=== /m).filter(Boolean).map((part) => [part.slice(0, part.indexOf('\n')), part.slice(part.indexOf('\n') + 1)]));
    const out = sections(job.stdout);
    const err = sections(job.stderr);
    expect(err.get('first')).toMatch(/isolation: in-place/);
    expect(err.get('second')).toMatch(/isolation: in-place/);
    expect(printedDigest({ ...job, stdout: out.get('first') ?? '' })).toBe(await registryDigest(`${registry.host}/in-place/cleanup:first`));
    expect(printedDigest({ ...job, stdout: out.get('second') ?? '' })).toBe(await registryDigest(`${registry.host}/in-place/cleanup:second`));

    // What is left: kiln's directory, and mount points with the directories that hold them.
    const mountPoints = (out.get('mounts') ?? '')
      .split('\n')
      .map((line) => line.split(' ')[4])
      .filter((mountPoint): mountPoint is string => mountPoint !== undefined && mountPoint !== '/');
    const names = (listing: string | undefined): string[] => (listing ?? '').split('\n').filter((name) => name !== '' && name !== '.' && name !== '..').sort();
    /** The names in `dir` that are mount points or lead to one. */
    const holding = (dir: string): string[] => {
      const prefix = dir === '/' ? '/' : `${dir}/`;
      const below = mountPoints.filter((mountPoint) => mountPoint.startsWith(prefix));
      return [...new Set(below.map((mountPoint) => mountPoint.slice(prefix.length).split('/')[0] ?? ''))].sort();
    };
    expect(names(out.get('root'))).toEqual([...new Set(['kiln', ...holding('/')])].sort());
    expect(names(out.get('root'))).not.toContain('bin');
    expect(names(out.get('etc'))).toEqual(holding('/etc'));
    expect(names(out.get('etc'))).not.toContain('debian_version');
    expect(names(out.get('run'))).toEqual(holding('/run'));

    // The second build's RUN saw a busybox root: no directory that only the Debian build had.
    const tree = await readImageTree(`${registry.host}/in-place/cleanup:second`, { registry, reader: 'layers' });
    expect(tree.entries.get('/root-listing')?.type).toBe('file');
    const listing = await podman.runOk(`${registry.host}/in-place/cleanup:second`, { registry, command: ['cat', '/root-listing'] });
    for (const debianOnly of ['boot', 'lib', 'lib64', 'media', 'mnt', 'opt', 'srv']) expect(names(listing.stdout)).not.toContain(debianOnly);
    expect(names(listing.stdout)).toEqual(expect.arrayContaining(['bin', 'etc', 'kiln', 'proc']));
  }, 300_000);

  it('a failing RUN step in place: an error located at its Dockerfile line, a non-zero exit, and the tag it would have replaced still stands', async () => {
    const reference = `${registry.host}/in-place/failing:1`;
    await runTool('skopeo', ['copy', '--quiet', ...registry.skopeoSrcArgs(), ...registry.skopeoDestArgs(), `docker://${images.busyboxImage}`, `docker://${reference}`]);
    const before = await registryDigest(reference);
    const context = await writeContext('failing', {
      Dockerfile: `FROM ${images.busyboxImage}\nRUN echo one > /one\nRUN echo "about to fail" >&2 && exit 3\nRUN echo never > /never\n`,
    });
    const result = await runExecutor(context, ['--destination', reference, '--isolation', 'in-place']);
    expect(result.exitCode, result.stderr).not.toBe(0);
    expect(result.stderr).toMatch(/Dockerfile:3\b/);
    expect(result.stderr).toContain('about to fail');
    expect(result.stderr).not.toMatch(/Dockerfile:4\b/);
    expect(await registryDigest(reference)).toBe(before);
  }, 300_000);
  it('reaches a registry by name over TLS after "/" was replaced: name lookups and certificates keep working', async () => {
    const secure = await startRegistry('tls');
    try {
      // By name, so that every pull and push resolves it; the certificate is for 127.0.0.1 and localhost.
      const named = `localhost:${secure.host.split(':')[1] ?? ''}`;
      const srcArgs = registry.skopeoSrcArgs();
      await runTool('skopeo', ['copy', ...srcArgs, ...secure.skopeoDestArgs(), `docker://${debian}`, `docker://${secure.host}/debian:tls`]);
      const context = await writeContext('tls', {
        // The second FROM is pulled, and the image pushed, after the first stage replaced "/".
        Dockerfile: [`FROM ${named}/debian:tls AS first`, 'RUN echo one > /one', '', `FROM ${named}/debian:tls`, 'COPY --from=first /one /one', 'RUN cat /one > /two', ''].join('\n'),
        'ca.pem': secure.caCert ?? '',
      });
      const reference = `${named}/tls/app:1`;
      const result = await runExecutor(context, ['--destination', reference, '--isolation', 'in-place', '--registry-certificate', `${named}=${contextMount}/ca.pem`]);
      expect(result.exitCode, result.stderr).toBe(0);
      const inspected = await runTool('skopeo', ['inspect', '--format', '{{.Digest}}', '--cert-dir', secure.certDir ?? '', `docker://${secure.host}/tls/app:1`]);
      expect(printedDigest(result)).toBe(inspected.stdout.trim());
    } finally {
      await secure.stop();
    }
  }, 300_000);
  it('carries a file capability and a user xattr a RUN step set in place into the layer (kiln\'s own getfattr, after "/" was replaced)', async () => {
    // The step sets them with the setfattr kiln's runtime holds (Debian minbase has no setcap).
    const setfattr = '/kiln/lib/ld.so --library-path /kiln/lib /kiln/bin/setfattr';
    const context = await writeContext('xattrs', {
      Dockerfile: [
        `FROM ${debian}`,
        `RUN cp /bin/cat /usr/local/bin/capcat && ${setfattr} -n security.capability -v 0x0100000202000000000000000000000000000000 /usr/local/bin/capcat && ${setfattr} -n user.kiln -v in-place /usr/local/bin/capcat`,
        '',
      ].join('\n'),
    });
    const reference = `${registry.host}/in-place/xattrs:1`;
    const result = await runExecutor(context, ['--destination', reference, '--isolation', 'in-place']);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).not.toMatch(/getfattr/);
    const layout = path.join(work, 'xattrs-layout');
    await runTool('skopeo', ['copy', '--src-tls-verify=false', `docker://${reference}`, `oci:${layout}:img`]);
    const rootfs = path.join(work, 'xattrs-rootfs');
    await runTool('umoci', ['raw', 'unpack', '--image', `${layout}:img`, rootfs]);
    const { stdout } = await runTool('getfattr', ['--absolute-names', '--no-dereference', '--encoding=hex', '-d', '-m', '-', path.join(rootfs, 'usr/local/bin/capcat')]);
    expect(stdout).toContain('security.capability=0x0100000202000000000000000000000000000000');
    expect(stdout).toContain(`user.kiln=0x${Buffer.from('in-place').toString('hex')}`);
    // As a user without privilege, the capability (CAP_DAC_OVERRIDE) reads what plain cat may not.
    const denied = await podman.run(reference, { registry, user: '65534', command: ['cat', '/etc/shadow'] });
    expect(denied.exitCode).not.toBe(0);
    const allowed = await podman.runOk(reference, { registry, user: '65534', command: ['/usr/local/bin/capcat', '/etc/shadow'] });
    expect(allowed.stdout).toMatch(/^root:/);
  }, 300_000);
});
