import { describe, expect, it } from 'vitest';
import { InvalidLocationError, parseLayoutLocation } from '../../../src/layout/location.js';

describe('parseLayoutLocation', () => {
  it.each([
    ['oci:/tmp/layout', { transport: 'oci', directory: '/tmp/layout' }],
    ['oci:/tmp/layout:v1.2', { transport: 'oci', directory: '/tmp/layout', tag: 'v1.2' }],
    ['oci:rel/dir:latest', { transport: 'oci', directory: 'rel/dir', tag: 'latest' }],
    ['docker-archive:/tmp/a.tar', { transport: 'docker-archive', file: '/tmp/a.tar' }],
    ['docker-archive:/tmp/a.tar:busybox:1', { transport: 'docker-archive', file: '/tmp/a.tar', reference: 'busybox:1' }],
    ['docker-archive:/tmp/a.tar:localhost:5000/app:2', { transport: 'docker-archive', file: '/tmp/a.tar', reference: 'localhost:5000/app:2' }],
    ['docker-archive:/tmp/a.tar:@1', { transport: 'docker-archive', file: '/tmp/a.tar', index: 1 }],
  ])('%s', (text, expected) => {
    expect(parseLayoutLocation(text)).toEqual(expected);
  });

  it('leaves registry references alone', () => {
    expect(parseLayoutLocation('busybox:latest')).toBeUndefined();
    expect(parseLayoutLocation('localhost:5000/oci:tag')).toBeUndefined();
  });

  it.each(['oci:', 'oci::tag', 'oci:/x:-bad', 'oci:/x:a/b', 'docker-archive:', 'docker-archive:/a.tar:@x', 'docker-archive:/a.tar:Bad/Name:1'])(
    'rejects %s',
    (text) => {
      expect(() => parseLayoutLocation(text)).toThrow(InvalidLocationError);
    },
  );
});
