import { describe, expect, it } from 'vitest';
import { InvalidImageConfigError, parseImageConfig, serializeImageConfig } from '../../../src/image/config.js';
import {
  InvalidManifestError,
  manifestMediaTypeOf,
  parseImageIndex,
  parseImageManifest,
  parseManifest,
  serializeManifest,
} from '../../../src/image/manifest.js';
import { MediaType } from '../../../src/image/media-types.js';
import { assertValidOci } from '../../harness/oci-schema.js';

const d1 = `sha256:${'1'.repeat(64)}`;
const d2 = `sha256:${'2'.repeat(64)}`;
const d3 = `sha256:${'3'.repeat(64)}`;

function manifestJson(overrides: Record<string, unknown> = {}, configType: string = MediaType.ociConfig): string {
  return JSON.stringify({
    schemaVersion: 2,
    config: { mediaType: configType, digest: d1, size: 10 },
    layers: [{ mediaType: MediaType.ociLayerGzip, digest: d2, size: 20 }],
    ...overrides,
  });
}

describe('parseManifest: media types', () => {
  it('takes the declared mediaType', () => {
    for (const mediaType of [MediaType.ociManifest, MediaType.dockerManifest]) {
      const parsed = parseManifest(manifestJson({ mediaType }));
      expect(parsed.kind).toBe('image');
      expect(parsed.mediaType).toBe(mediaType);
    }
    for (const mediaType of [MediaType.ociIndex, MediaType.dockerManifestList]) {
      const parsed = parseManifest(JSON.stringify({ schemaVersion: 2, mediaType, manifests: [] }));
      expect(parsed.kind).toBe('index');
      expect(parsed.mediaType).toBe(mediaType);
    }
  });

  it('without mediaType (umoci): the Content-Type decides, parameters ignored', () => {
    expect(parseManifest(manifestJson(), { contentType: `${MediaType.dockerManifest}; charset=utf-8` }).mediaType).toBe(MediaType.dockerManifest);
    expect(parseManifest(manifestJson(), { contentType: 'application/json' }).mediaType).toBe(MediaType.ociManifest);
  });

  it('without mediaType or Content-Type: inferred from the shape and the config type', () => {
    expect(parseManifest(manifestJson()).mediaType).toBe(MediaType.ociManifest);
    expect(parseManifest(manifestJson({}, MediaType.dockerConfig)).mediaType).toBe(MediaType.dockerManifest);
    const index = parseManifest(JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: MediaType.ociManifest, digest: d1, size: 3 }] }));
    expect(index).toMatchObject({ kind: 'index', mediaType: MediaType.ociIndex });
    expect(manifestMediaTypeOf(JSON.parse(manifestJson({}, MediaType.dockerConfig)))).toBe(MediaType.dockerManifest);
  });

  it('parseImageManifest / parseImageIndex insist on their kind', () => {
    expect(parseImageManifest(manifestJson()).layers).toHaveLength(1);
    expect(() => parseImageManifest(JSON.stringify({ schemaVersion: 2, manifests: [] }))).toThrow(/expected an image manifest/);
    expect(() => parseImageIndex(manifestJson())).toThrow(/expected an image index/);
  });

  it('keeps unknown fields (annotations, subject, artifactType, platform extras)', () => {
    const raw = manifestJson({
      annotations: { 'org.opencontainers.image.source': 'https://example.com' },
      subject: { mediaType: MediaType.ociManifest, digest: d3, size: 5 },
      artifactType: 'application/vnd.example+json',
    });
    const parsed = parseImageManifest(raw);
    expect(parsed.annotations).toEqual({ 'org.opencontainers.image.source': 'https://example.com' });
    expect(parsed.subject?.digest).toBe(d3);
  });
});

