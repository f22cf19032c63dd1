import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { assembleImage } from '../../../src/image/assemble.js';
import { DigestMismatchError, sha256Digest } from '../../../src/image/digest.js';
import { FileLayer } from '../../../src/image/file-layer.js';
import type { Image } from '../../../src/image/image.js';
import { MediaType } from '../../../src/image/media-types.js';
import {
  DockerArchiveError,
  listDockerArchive,
  readDockerArchive,
  writeDockerArchive,
  writeDockerArchiveFile,
} from '../../../src/layout/docker-archive.js';
import { indexTar, resolveTarFile } from '../../../src/layout/tar-index.js';
import { assertValidOci } from '../../harness/oci-schema.js';
import { makeTar, readAll, testConfig, writeTestLayer, type TestFile } from '../../harness/test-layers.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-archive-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function makeImage(name: string): Promise<Image> {
  const own = await writeTestLayer(dir, [{ name: `${name}.txt`, content: `${name}\n` }]);
  const shared = await writeTestLayer(dir, [{ name: 'shared.txt', content: 'shared\n' }]);
  return assembleImage({ config: testConfig(), layers: [shared.layer, own.layer], format: 'docker' });
}

interface Entry {
  header: tar.Header;
  data: Buffer;
}

async function entriesOf(file: string): Promise<Entry[]> {
  const extract = tar.extract();
  const entries: Entry[] = [];
  const reading = (async () => {
    for await (const entry of extract) {
      entries.push({ header: entry.header, data: await readAll(entry) });
    }
  })();
  extract.end(await readFile(file));
  await reading;
  return entries;
}

