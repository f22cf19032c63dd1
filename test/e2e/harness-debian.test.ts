/**
 * The Debian base image helper: debootstrap minbase from apt's configured mirror, cached between
 * runs, pushed by skopeo, run by podman, and used as the base of a buildah build of
 * ../shared/tools/example-context (the fidelity pipeline end to end, without kiln).
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aptMirror, mirrorFromSources, pushDebianImage } from '../harness/debian-image.js';
import { diffTrees, readImageTree } from '../harness/image-tree.js';
import { PeerBuildah } from '../harness/peer-buildah.js';
import { Podman } from '../harness/podman.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';

// A copy of ../shared/tools/example-context: CI's checkout has shared/ beside it, not at a fixed path.
const exampleContext = path.resolve(import.meta.dirname, '../fixtures/contexts/debian-example');

describe('apt mirror lookup', () => {
  it('takes the first enabled deb source serving exactly the suite, from deb822 and one-line files', () => {
    const files = [
      {
        name: 'a.sources',
        text: [
          'Types: deb', 'URIs: http://disabled.example/debian', 'Suites: bookworm', 'Enabled: no', '',
          'Types: deb-src', 'URIs: http://src.example/debian', 'Suites: bookworm', '',
          'Types: deb', '# a comment: with a colon', 'URIs: http://security.example/debian-security', 'Suites: bookworm-security', '',
          'Types: deb', 'URIs: http://mirror.example/debian/', 'Suites: bookworm bookworm-updates', 'Components: main',
        ].join('\n'),
      },
      { name: 'b.list', text: 'deb [arch=amd64 signed-by=/k.gpg] http://later.example/debian bookworm main\n' },
      { name: 'c.list.disabled', text: 'deb http://ignored.example/debian bookworm main\n' },
    ];
    expect(mirrorFromSources(files, 'bookworm')).toBe('http://mirror.example/debian');
    expect(mirrorFromSources(files.slice(1), 'bookworm')).toBe('http://later.example/debian');
    expect(mirrorFromSources(files, 'trixie')).toBeUndefined();
  });
});

describe('debian base image helper', () => {
  let registry: TestRegistry;
  let podman: Podman;
  let buildah: PeerBuildah;
  let dir: string;
  let reference: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-e2e-debian-'));
    registry = await startRegistry('plain');
    podman = await Podman.create();
    buildah = await PeerBuildah.create();
    reference = (await pushDebianImage({ registry: registry.host, skopeoDestArgs: registry.skopeoDestArgs() })).reference;
  }, 600_000);

  afterAll(async () => {
    await buildah?.dispose();
    await podman?.dispose();
    await registry?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs cat /etc/debian_version under podman', async () => {
    const result = await podman.runOk(reference, { registry, command: ['cat', '/etc/debian_version'] });
    expect(result.stdout).toMatch(/^12\.\d+\n$/);
  });

  it('carries no trace of the configured mirror in apt state or config', async () => {
    const mirrorHost = new URL(await aptMirror('bookworm')).hostname;
    const grep = await podman.run(reference, {
      registry,
      command: ['grep', '-rIl', '-F', mirrorHost, '/etc/apt', '/var/lib/apt', '/var/cache/apt', '/var/log'],
    });
    expect(grep.stdout).toBe('');
    expect(grep.exitCode).toBe(1); // grep: no match (2 would be an error)
    const sources = await podman.runOk(reference, { registry, command: ['cat', '/etc/apt/sources.list'] });
    expect(sources.stdout).toMatch(/^# no apt sources configured/);
  });

  it('serves as the base of a buildah build of example-context, read back and run', async () => {
    const context = path.join(dir, 'example-context');
    await cp(exampleContext, context, { recursive: true });
    const dockerfile = path.join(context, 'Dockerfile');
    // The context names the shared tools' fixed registry; this test's registry is on another port.
    const original = await readFile(dockerfile, 'utf8');
    await rm(dockerfile, { force: true });
    await writeFile(dockerfile, original.replace(/^FROM \S+/m, `FROM ${reference}`));
    const built = await buildah.build({ context, destination: `${registry.host}/peer/example:latest`, registry });

    const run = await podman.runOk(built.reference, { registry });
    expect(run.stdout).toBe('hello from the build context\n');

    const tree = await readImageTree(built.digestReference, { registry });
    const appUser = await podman.runOk(built.reference, { registry, command: ['id', '-u', 'app'] });
    expect(tree.entries.get('/app/hello.txt')).toMatchObject({ type: 'file', uid: Number(appUser.stdout.trim()), size: 29 });
    expect(tree.entries.get('/x')).toMatchObject({ type: 'file', size: 3 });
    expect(tree.entries.get('/etc/debian_version')).toMatchObject({ type: 'file', mode: 0o644 });
    expect(tree.config).toMatchObject({ User: 'app', WorkingDir: '/app', Cmd: ['cat', '/app/hello.txt'] });
    expect(tree.config.Env).toEqual(expect.arrayContaining(['APP_HOME=/app', 'GREETING=hello world']));

    // The in-memory layer reader agrees with umoci on a real multi-layer Debian image.
    const fast = await readImageTree(built.digestReference, { registry, reader: 'layers' });
    expect(diffTrees(tree, fast, { compareMtimes: true })).toEqual([]);
  });
});