describe('parseManifest: validation errors say what is wrong', () => {
  it.each([
    ['not json', '{', /not valid JSON/],
    ['an array', '[]', /expected a JSON object/],
    ['schema 1', JSON.stringify({ schemaVersion: 1, fsLayers: [] }), /schema 1 is not supported/],
    ['schemaVersion 3', manifestJson({ schemaVersion: 3 }), /schemaVersion must be 2, got 3/],
    ['unknown media type', manifestJson({ mediaType: 'application/json' }), /unsupported manifest media type "application\/json"/],
    ['no config or manifests', JSON.stringify({ schemaVersion: 2 }), /neither an image manifest/],
    ['layers not an array', manifestJson({ layers: {} }), /layers must be an array/],
    ['bad digest', manifestJson({ layers: [{ mediaType: MediaType.ociLayerGzip, digest: 'sha256:xyz!', size: 1 }] }), /layers\[0\]\.digest "sha256:xyz!" is not a valid digest/],
    ['upper-case sha256', manifestJson({ layers: [{ mediaType: MediaType.ociLayerGzip, digest: `sha256:${'A'.repeat(64)}`, size: 1 }] }), /64 lower-case hex/],
    ['short sha256', manifestJson({ layers: [{ mediaType: MediaType.ociLayerGzip, digest: 'sha256:abcd', size: 1 }] }), /64 lower-case hex/],
    ['negative size', manifestJson({ layers: [{ mediaType: MediaType.ociLayerGzip, digest: d2, size: -1 }] }), /layers\[0\]\.size -1 must be a non-negative integer/],
    ['string size', manifestJson({ layers: [{ mediaType: MediaType.ociLayerGzip, digest: d2, size: '1' }] }), /size "1"/],
    ['fractional size', manifestJson({ layers: [{ mediaType: MediaType.ociLayerGzip, digest: d2, size: 1.5 }] }), /size 1.5/],
    ['bad descriptor media type', manifestJson({ config: { mediaType: 'invalid', digest: d1, size: 1 } }), /config\.mediaType "invalid"/],
    ['config missing', JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, layers: [] }), /config must be a descriptor/],
    ['annotation not a string', manifestJson({ annotations: { a: 1 } }), /annotations\["a"\] must be a string/],
    ['index platform without os', JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: MediaType.ociManifest, digest: d1, size: 1, platform: { architecture: 'amd64' } }] }), /manifests\[0\]\.platform\.os must be a string/],
  ])('%s', (_name, raw, message) => {
    expect(() => parseManifest(raw, { source: 'test manifest' })).toThrow(InvalidManifestError);
    expect(() => parseManifest(raw, { source: 'test manifest' })).toThrow(message);
  });

  it('names the source in the message', () => {
    expect(() => parseManifest('{', { source: 'manifest sha256:abc from r/x' })).toThrow(/^manifest sha256:abc from r\/x: /);
  });
});

describe('serializeManifest', () => {
  it('writes canonical JSON that the OCI schema accepts', () => {
    const manifest = parseImageManifest(manifestJson({ mediaType: MediaType.ociManifest }));
    const bytes = serializeManifest(manifest);
    expect(bytes.toString()).toBe(
      `{"config":{"digest":"${d1}","mediaType":"${MediaType.ociConfig}","size":10},"layers":[{"digest":"${d2}","mediaType":"${MediaType.ociLayerGzip}","size":20}],"mediaType":"${MediaType.ociManifest}","schemaVersion":2}`,
    );
    assertValidOci(MediaType.ociManifest, bytes);
    expect(parseImageManifest(bytes)).toEqual(manifest);
  });
});

describe('parseImageConfig', () => {
  const config = {
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['A=1', 'B='], Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: [d1, d2] },
    history: [{ created_by: 'x' }],
  };

  it('parses a config and checks the layer count', () => {
    expect(parseImageConfig(JSON.stringify(config), { layerCount: 2 }).rootfs.diff_ids).toEqual([d1, d2]);
    expect(() => parseImageConfig(JSON.stringify(config), { layerCount: 3 })).toThrow(
      'rootfs.diff_ids has 2 entries but the manifest has 3 layers',
    );
  });

  it.each([
    ['not json', 'nope', /not valid JSON/],
    ['no os', JSON.stringify({ ...config, os: undefined }), /os must be a string/],
    ['numeric architecture', JSON.stringify({ ...config, architecture: 1 }), /architecture must be a string/],
    ['no rootfs', JSON.stringify({ ...config, rootfs: undefined }), /rootfs is missing/],
    ['rootfs type', JSON.stringify({ ...config, rootfs: { type: 'other', diff_ids: [] } }), /rootfs.type must be "layers"/],
    ['bad diff id', JSON.stringify({ ...config, rootfs: { type: 'layers', diff_ids: ['sha256:zz'] } }), /diff_ids\[0\]/],
    ['history not array', JSON.stringify({ ...config, history: {} }), /history must be an array/],
    ['Env without =', JSON.stringify({ ...config, config: { Env: ['foo'] } }), /config.Env\[0\] "foo" is not NAME=value/],
    ['created not a string', JSON.stringify({ ...config, created: 5 }), /created must be a string/],
  ])('rejects %s', (_name, raw, message) => {
    expect(() => parseImageConfig(raw)).toThrow(InvalidImageConfigError);
    expect(() => parseImageConfig(raw)).toThrow(message);
  });

  it('serialises canonically, accepted by the OCI config schema', () => {
    const bytes = serializeImageConfig(parseImageConfig(JSON.stringify(config)));
    expect(bytes.toString().startsWith('{"architecture":"amd64","config":{"Cmd":["sh"],"Env":["A=1","B="]}')).toBe(true);
    assertValidOci(MediaType.ociConfig, bytes);
  });
});
