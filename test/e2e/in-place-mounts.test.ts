/**
 * RUN --mount with in-place isolation, emulated without mounts (src/sandbox/in-place-mounts.ts),
 * through whole builds over a root directory of the test's own (test/harness/in-place-build.ts):
 * what the step sees at each target, and that neither a layer nor the root keeps a mount's content
 * or a trace of its mount point, while what the image had at a target comes back.
 * RUN commands use paths relative to the step's working directory ("/" of the image, inside the
 * test root), since the step's programs are the host's.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheDirectoryName } from '../../src/sandbox/cache-mounts.js';
import { findInImage, listImageLayers, readImageTree, type ImageTree } from '../harness/image-tree.js';
import { buildInPlace, startInPlaceFixture, type InPlaceBuild, type InPlaceFixture } from '../harness/in-place-build.js';

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

describe('RUN --mount with in-place isolation', () => {
  let fixture: InPlaceFixture;
  let secretFile: string;

  beforeAll(async () => {
    fixture = await startInPlaceFixture();
    secretFile = path.join(fixture.work, 'token.txt');
    await writeFile(secretFile, 's3cr3t-from-file');
  }, 120_000);
  afterAll(async () => {
    await fixture?.stop();
  });

  const reference = (tag: string): string => `${fixture.registry.host}/in-place/${tag}`;
  const build = (request: InPlaceBuild): ReturnType<typeof buildInPlace> => buildInPlace(fixture, request);
  const tree = (tag: string): Promise<ImageTree> => readImageTree(reference(tag), { registry: fixture.registry, reader: 'layers' });
  /** The paths the image's last layer holds: what its last RUN left. */
  const lastLayer = async (tag: string): Promise<string[]> => (await listImageLayers(reference(tag), { registry: fixture.registry })).at(-1)?.paths ?? [];
  /** Everything left in the in-place root besides kiln's runtime and the context. */
  const rootEntries = async (): Promise<string[]> => (await readdir(fixture.root)).filter((name) => name !== 'kiln' && name !== 'workspace').sort();
  const exists = async (relative: string): Promise<boolean> =>
    lstat(path.join(fixture.root, relative)).then(
      () => true,
      () => false,
    );

  it('keeps a cache mount across builds, seeds a new one from a stage, and leaves it in no layer', async () => {
    await build({
      dockerfile: [
        'FROM BASE',
        'RUN --mount=type=cache,target=/var/cache/app,id=app-cache,mode=0750,uid=1000,gid=1000 stat -c "%a %u %g" var/cache/app > cache-1.txt && ls -A var/cache/app >> cache-1.txt && echo built-once > var/cache/app/artifact',
        '',
      ].join('\n'),
      tag: 'cache:1',
    });
    expect(await lastLayer('cache:1')).toEqual(['/cache-1.txt']);
    expect((await tree('cache:1')).entries.get('/cache-1.txt')?.sha256).toBe(sha256('750 1000 1000\n'));
    expect(await exists('var/cache')).toBe(false);

    await build({
      dockerfile: [
        'FROM BASE AS seed',
        'RUN mkdir seeddir && echo seeded > seeddir/s.txt',
        'FROM BASE',
        'RUN --mount=type=cache,target=/var/cache/app,id=app-cache --mount=type=cache,target=/seeded,id=seeded-cache,from=seed,source=/seeddir cat var/cache/app/artifact seeded/s.txt > cache-2.txt',
        '',
      ].join('\n'),
      tag: 'cache:2',
    });
    expect(await lastLayer('cache:2')).toEqual(['/cache-2.txt']);
    const second = await tree('cache:2');
    expect(second.entries.get('/cache-2.txt')?.sha256).toBe(sha256('built-once\nseeded\n'));
    for (const name of second.entries.keys()) expect(name).not.toMatch(/^\/(var\/cache|seeded|seeddir)(\/|$)/);
    const cacheRoot = path.join(fixture.root, 'kiln', 'work', 'cache-mounts');
    expect(await readFile(path.join(cacheRoot, cacheDirectoryName('app-cache'), 'data', 'artifact'), 'utf8')).toBe('built-once\n');
    expect(await readFile(path.join(cacheRoot, cacheDirectoryName('seeded-cache'), 'data', 's.txt'), 'utf8')).toBe('seeded\n');
  }, 180_000);

  it('shows the step a copy of bound context files over what the image has, discards its writes and puts the image back', async () => {
    // .dockerignore leaves src/ignored.txt out of the context: a step cannot see it, as with BuildKit.
    const files = { 'src/hello.txt': 'from the context\n', 'src/ignored.txt': 'left out\n', 'single.txt': 'one file\n', '.dockerignore': 'src/ignored.txt\n' };
    await build({
      dockerfile: [
        'FROM BASE',
        'RUN --mount=type=bind,source=src,target=/usr/sbin,rw --mount=type=bind,source=single.txt,target=/etc/app.conf ' +
          'ls -A usr/sbin > bind.txt && cat usr/sbin/hello.txt etc/app.conf >> bind.txt && echo changed > usr/sbin/hello.txt && echo new > usr/sbin/new.txt',
        '',
      ].join('\n'),
      tag: 'bind:1',
      files,
    });
    expect(await lastLayer('bind:1')).toEqual(['/bind.txt']);
    const image = await tree('bind:1');
    expect(image.entries.get('/bind.txt')?.sha256).toBe(sha256('hello.txt\nfrom the context\none file\n'));
    // busybox's applet links are back in /usr/sbin, and nothing of the mount's.
    const sbin = [...image.entries.keys()].filter((name) => name.startsWith('/usr/sbin/'));
    expect(sbin.length).toBeGreaterThan(3);
    expect(sbin.filter((name) => /hello|new/.test(name))).toEqual([]);
    expect(image.entries.has('/etc/app.conf')).toBe(false);
    expect(await readFile(path.join(fixture.root, 'workspace', 'src', 'hello.txt'), 'utf8')).toBe('from the context\n');
    expect((await readdir(path.join(fixture.root, 'workspace', 'src'))).sort()).toEqual(['hello.txt', 'ignored.txt']);
    expect(await exists('usr/sbin/new.txt')).toBe(false);
  }, 180_000);

  it('gives an empty tmpfs directory over what the image has, and takes it away with what the step wrote', async () => {
    await build({
      dockerfile: [
        'FROM BASE',
        'RUN --mount=type=tmpfs,target=/etc --mount=type=tmpfs,target=/scratch/deep ' +
          'stat -c %a etc scratch/deep > tmpfs.txt && ls -A etc scratch/deep >> tmpfs.txt && echo x > etc/written && echo y > scratch/deep/written',
        '',
      ].join('\n'),
      tag: 'tmpfs:1',
    });
    expect(await lastLayer('tmpfs:1')).toEqual(['/tmpfs.txt']);
    const image = await tree('tmpfs:1');
    expect(image.entries.get('/tmpfs.txt')?.sha256).toBe(sha256('1777\n1777\netc:\n\nscratch/deep:\n'));
    expect(image.entries.get('/etc/passwd')?.type).toBe('file');
    expect(image.entries.has('/etc/written')).toBe(false);
    expect(image.entries.has('/scratch')).toBe(false);
    expect(await readFile(path.join(fixture.root, 'etc', 'passwd'), 'utf8')).toMatch(/^root:x:0:0:/);
    expect(await rootEntries()).not.toContain('scratch');
  }, 180_000);

  it('puts back what an earlier step left at a mount target', async () => {
    await build({
      dockerfile: [
        'FROM BASE',
        'RUN mkdir -p srv/data && echo kept > srv/data/keep.txt',
        'RUN --mount=type=cache,target=/srv/data,id=srv-cache ls -A srv/data > out.txt && echo cached > srv/data/c.txt',
        '',
      ].join('\n'),
      tag: 'aside:1',
    });
    // /srv got its time back only to the microsecond (node cannot set nanoseconds, which the earlier
    // step's mkdir left): the layer may list it, with the metadata it had, and nothing else of the mount's.
    expect((await lastLayer('aside:1')).filter((name) => name !== '/srv')).toEqual(['/out.txt']);
    const image = await tree('aside:1');
    expect(image.entries.get('/out.txt')?.sha256).toBe(sha256(''));
    expect(image.entries.get('/srv/data/keep.txt')?.sha256).toBe(sha256('kept\n'));
    expect(image.entries.has('/srv/data/c.txt')).toBe(false);
    expect(await readdir(path.join(fixture.root, 'srv', 'data'))).toEqual(['keep.txt']);
    const cacheRoot = path.join(fixture.root, 'kiln', 'work', 'cache-mounts');
    expect(await readdir(path.join(cacheRoot, cacheDirectoryName('srv-cache'), 'data'))).toEqual(['c.txt']);
  }, 180_000);

  it('puts secrets at /run/secrets/<id> and in the environment for the step, and nowhere in the image', async () => {
    const flags = ['--secret', `id=token,src=${secretFile}`, '--secret', 'id=envtok,env=KILN_TEST_TOKEN'];
    await build({
      dockerfile: [
        'FROM BASE',
        'RUN --mount=type=secret,id=token --mount=type=secret,id=envtok,env=API_TOKEN,target=/etc/app/token,mode=0440,uid=1000,gid=1000 ' +
          'stat -c "%a %u %g" run/secrets/token etc/app/token > secret.txt && sha256sum run/secrets/token etc/app/token | cut -c1-64 >> secret.txt && printf %s "$API_TOKEN" | sha256sum | cut -c1-64 >> secret.txt',
        '',
      ].join('\n'),
      tag: 'secret:1',
      flags,
      env: { KILN_TEST_TOKEN: 'value-from-env' },
    });
    const image = await tree('secret:1');
    const fileHash = sha256('s3cr3t-from-file');
    const envHash = sha256('value-from-env');
    expect(image.entries.get('/secret.txt')?.sha256).toBe(sha256(`400 0 0\n440 1000 1000\n${fileHash}\n${envHash}\n${envHash}\n`));
    expect(await lastLayer('secret:1')).toEqual(['/secret.txt']);
    expect(await findInImage(reference('secret:1'), 's3cr3t-from-file', { registry: fixture.registry })).toEqual([]);
    expect(await findInImage(reference('secret:1'), 'value-from-env', { registry: fixture.registry })).toEqual([]);
    expect(await rootEntries()).not.toContain('run');
    expect(await exists('etc/app')).toBe(false);

    // The step has its secret even when it fails, and the secret is gone after it all the same.
    await expect(build({ dockerfile: 'FROM BASE\nRUN --mount=type=secret,id=token test -f run/secrets/token && exit 3\n', tag: 'secret:2', flags })).rejects.toThrow(
      /Dockerfile:2: RUN .* failed: exit code 3/,
    );
    expect(await rootEntries()).not.toContain('run');
    await expect(build({ dockerfile: 'FROM BASE\nRUN --mount=type=secret,id=absent,required true\n', tag: 'secret:3', flags })).rejects.toThrow(
      /secret absent is required by RUN --mount=type=secret but was not given/,
    );
  }, 240_000);

  it('refuses ssh mounts as chroot does, and targets in-place isolation must leave alone', async () => {
    await expect(build({ dockerfile: 'FROM BASE\nRUN --mount=type=ssh true\n', tag: 'ssh:1' })).rejects.toThrow(/type=ssh.*not supported by kiln yet/);
    await expect(build({ dockerfile: 'FROM BASE\nRUN --mount=type=tmpfs,target=/kiln/lib true\n', tag: 'protected:1' })).rejects.toThrow(
      /mount target \/kiln\/lib is, or holds, a path in-place isolation must leave alone/,
    );
    expect((await readdir(path.join(fixture.root, 'kiln', 'lib'))).length).toBeGreaterThan(0);
  }, 120_000);
});
