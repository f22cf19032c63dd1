import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256Digest } from '../../../src/image/digest.js';
import { ociCorpusDir, ociValidator } from '../../harness/oci-schema.js';

interface CorpusCase {
  id: string;
  mediaType: string;
  input: string;
  fail: boolean;
  failureCaughtBy?: string[];
  dockerOriginal?: string;
  dockerOriginalDigest?: string;
}

const corpus = JSON.parse(readFileSync(path.join(ociCorpusDir, 'cases', 'validation-cases.json'), 'utf8')) as {
  cases: CorpusCase[];
  specExamples: CorpusCase[];
};

describe('OCI image-spec validation corpus through the test validator', () => {
  it('has the documented number of cases', () => {
    expect(corpus.cases).toHaveLength(71);
    expect(corpus.specExamples).toHaveLength(13);
    expect(corpus.cases.filter((c) => c.fail)).toHaveLength(40);
  });

  it.each([...corpus.cases, ...corpus.specExamples].map((c) => [c.id, c] as const))('%s', (_id, testCase) => {
    const result = ociValidator.validate(testCase.mediaType, testCase.input);
    expect({ valid: result.valid, errors: testCase.fail ? [] : result.errors }).toEqual({ valid: !testCase.fail, errors: [] });
    if (testCase.fail) {
      // The rejection must come from a check the corpus says catches it, not from an accident.
      const kind = (message: string): string => message.split(':')[0]!.replace('schema-format', 'schema').replace('invalid JSON', 'invalid-json');
      const expectedKinds = new Set((testCase.failureCaughtBy ?? []).map(kind));
      expect(result.errors.some((error) => expectedKinds.has(kind(error)))).toBe(true);
    }
  });

  it('compat cases: the Docker originals hash to their recorded digests', () => {
    const compat = corpus.cases.filter((c) => c.dockerOriginal !== undefined);
    expect(compat.length).toBeGreaterThan(0);
    for (const c of compat) expect(sha256Digest(c.dockerOriginal as string)).toBe(c.dockerOriginalDigest);
  });

  it('compat cases: the Docker originals validate through the media-type rewrite', () => {
    for (const c of corpus.cases.filter((x) => x.dockerOriginal !== undefined)) {
      const dockerType = c.mediaType.includes('index') ? 'application/vnd.docker.distribution.manifest.list.v2+json'
        : c.mediaType.includes('manifest') ? 'application/vnd.docker.distribution.manifest.v2+json'
        : 'application/vnd.docker.container.image.v1+json';
      expect(ociValidator.validateCompat(dockerType, c.dockerOriginal as string).valid).toBe(!c.fail);
    }
  });
});
