import { describe, expect, it } from 'vitest';
import { RegistryError, parseRegistryErrorBody } from '../../../src/registry/errors.js';
import { nextLink } from '../../../src/registry/client.js';

const context = { registry: '127.0.0.1:5000', repository: 'org/app', operation: 'put manifest latest' };

describe('RegistryError', () => {
  it('names registry, repository, operation, status and the registry message', () => {
    const error = new RegistryError(context, {
      status: 400,
      details: parseRegistryErrorBody('{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:ab"}]}'),
    });
    expect(error.message).toBe(
      'put manifest latest at 127.0.0.1:5000/org/app failed: HTTP 400 Bad Request: registry says MANIFEST_BLOB_UNKNOWN: blob unknown to registry',
    );
    expect(error).toMatchObject({ registry: '127.0.0.1:5000', repository: 'org/app', operation: 'put manifest latest', status: 400 });
    expect(error.isNotFound).toBe(true);
  });

  it('leaves out the repository for registry-wide operations and joins several entries', () => {
    const error = new RegistryError(
      { registry: 'docker.io', repository: '', operation: 'ping' },
      { status: 401, details: [{ code: 'UNAUTHORIZED', message: 'authentication required' }, { code: 'DENIED', message: '' }] },
    );
    expect(error.message).toBe('ping at docker.io failed: HTTP 401 Unauthorized: registry says UNAUTHORIZED: authentication required; DENIED');
    expect(error.isNotFound).toBe(false);
  });

  it('words a connection failure without a status', () => {
    const error = new RegistryError(context, { reason: 'connect ECONNREFUSED 127.0.0.1:5000' });
    expect(error.message).toBe('put manifest latest at 127.0.0.1:5000/org/app failed: connect ECONNREFUSED 127.0.0.1:5000');
    expect(error.status).toBeUndefined();
  });
});

describe('parseRegistryErrorBody', () => {
  it('reads OAuth2 token server errors', () => {
    expect(parseRegistryErrorBody('{"error":"invalid_grant","error_description":"expired"}')).toEqual([
      { code: 'invalid_grant', message: 'expired' },
    ]);
  });

  it('quotes a short non-JSON body and cuts a long one', () => {
    expect(parseRegistryErrorBody('Bad gateway\n')).toEqual([{ code: 'UNKNOWN', message: 'Bad gateway' }]);
    const long = parseRegistryErrorBody(`<html>${'x'.repeat(1000)}</html>`);
    expect(long[0]?.message.length).toBeLessThanOrEqual(201);
  });

  it('gives nothing for an empty body and tolerates odd entries', () => {
    expect(parseRegistryErrorBody('')).toEqual([]);
    expect(parseRegistryErrorBody('{"errors":[null,{"code":7}]}')).toEqual([
      { code: 'UNKNOWN', message: '' },
      { code: 'UNKNOWN', message: '' },
    ]);
  });
});

describe('nextLink', () => {
  it('finds the rel="next" target of a Link header', () => {
    expect(nextLink('</v2/app/tags/list?last=b&n=2>; rel="next"')).toBe('/v2/app/tags/list?last=b&n=2');
    expect(nextLink('<https://x/a>; rel="prev", <https://x/b>; rel=next')).toBe('https://x/b');
    expect(nextLink(undefined)).toBeUndefined();
    expect(nextLink('<https://x/a>; rel="prev"')).toBeUndefined();
  });
});
