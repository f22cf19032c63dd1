/**
 * Fidelity: the same contexts built by kiln (the bundled CLI) and by buildah, the peer installable
 * here, read back without kiln's code and compared: paths, types, modes, owners, link targets,
 * contents, and the config (Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts, Volumes, Labels...).
 * Each kiln image also runs under podman. Where buildah departs from BuildKit (which `docker build`
 * runs, and which kiln follows: ../shared/reference-semantics.md), the case says so in `ignore`.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBusyboxImage } from '../harness/base-images.js';
import { pushDebianImage } from '../harness/debian-image.js';
import { compareTrees, formatDifferences, readImageTree, type IgnoreRule, type TreeDifference } from '../harness/image-tree.js';
import { buildahExceptions, PeerBuildah } from '../harness/peer-buildah.js';
import { Podman } from '../harness/podman.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { runTool } from '../harness/process.js';

const cli = path.resolve(import.meta.dirname, '../../dist/cli.js');
const execFileAsync = promisify(execFile);

interface FidelityCase {
  name: string;
  /** `BUSYBOX` and `DEBIAN` stand for the base images pushed to the test registry. */
  dockerfile: string;
  files?: Record<string, string>;
  /** Made in the context after `files` (symlinks, archives). */
  prepare?: (context: string) => Promise<void>;
  buildArgs?: Record<string, string>;
  target?: string;
  /** Run the kiln image under podman; its stdout must contain `expect`. */
  run?: { command?: string[]; expect: string; user?: string };
  /** Documented departures of buildah 1.28 from BuildKit for this case. */
  ignore?: IgnoreRule[];
  /** Why buildah cannot build this case at all (then only the podman run checks it). */
  noPeer?: string;
}

/**
 * Departures of buildah 1.28 from BuildKit in every case (besides buildahExceptions):
 * BuildKit writes an unset WorkingDir as "/" (reference-semantics.md), buildah leaves it out.
 */
const alwaysIgnored: IgnoreRule[] = [
  {
    reason: 'BuildKit writes an unset WorkingDir as "/"; buildah leaves it out',
    match: (difference: TreeDifference) => difference.where === 'config.WorkingDir' && difference.a === '/' && (difference.b === undefined || difference.b === ''),
  },
  {
    reason: 'an unset User: absent in BuildKit\'s config, "" in buildah\'s Docker-format config',
    match: (difference: TreeDifference) => difference.where === 'config.User' && difference.a === undefined && difference.b === '',
  },
];