describe('writeDockerArchive', () => {
  it('makes a missing parent directory, and reports a file it cannot create instead of hanging', async () => {
    const image = await makeImage('nested');
    const file = path.join(dir, 'not', 'yet', 'out.tar');
    await writeDockerArchiveFile(file, [{ image, tags: ['x:1'] }]);
    expect((await entriesOf(file)).map((e) => e.header.name)).toContain('manifest.json');
    await writeFile(path.join(dir, 'plain-file'), '');
    await expect(writeDockerArchiveFile(path.join(dir, 'plain-file', 'out.tar'), [{ image, tags: [] }])).rejects.toThrow(/ENOTDIR|EEXIST/);
  });

  it('writes manifest.json, repositories, the config and the layer blobs, with fixed metadata', async () => {
    const image = await makeImage('one');
    const file = path.join(dir, 'out.tar');
    await writeDockerArchiveFile(file, [{ image, tags: ['busybox', 'localhost:5000/app:1', 'docker.io/user/tool:v2'] }]);
    const entries = await entriesOf(file);
    const names = entries.map((e) => e.header.name);
    const configName = `${image.manifest.config.digest.slice(7)}.json`;
    const layerNames = image.layers.map((l) => `${l.descriptor.digest.slice(7)}.tar.gz`);
    expect(names).toEqual([configName, ...layerNames, 'manifest.json', 'repositories']);
    for (const { header } of entries) {
      expect(header).toMatchObject({ mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', type: 'file' });
      expect(header.mtime?.getTime()).toBe(0);
    }
    const byName = new Map(entries.map((e) => [e.header.name, e.data]));
    expect(byName.get(configName)?.equals(image.rawConfig)).toBe(true);
    expect(sha256Digest(byName.get(layerNames[1]!)!)).toBe(image.layers[1]!.descriptor.digest);
    expect(JSON.parse(byName.get('manifest.json')!.toString())).toEqual([
      { Config: configName, RepoTags: ['busybox:latest', 'localhost:5000/app:1', 'user/tool:v2'], Layers: layerNames },
    ]);
    const top = image.layers[1]!.diffId.slice(7);
    expect(JSON.parse(byName.get('repositories')!.toString())).toEqual({
      busybox: { latest: top },
      'localhost:5000/app': { '1': top },
      'user/tool': { v2: top },
    });
    expect((await readdir(dir)).filter((n) => n.includes('kiln-tmp'))).toEqual([]);
  });

  it('is deterministic', async () => {
    const image = await makeImage('det');
    const a = path.join(dir, 'a.tar');
    const b = path.join(dir, 'b.tar');
    await writeDockerArchiveFile(a, [{ image, tags: ['x:1'] }]);
    await writeDockerArchiveFile(b, [{ image, tags: ['x:1'] }]);
    expect((await readFile(a)).equals(await readFile(b))).toBe(true);
  });

  it('writes a shared layer once for several images', async () => {
    const first = await makeImage('first');
    const second = await makeImage('second');
    const file = path.join(dir, 'two.tar');
    await writeDockerArchiveFile(file, [
      { image: first, tags: ['first:1'] },
      { image: second, tags: [] },
    ]);
    const names = (await entriesOf(file)).map((e) => e.header.name);
    expect(names.filter((n) => n === `${first.layers[0]!.descriptor.digest.slice(7)}.tar.gz`)).toHaveLength(1);
    const listed = await listDockerArchive(file);
    expect(listed.map((e) => e.RepoTags)).toEqual([['first:1'], []]);
  });

  it('a failing layer fails the write and leaves no file', async () => {
    const image = assembleImage({ config: testConfig(), layers: [(await writeTestLayer(dir, [{ name: 'bad', content: 'bad' }])).layer], format: 'oci' });
    const real = image.layers[0] as FileLayer;
    // Same size, wrong digest: the layer's own verification fails the stream at its end.
    const corrupt = new FileLayer({ path: real.path, descriptor: { ...real.descriptor, digest: sha256Digest('nope') }, diffId: real.diffId });
    const file = path.join(dir, 'bad.tar');
    await expect(writeDockerArchiveFile(file, [{ image: { ...image, layers: [corrupt] }, tags: ['bad:1'] }])).rejects.toBeInstanceOf(
      DigestMismatchError,
    );
    expect(await readdir(dir)).not.toContain('bad.tar');
    expect((await readdir(dir)).filter((n) => n.includes('kiln-tmp'))).toEqual([]);
  });

  it('a layer that cannot be opened fails the write with its error', async () => {
    const image = await makeImage('unopenable');
    const failing = { ...image.layers[0]!, open: async () => Promise.reject(new Error('registry went away')) };
    await expect(writeDockerArchiveFile(path.join(dir, 'u.tar'), [{ image: { ...image, layers: [failing] }, tags: [] }])).rejects.toThrow(
      'registry went away',
    );
    expect(await readdir(dir)).not.toContain('u.tar');
  });

  it('refuses a digest-only tag', async () => {
    const image = await makeImage('d');
    await expect(
      writeDockerArchive(createWriteStream(path.join(dir, 'x.tar')), [{ image, tags: [`x@sha256:${'a'.repeat(64)}`] }]),
    ).rejects.toThrow(/need a tag/);
  });
});

describe('readDockerArchive', () => {
  it('reads back what kiln wrote: same config, layers and diffIDs', async () => {
    const image = await makeImage('rt');
    const file = path.join(dir, 'rt.tar');
    await writeDockerArchiveFile(file, [{ image, tags: ['rt:1'] }]);
    const back = await readDockerArchive(file);
    expect(back.rawConfig.equals(image.rawConfig)).toBe(true);
    expect(back.manifest.config.digest).toBe(image.manifest.config.digest);
    expect(back.layers.map((l) => l.descriptor.digest)).toEqual(image.layers.map((l) => l.descriptor.digest));
    expect(back.layers.map((l) => l.descriptor.mediaType)).toEqual([MediaType.ociLayerGzip, MediaType.ociLayerGzip]);
    expect(back.layers.map((l) => l.diffId)).toEqual(image.layers.map((l) => l.diffId));
    for (const [i, layer] of back.layers.entries()) {
      expect(sha256Digest(await readAll(await layer.open()))).toBe(image.layers[i]!.descriptor.digest);
    }
    expect(back.digest).toBe(sha256Digest(back.rawManifest));
    assertValidOci(MediaType.ociManifest, back.rawManifest);
  });

  it('selects by tag (normalised) or by position, and lists tags on a miss', async () => {
    const first = await makeImage('first');
    const second = await makeImage('second');
    const file = path.join(dir, 'two.tar');
    await writeDockerArchiveFile(file, [
      { image: first, tags: ['first:1'] },
      { image: second, tags: ['second:2'] },
    ]);
    expect((await readDockerArchive(file, { reference: 'docker.io/library/second:2' })).manifest.config.digest).toBe(second.manifest.config.digest);
    expect((await readDockerArchive(file, { index: 0 })).manifest.config.digest).toBe(first.manifest.config.digest);
    await expect(readDockerArchive(file)).rejects.toThrow(/holds 2 images; name one \(tags: first:1, second:2\)/);
    await expect(readDockerArchive(file, { reference: 'third:3' })).rejects.toThrow(/no image tagged third:3/);
    await expect(readDockerArchive(file, { index: 5 })).rejects.toThrow(DockerArchiveError);
  });

  async function archiveOf(files: TestFile[]): Promise<string> {
    const file = path.join(dir, `fixture-${files.length}-${Math.random().toString(16).slice(2)}.tar`);
    await writeFile(file, await makeTar(files));
    return file;
  }

  it('reads the legacy `docker save` layout: <id>/layer.tar, uncompressed, a repeated layer as a symlink', async () => {
    const layerTar = await makeTar([{ name: 'etc/', type: 'directory' }, { name: 'etc/os-release', content: 'ID=test\n' }]);
    const diffId = sha256Digest(layerTar);
    const config = Buffer.from(JSON.stringify(testConfig({ rootfs: { type: 'layers', diff_ids: [diffId, diffId] } })));
    const configHex = sha256Digest(config).slice(7);
    const file = await archiveOf([
      { name: `${'1'.repeat(64)}/`, type: 'directory' },
      { name: `${'1'.repeat(64)}/VERSION`, content: '1.0' },
      { name: `${'1'.repeat(64)}/layer.tar`, content: layerTar },
      { name: `${'2'.repeat(64)}/`, type: 'directory' },
      { name: `${'2'.repeat(64)}/layer.tar`, type: 'symlink', linkname: `../${'1'.repeat(64)}/layer.tar` },
      { name: `${configHex}.json`, content: config },
      {
        name: 'manifest.json',
        content: JSON.stringify([{ Config: `${configHex}.json`, RepoTags: ['legacy:1'], Layers: [`${'1'.repeat(64)}/layer.tar`, `${'2'.repeat(64)}/layer.tar`] }]),
      },
      { name: 'repositories', content: JSON.stringify({ legacy: { '1': '2'.repeat(64) } }) },
    ]);
    const image = await readDockerArchive(file, { reference: 'legacy:1' });
    expect(image.rawConfig.equals(config)).toBe(true);
    expect(image.layers.map((l) => l.descriptor)).toEqual([
      { mediaType: MediaType.ociLayer, digest: diffId, size: layerTar.length },
      { mediaType: MediaType.ociLayer, digest: diffId, size: layerTar.length },
    ]);
    expect((await readAll(await image.layers[1]!.open())).equals(layerTar)).toBe(true);
    assertValidOci(MediaType.ociManifest, image.rawManifest);
  });

  it('reads the docker 25+ layout (blobs/sha256) and gzip layers, hashing them for their digest', async () => {
    const layerTar = await makeTar([{ name: 'x', content: 'x' }]);
    const gz = gzipSync(layerTar);
    const config = Buffer.from(JSON.stringify(testConfig({ rootfs: { type: 'layers', diff_ids: [sha256Digest(layerTar), sha256Digest(layerTar)] } })));
    const file = await archiveOf([
      { name: 'blobs/', type: 'directory' },
      { name: 'blobs/sha256/', type: 'directory' },
      { name: `blobs/sha256/${sha256Digest(config).slice(7)}`, content: config },
      { name: `blobs/sha256/${sha256Digest(layerTar).slice(7)}`, content: layerTar },
      { name: `blobs/sha256/${sha256Digest(gz).slice(7)}`, content: gz },
      { name: 'index.json', content: '{"schemaVersion":2,"manifests":[]}' },
      {
        name: 'manifest.json',
        content: JSON.stringify([
          {
            Config: `blobs/sha256/${sha256Digest(config).slice(7)}`,
            RepoTags: null,
            Layers: [`blobs/sha256/${sha256Digest(layerTar).slice(7)}`, `blobs/sha256/${sha256Digest(gz).slice(7)}`],
          },
        ]),
      },
    ]);
    const image = await readDockerArchive(file);
    expect(image.layers.map((l) => [l.descriptor.mediaType, l.descriptor.digest])).toEqual([
      [MediaType.ociLayer, sha256Digest(layerTar)],
      [MediaType.ociLayerGzip, sha256Digest(gz)],
    ]);
    expect((await readAll(await image.layers[1]!.open())).equals(gz)).toBe(true);
  });

  it('an uncompressed layer whose bytes do not match its diffID fails while streaming', async () => {
    const layerTar = await makeTar([{ name: 'x', content: 'x' }]);
    const config = Buffer.from(JSON.stringify(testConfig({ rootfs: { type: 'layers', diff_ids: [sha256Digest('something else')] } })));
    const file = await archiveOf([
      { name: 'c.json', content: config },
      { name: 'l.tar', content: layerTar },
      { name: 'manifest.json', content: JSON.stringify([{ Config: 'c.json', RepoTags: [], Layers: ['l.tar'] }]) },
    ]);
    const image = await readDockerArchive(file);
    await expect(readAll(await image.layers[0]!.open())).rejects.toBeInstanceOf(DigestMismatchError);
  });

  it('clear errors for what is not a docker archive', async () => {
    const gzipped = path.join(dir, 'x.tar.gz');
    await writeFile(gzipped, gzipSync(await makeTar([{ name: 'manifest.json', content: '[]' }])));
    await expect(readDockerArchive(gzipped)).rejects.toThrow(/gzip-compressed; decompress it first/);
    await expect(readDockerArchive(await archiveOf([{ name: 'a', content: 'b' }]))).rejects.toThrow(/no manifest.json/);
    await expect(readDockerArchive(await archiveOf([{ name: 'manifest.json', content: '{}' }]))).rejects.toThrow(/must be an array/);
    await expect(readDockerArchive(await archiveOf([{ name: 'manifest.json', content: '[{"Config":1}]' }]))).rejects.toThrow(/needs Config/);
    await expect(
      readDockerArchive(await archiveOf([{ name: 'manifest.json', content: '[{"Config":"c.json","Layers":[]}]' }])),
    ).rejects.toThrow(/no entry "c.json"/);
    const notTar = path.join(dir, 'plain.txt');
    await writeFile(notTar, 'x'.repeat(2048));
    await expect(readDockerArchive(notTar)).rejects.toThrow(/checksum/);
  });
});

describe('indexTar', () => {
  it('finds entries with long (pax) names, and resolves links', async () => {
    const longName = `${'deep/'.repeat(40)}file.txt`;
    const file = path.join(dir, 'long.tar');
    await writeFile(
      file,
      await makeTar([
        { name: longName, content: 'long' },
        { name: 'short', content: 'tiny' },
        { name: 'link', type: 'symlink', linkname: longName },
      ]),
    );
    const entries = await indexTar(file);
    const data = await readFile(file);
    const long = entries.get(longName)!;
    expect(data.subarray(long.offset, long.offset + long.size).toString()).toBe('long');
    const short = entries.get('short')!;
    expect(data.subarray(short.offset, short.offset + short.size).toString()).toBe('tiny');
    expect(resolveTarFile(file, entries, 'link')).toBe(long);
    expect(resolveTarFile(file, entries, './short')).toBe(short);
  });
});
