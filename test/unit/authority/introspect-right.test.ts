import assert from 'node:assert/strict';
import { createDocumentPolicy, parseClientPolicy } from '../../../src/authority/file-policy.js';
import type { Caller } from '../../../src/grpc/caller.js';
import { ErrorCodes, TokenAuthorityError } from '../../../src/shared/errors.js';

const remote = (...identities: string[]): Caller => ({ peer: '10.0.0.7:4242', loopback: false, identities });

function thrown(fn: () => unknown): TokenAuthorityError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof TokenAuthorityError, `expected a TokenAuthorityError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a throw');
}

describe('client policy: the introspect right (OAuth introspection endpoint)', () => {
  const doc = parseClientPolicy(
    JSON.stringify({ version: 1, clients: { 'spiffe://corp/gateway': { introspect: true }, 'spiffe://corp/login': { issue: { audiences: ['orders'], scopes: [] }, introspect: false } } }),
    'policy.json',
  );
  const policy = createDocumentPolicy(() => doc);

  it('is held only where the file says introspect: true', () => {
    policy.authorize(remote('spiffe://corp/gateway'), 'introspect');
    const e = thrown(() => policy.authorize(remote('spiffe://corp/login'), 'introspect'));
    assert.equal(e.code, ErrorCodes.PERMISSION_DENIED);
    assert.equal(e.message, 'client spiffe://corp/login may not introspect; allowed: issue');
    assert.equal(thrown(() => policy.authorize(remote('spiffe://corp/gateway'), 'issue')).message, 'client spiffe://corp/gateway may not issue; allowed: introspect');
  });

  it('needs a certificate identity', () => {
    const e = thrown(() => policy.authorize(remote(), 'introspect'));
    assert.equal(e.code, ErrorCodes.UNAUTHENTICATED);
    assert.match(e.message, /^Token introspection requires a client certificate/);
  });

  it('must be a boolean', () => {
    const e = thrown(() => parseClientPolicy(JSON.stringify({ version: 1, clients: { a: { introspect: 'yes' } } }), 'p.json'));
    assert.equal(e.code, ErrorCodes.CONFIG);
    assert.match(e.message, /\$\.clients\.a\.introspect: /);
  });
});
