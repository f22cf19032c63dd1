/**
 * The image reader and the tree comparison, on images made without kiln: busybox packed by umoci
 * and pushed by skopeo, then images buildah builds from it (the fidelity peer). Each build is read
 * back, compared with itself (no differences), and with a build that differs in known ways, which
 * diffTrees must find, and exactly those.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBusyboxImage } from '../harness/base-images.js';
import { compareTrees, diffTrees, findInImage, globToRegExp, readImageTree, type ImageTree } from '../harness/image-tree.js';
import { searchLayoutLayers } from '../harness/layer-tree.js';
import { buildahExceptions, PeerBuildah } from '../harness/peer-buildah.js';
import { Podman } from '../harness/podman.js';
import { runTool } from '../harness/process.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';

const dockerfile = (base: string, variant: 'a' | 'b'): string => `FROM ${base}
COPY app.txt /app/app.txt
RUN chmod 4755 /app/app.txt && mkdir -p /data && echo ${variant === 'a' ? 'one' : 'two'} > /data/value && ln -s /app/app.txt /app/link${variant === 'b' ? ' && chown 1:1 /data/value' : ''}
RUN rm /etc/shadow && rm -rf /home && mkdir /home && echo new > /home/new && ln /app/app.txt /app/hard && mkfifo /app/fifo && rm -rf /usr/sbin && mkdir /usr/sbin && ln -s /bin/busybox /usr/sbin/kept
ENV GREETING=hello MODE=${variant}
WORKDIR /app
USER daemon
LABEL org.example.kind=test
EXPOSE 8080/tcp
VOLUME /data
STOPSIGNAL SIGTERM
CMD ["cat", "/app/app.txt"]
`;

describe('image-tree and peer-buildah helpers', () => {
  let registry: TestRegistry;
  let buildah: PeerBuildah;
  let dir: string;
  let busybox: string;
  let busyboxTree: ImageTree;
  let treeA: ImageTree;
  let treeA2: ImageTree;
  let treeB: ImageTree;
  let referenceA: string;
  let referenceB: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-e2e-tree-'));
    registry = await startRegistry('basic');
    buildah = await PeerBuildah.create();
    busybox = (await pushBusyboxImage({ registry: registry.host, skopeoDestArgs: registry.skopeoDestArgs() })).reference;
    busyboxTree = await readImageTree(busybox, { registry });
    for (const variant of ['a', 'b'] as const) {
      const context = path.join(dir, variant);
      await mkdir(context, { recursive: true });
      await writeFile(path.join(context, 'Dockerfile'), dockerfile(busybox, variant));
      await writeFile(path.join(context, 'app.txt'), 'hello from the context\n');
    }
    const a = await buildah.build({ context: path.join(dir, 'a'), destination: `${registry.host}/peer/tree:a`, registry });
    referenceA = a.reference;
    const b = await buildah.build({ context: path.join(dir, 'b'), destination: `${registry.host}/peer/tree:b`, registry, format: 'docker' });
    referenceB = b.reference;
    treeA = await readImageTree(a.reference, { registry });
    treeA2 = await readImageTree(a.digestReference, { registry });
    treeB = await readImageTree(b.reference, { registry });
  });

  afterAll(async () => {
    await buildah?.dispose();
    await registry?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reads the busybox image: files, modes, links, content hashes, config', async () => {
    const busyboxBinary = busyboxTree.entries.get('/bin/busybox');
    const hostHash = createHash('sha256').update(await readFile('/bin/busybox')).digest('hex');
    expect(busyboxBinary).toMatchObject({ type: 'file', mode: 0o755, uid: 0, gid: 0, sha256: hostHash });
    expect(busyboxTree.entries.get('/bin/sh')).toMatchObject({ type: 'symlink', linkTarget: '/bin/busybox' });
    expect(busyboxTree.entries.get('/tmp')).toMatchObject({ type: 'directory', mode: 0o1777 });
    expect(busyboxTree.entries.get('/etc/shadow')).toMatchObject({ type: 'file', mode: 0o640 });
    expect(busyboxTree.entries.has('/')).toBe(true);
    expect(busyboxTree.config).toEqual({ Cmd: ['sh'], Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] });
    expect(busyboxTree.manifestMediaType).toBeUndefined(); // umoci writes none
    expect(busyboxTree.layers).toHaveLength(1);
  });

  it('reads what buildah built: setuid bit, owners, symlinks, the config fields and history', () => {
    expect(treeA.entries.get('/app/app.txt')).toMatchObject({ type: 'file', mode: 0o4755, uid: 0, size: 23 });
    expect(treeA.entries.get('/app/link')).toMatchObject({ type: 'symlink', linkTarget: '/app/app.txt' });
    expect(treeA.entries.get('/data/value')).toMatchObject({ uid: 0, gid: 0, sha256: createHash('sha256').update('one\n').digest('hex') });
    expect(treeB.entries.get('/data/value')).toMatchObject({ uid: 1, gid: 1 });
    expect(treeA.config).toMatchObject({
      Cmd: ['cat', '/app/app.txt'],
      WorkingDir: '/app',
      User: 'daemon',
      ExposedPorts: { '8080/tcp': {} },
      Volumes: { '/data': {} },
      StopSignal: 'SIGTERM',
      Labels: expect.objectContaining({ 'org.example.kind': 'test' }),
    });
    expect(treeA.config.Env).toEqual(expect.arrayContaining(['GREETING=hello', 'MODE=a']));
    expect(treeA.manifestMediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(treeB.manifestMediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(treeA.history.some((entry) => entry.created_by?.includes('COPY') === true)).toBe(true);
    expect(treeA.history.some((entry) => entry.empty_layer)).toBe(true);
  });

  it('sees deletions (whiteouts), hard links and fifos as applied', () => {
    expect(busyboxTree.entries.has('/etc/shadow')).toBe(true);
    expect(treeA.entries.has('/etc/shadow')).toBe(false);
    expect(treeA.entries.get('/home/new')).toMatchObject({ type: 'file', size: 4 });
    const file = treeA.entries.get('/app/app.txt');
    expect(treeA.entries.get('/app/hard')).toMatchObject({ type: 'file', nlink: 2, sha256: file?.sha256 });
    expect(file?.nlink).toBe(2);
    expect(treeA.entries.get('/app/fifo')).toMatchObject({ type: 'fifo' });
    // rm -rf + mkdir of a directory: an opaque whiteout hides the base's entries, keeps the new one.
    const under = (tree: ImageTree, dir: string): string[] => [...tree.entries.keys()].filter((p) => p.startsWith(`${dir}/`));
    expect(under(busyboxTree, '/usr/sbin').length).toBeGreaterThan(3);
    expect(under(treeA, '/usr/sbin')).toEqual(['/usr/sbin/kept']);
  });

  it('reads the same tree with the in-memory layer reader as with umoci, mtimes included', async () => {
    for (const [tree, reference] of [[busyboxTree, busybox], [treeA, referenceA], [treeB, referenceB]] as const) {
      const fast = await readImageTree(reference, { registry, reader: 'layers' });
      expect(diffTrees(tree, fast, { compareMtimes: true })).toEqual([]);
      expect(fast.entries.size).toBe(tree.entries.size);
    }
  });

  it('finds no difference between an image and itself, read twice (by tag and by digest)', () => {
    expect(diffTrees(treeA, treeA2)).toEqual([]);
    expect(diffTrees(busyboxTree, busyboxTree)).toEqual([]);
  });

  it('finds exactly the injected differences between two builds', () => {
    const differences = diffTrees(treeA, treeB, { ignore: ['history'] });
    const hashOf = (text: string): string => createHash('sha256').update(text).digest('hex');
    expect(differences.map(({ kind, where, field, a, b }) => ({ kind, where, field, a, b }))).toEqual([
      { kind: 'config', where: 'config.Env', field: 'MODE', a: 'a', b: 'b' },
      { kind: 'entry', where: '/data/value', field: 'uid', a: 0, b: 1 },
      { kind: 'entry', where: '/data/value', field: 'gid', a: 0, b: 1 },
      { kind: 'entry', where: '/data/value', field: 'sha256', a: hashOf('one\n'), b: hashOf('two\n') },
    ]);
    expect(differences[1]?.message).toBe('/data/value: uid 0 (a) vs 1 (b)');
  });

  it('honours documented exceptions and reports the ones that matched nothing', () => {
    const comparison = compareTrees(treeA, treeB, {
      ignore: [
        'history',
        { config: 'Env', keys: ['MODE'], reason: 'the variants differ on purpose' },
        { path: '/data/value', fields: ['uid', 'gid'], reason: 'chown in variant b' },
        '/data/value',
        { path: /^\/nowhere/, reason: 'stale' },
      ],
    });
    expect(comparison.differences).toEqual([]);
    expect(comparison.ignored.map((entry) => entry.difference.field)).toContain('sha256');
    expect(comparison.unusedRules).toEqual([{ path: /^\/nowhere/, reason: 'stale' }]);
    // A field-limited rule leaves the other fields compared.
    const partial = diffTrees(treeA, treeB, { ignore: ['history', 'config.Env', { path: '/data/**', fields: ['uid', 'gid'] }] });
    expect(partial.map((d) => `${d.where} ${d.field}`)).toEqual(['/data/value sha256']);
  });

  it('detects paths present on one side only, mode changes and mtimes only when asked', () => {
    const entries = new Map(treeA.entries);
    const original = entries.get('/app/app.txt');
    if (!original) throw new Error('no /app/app.txt');
    entries.set('/app/app.txt', { ...original, mode: 0o755, mtime: original.mtime + 60 });
    entries.set('/extra', { path: '/extra', type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0 });
    entries.delete('/app/link');
    const changed: ImageTree = { ...treeA, entries };
    expect(diffTrees(treeA, changed).map((d) => d.message)).toEqual([
      '/app/app.txt: mode 04755 (a) vs 0755 (b)',
      '/app/link: only in a (symlink 0777 0:0 -> /app/app.txt)',
      '/extra: only in b (directory 0755 0:0)',
    ]);
    expect(diffTrees(treeA, changed, { compareMtimes: true }).map((d) => `${d.where} ${d.field}`)).toContain('/app/app.txt mtime');
  });

  it('reads an image podman runs the way podman sees it', async () => {
    const podman = await Podman.create();
    try {
      const run = await podman.runOk(referenceA, { registry });
      expect(run.stdout).toBe('hello from the context\n');
      const whoami = await podman.runOk(referenceA, { registry, command: ['sh', '-c', 'id -un; pwd; echo $GREETING'] });
      expect(whoami.stdout).toBe(`daemon\n${treeA.config.WorkingDir}\nhello\n`);
    } finally {
      await podman.dispose();
    }
  });

  it('finds strings in the config and in every layer, deleted files included', async () => {
    expect(await findInImage(referenceA, 'GREETING=hello', { registry })).toEqual([{ where: 'config' }]);
    const shadow = await findInImage(referenceA, 'root:*:19000', { registry });
    expect(shadow).toEqual([{ where: 'layer', layer: busyboxTree.layers[0]?.digest, path: 'etc/shadow', part: 'content' }]);
    expect(await findInImage(referenceA, 'kiln-absent-7d1c0b', { registry })).toEqual([]);
    const context = await findInImage(referenceA, 'hello from the context', { registry });
    expect(context.map((hit) => `${hit.path ?? ''} ${hit.part ?? ''}`)).toContain('app/app.txt content');
  });

  it('finds byte strings wherever they fall across read chunks', async () => {
    const layout = path.join(dir, 'busybox-layout');
    await runTool('skopeo', ['copy', '--quiet', ...registry.skopeoSrcArgs(), `docker://${busybox}`, `oci:${layout}:image`]);
    const binary = await readFile('/bin/busybox');
    // zlib hands out 16 KiB chunks and a file's content starts 512-aligned in the tar, so one of
    // these 32 needles (one per 512-byte residue) straddles a chunk boundary.
    for (let residue = 0; residue < 32; residue++) {
      const at = 4 * 16_384 + residue * 512;
      const hits = await searchLayoutLayers(layout, binary.subarray(at - 9, at + 9));
      expect(hits.map((hit) => hit.path), `needle at ${at}`).toContain('bin/busybox');
    }
  });

  it("documents buildah's own artifacts narrowly (buildahExceptions)", async () => {
    const context = path.join(dir, 'noop');
    await mkdir(context, { recursive: true });
    await writeFile(path.join(context, 'Dockerfile'), `FROM ${busybox}\nRUN true\n`);
    const noop = await buildah.build({ context, destination: `${registry.host}/peer/tree:noop`, registry });
    const tree = await readImageTree(noop.reference, { registry, reader: 'layers' });
    const raw = diffTrees(busyboxTree, tree).map((d) => d.where);
    expect(raw).toEqual(expect.arrayContaining(['config.Labels', '/etc/hosts', '/etc/resolv.conf', '/etc/hostname', '/run']));
    const comparison = compareTrees(busyboxTree, tree, { ignore: buildahExceptions('b') });
    expect(comparison.differences).toEqual([]);
    expect(comparison.unusedRules).toEqual([]);
    // A /etc/hosts with content is not a stub: it still counts.
    const entries = new Map(tree.entries);
    const hosts = entries.get('/etc/hosts');
    if (!hosts) throw new Error('no /etc/hosts stub');
    entries.set('/etc/hosts', { ...hosts, size: 10 });
    expect(diffTrees(busyboxTree, { ...tree, entries }, { ignore: buildahExceptions('b') }).map((d) => d.where)).toEqual(['/etc/hosts']);
  });

  it('turns globs into path matchers', () => {
    expect(globToRegExp('/var/log/**').test('/var/log')).toBe(true);
    expect(globToRegExp('/var/log/**').test('/var/log/apt/history.log')).toBe(true);
    expect(globToRegExp('/var/log/**').test('/var/logs')).toBe(false);
    expect(globToRegExp('/etc/*.conf').test('/etc/a.conf')).toBe(true);
    expect(globToRegExp('/etc/*.conf').test('/etc/x/a.conf')).toBe(false);
  });
});