const cases: FidelityCase[] = [
  {
    name: 'debian-example',
    dockerfile: [
      'FROM DEBIAN',
      'ENV APP_HOME=/app GREETING="hello world"',
      'COPY hello.txt /app/hello.txt',
      'RUN echo hi > /x && useradd -m app && chown app /app/hello.txt && rm -rf /var/log/*.log',
      'WORKDIR /app',
      'USER app',
      'CMD ["cat", "/app/hello.txt"]',
    ].join('\n'),
    files: { 'hello.txt': 'hello from the example\n' },
    run: { expect: 'hello from the example' },
  },
  {
    name: 'env-args-shell',
    dockerfile: [
      'ARG VERSION=1.0',
      'FROM BUSYBOX',
      'ARG VERSION',
      'ARG FLAVOUR=plain',
      'ENV APP_VERSION=$VERSION APP_FLAVOUR=${FLAVOUR:-none} EMPTY=',
      'SHELL ["/bin/sh", "-e", "-c"]',
      'RUN echo "$APP_VERSION-$APP_FLAVOUR" > /version',
      'CMD cat /version',
    ].join('\n'),
    buildArgs: { FLAVOUR: 'spicy' },
    run: { expect: '1.0-spicy' },
    ignore: [{ config: 'Cmd', reason: 'BuildKit runs a shell-form CMD through SHELL (here /bin/sh -e -c); buildah 1.28 always uses /bin/sh -c' }],
  },
  {
    name: 'copy-owners-modes',
    dockerfile: [
      'FROM BUSYBOX',
      'COPY --chown=1000:1000 app/ /srv/app/',
      'COPY --chmod=0640 secret.conf /etc/app/',
      'COPY --chown=daemon:daemon --chmod=755 run.sh /usr/local/bin/run.sh',
      'RUN ls -ln /srv/app /etc/app > /listing',
    ].join('\n'),
    files: { 'app/index.html': '<h1>hi</h1>\n', 'app/js/app.js': 'console.log(1)\n', 'secret.conf': 'k=v\n', 'run.sh': '#!/bin/sh\necho run\n' },
    run: { command: ['/usr/local/bin/run.sh'], expect: 'run' },
  },
  {
    name: 'multi-stage-links',
    dockerfile: [
      'FROM BUSYBOX AS build',
      'RUN mkdir -p /out/lib && echo v1 > /out/lib/libx.so.1 && ln -s libx.so.1 /out/lib/libx.so && ln -s /out/lib/libx.so.1 /out/current',
      'FROM BUSYBOX AS unused',
      'RUN echo never > /never',
      'FROM BUSYBOX',
      'COPY --from=build /out/lib /usr/lib/x/',
      'COPY --from=build /out/current /usr/lib/current-copied',
      'CMD ["cat", "/usr/lib/current-copied"]',
    ].join('\n'),
    run: { expect: 'v1' },
  },
  {
    name: 'run-deletes-and-replaces',
    dockerfile: [
      'FROM DEBIAN',
      'RUN rm -rf /var/cache/debconf /usr/share/doc && rm /etc/hostname || true',
      'RUN rm -rf /etc/apt/apt.conf.d && mkdir /etc/apt/apt.conf.d && echo new > /etc/apt/apt.conf.d/kiln',
      'RUN rm /etc/issue && mkdir /etc/issue && echo dir > /etc/issue/now-a-dir',
      'RUN rm -rf /srv && echo file > /srv',
    ].join('\n'),
    run: { command: ['cat', '/etc/issue/now-a-dir', '/srv'], expect: 'dir\nfile' },
  },
  {
    name: 'heredocs',
    noPeer: "buildah 1.28 does not parse heredocs (it reads the body's lines as instructions)",
    dockerfile: [
      '# syntax=docker/dockerfile:1',
      'FROM BUSYBOX',
      'RUN <<EOF',
      'mkdir -p /opt/heredoc',
      'echo one > /opt/heredoc/one',
      'EOF',
      'COPY <<CONF /etc/app.conf',
      'listen=8080',
      'CONF',
      'RUN cat <<EOF > /opt/heredoc/two',
      'two lines',
      'of text',
      'EOF',
    ].join('\n'),
    run: { command: ['cat', '/opt/heredoc/one', '/etc/app.conf'], expect: 'one\nlisten=8080' },
  },
  {
    name: 'config-only',
    dockerfile: [
      'FROM BUSYBOX',
      'LABEL org.opencontainers.image.title="fidelity" maintainer=kiln',
      'EXPOSE 80 443/tcp 53/udp',
      'VOLUME ["/data", "/cache"]',
      'STOPSIGNAL SIGQUIT',
      'ENTRYPOINT ["/bin/echo", "entry"]',
      'CMD ["default-arg"]',
    ].join('\n'),
    run: { expect: 'entry default-arg' },
  },
  {
    name: 'add-local-archive',
    dockerfile: ['FROM BUSYBOX', 'ADD bundle.tar.gz /opt/', 'ADD plain.txt /opt/plain/', 'CMD ["cat", "/opt/bundle/readme"]'].join('\n'),
    files: { 'plain.txt': 'plain\n', 'bundle/readme': 'from the archive\n', 'bundle/bin/tool': '#!/bin/sh\n' },
    prepare: async (context) => {
      await runTool('tar', ['-czf', path.join(context, 'bundle.tar.gz'), '-C', context, '--owner=0', '--group=0', 'bundle']);
      await rm(path.join(context, 'bundle'), { recursive: true, force: true });
    },
    run: { expect: 'from the archive' },
  },
  {
    name: 'hardlinks-setuid-fifo',
    dockerfile: [
      'FROM BUSYBOX',
      'RUN mkdir -p /opt/links && echo data > /opt/links/a && ln /opt/links/a /opt/links/b',
      'RUN mkfifo /opt/pipe && chmod 1777 /opt/links',
      // chown clears setuid, so the mode comes after it.
      'RUN chown 123:456 /opt/links/b && chmod 4755 /opt/links/a',
    ].join('\n'),
    run: { command: ['stat', '-c', '%a %u:%g %h', '/opt/links/a'], expect: '4755 123:456 2' },
  },
  {
    name: 'workdir-user',
    dockerfile: ['FROM BUSYBOX', 'WORKDIR /srv/one', 'WORKDIR two', 'RUN pwd > /where', 'USER nobody', 'WORKDIR /home/nobody/work', 'CMD ["pwd"]'].join('\n'),
    run: { expect: '/home/nobody/work' },
  },
  {
    name: 'dockerignore-and-globs',
    dockerfile: ['FROM BUSYBOX', 'COPY src/*.txt /dst/', 'COPY . /all/'].join('\n'),
    files: {
      '.dockerignore': 'secret*\n**/*.log\n!keep.log\n',
      'src/a.txt': 'a\n',
      'src/b.txt': 'b\n',
      'src/c.md': 'c\n',
      'secret.key': 'never\n',
      'logs/x.log': 'no\n',
      'keep.log': 'yes\n',
    },
    run: { command: ['ls', '/all'], expect: 'keep.log' },
  },
  {
    name: 'symlinked-destination',
    dockerfile: ['FROM BUSYBOX', 'RUN mkdir -p /real && ln -s /real /link', 'COPY f.txt /link/', 'COPY f.txt /link/sub/'].join('\n'),
    files: { 'f.txt': 'through the link\n' },
    run: { command: ['cat', '/real/f.txt', '/real/sub/f.txt'], expect: 'through the link\nthrough the link' },
  },
  {
    name: 'chmod-chown-only',
    dockerfile: ['FROM DEBIAN', 'RUN chmod 600 /etc/passwd && chown 1:1 /etc/hostname && touch -d 2001-01-01 /etc/debian_version'].join('\n'),
    run: { command: ['stat', '-c', '%a', '/etc/passwd'], expect: '600' },
  },
  {
    name: 'user-groups-run',
    dockerfile: [
      'FROM DEBIAN',
      'RUN groupadd -g 2000 builders && useradd -u 2001 -m -G builders worker',
      'USER worker',
      'RUN id > /home/worker/id && touch /tmp/owned',
      'USER 3000',
      'RUN touch /tmp/numeric',
    ].join('\n'),
    run: { command: ['cat', '/home/worker/id'], expect: 'uid=2001(worker) gid=2001(worker) groups=2001(worker),2000(builders)' },
  },
  {
    name: 'entrypoint-cmd-interplay',
    dockerfile: ['FROM BUSYBOX AS base', 'CMD ["from-base"]', 'FROM base', 'ENTRYPOINT ["/bin/echo"]'].join('\n'),
    run: { command: ['override'], expect: 'override' },
    ignore: [{ config: 'Cmd', reason: 'an ENTRYPOINT clears the inherited CMD: BuildKit writes null, buildah []; both run no CMD' }],
  },
  {
    name: 'onbuild-parent',
    dockerfile: ['FROM BUSYBOX', 'ONBUILD RUN echo child > /child', 'RUN echo parent > /parent'].join('\n'),
    run: { command: ['cat', '/parent'], expect: 'parent' },
  },
];

describe('fidelity with buildah (real builds, real podman runs)', () => {
  let registry: TestRegistry;
  let work: string;
  let buildah: PeerBuildah;
  let podman: Podman;
  let busybox: string;
  let debian: string;

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'kiln-fidelity-'));
    registry = await startRegistry('plain');
    [buildah, podman] = await Promise.all([PeerBuildah.create(), Podman.create()]);
    busybox = (await pushBusyboxImage({ registry: registry.host, skopeoDestArgs: registry.skopeoDestArgs() })).reference;
    debian = (await pushDebianImage({ registry: registry.host, skopeoDestArgs: registry.skopeoDestArgs() })).reference;
  }, 600_000);

  afterAll(async () => {
    await Promise.allSettled([buildah?.dispose(), podman?.dispose(), registry?.stop()]);
    await rm(work, { recursive: true, force: true });
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s: same root filesystem and config as buildah, and it runs', async (_name, c) => {
    const context = path.join(work, c.name);
    await mkdir(context, { recursive: true });
    for (const [file, content] of Object.entries(c.files ?? {})) {
      await mkdir(path.dirname(path.join(context, file)), { recursive: true });
      await writeFile(path.join(context, file), content);
    }
    await c.prepare?.(context);
    await writeFile(path.join(context, 'Dockerfile'), `${c.dockerfile.replaceAll('BUSYBOX', busybox).replaceAll('DEBIAN', debian)}\n`);

    const kilnRef = `${registry.host}/kiln/${c.name}:1`;
    const args = ['--context', context, '--destination', kilnRef, '--kaniko-dir', path.join(work, 'kiln-dir')];
    for (const [name, value] of Object.entries(c.buildArgs ?? {})) args.push('--build-arg', `${name}=${value}`);
    if (c.target) args.push('--target', c.target);
    const built = await execFileAsync(process.execPath, [cli, ...args], { maxBuffer: 64 << 20 }).catch((error: { stderr: string }) => {
      throw new Error(`kiln failed for ${c.name}:\n${error.stderr}`);
    });
    expect(built.stdout.trim().split('\n').at(-1)).toMatch(/^sha256:/);
    if (c.noPeer === undefined) {
      // Docker format: buildah keeps SHELL, HEALTHCHECK and ONBUILD only there, as BuildKit always does.
      const peer = await buildah.build({
        context,
        destination: `${registry.host}/buildah/${c.name}:1`,
        registry,
        format: 'docker',
        ...(c.buildArgs ? { buildArgs: c.buildArgs } : {}),
        ...(c.target ? { target: c.target } : {}),
      });
      const [ours, theirs] = await Promise.all([
        readImageTree(kilnRef, { registry, reader: 'layers' }),
        readImageTree(peer.reference, { registry, reader: 'layers' }),
      ]);
      const comparison = compareTrees(ours, theirs, { ignore: [...buildahExceptions('b'), ...alwaysIgnored, ...(c.ignore ?? [])] });
      expect(formatDifferences(comparison.differences)).toBe(formatDifferences([]));
      for (const rule of c.ignore ?? []) expect(comparison.unusedRules, 'a documented exception no longer applies').not.toContain(rule);
    }

    if (c.run) {
      const result = await podman.runOk(kilnRef, { registry, ...(c.run.command ? { command: c.run.command } : {}), ...(c.run.user ? { user: c.run.user } : {}) });
      expect(result.stdout).toContain(c.run.expect);
    }
  });
});
