import assert from 'node:assert/strict';
import { callerFrom, principalOf, type Caller } from '../../../src/grpc/caller.js';

describe('principalOf: the transport-neutral principal of a gRPC caller', () => {
  it('carries the peer, the address, loopback and the typed identities of a verified certificate', () => {
    const caller = callerFrom('[::ffff:10.0.0.9]:4000', '10.0.0.9', { subjectaltname: 'DNS:login.corp, URI:spiffe://corp/login', subject: { CN: 'ignored' } });
    assert.deepEqual(principalOf(caller), {
      peer: '[::ffff:10.0.0.9]:4000',
      address: '10.0.0.9',
      loopback: false,
      identities: [
        { kind: 'uri', value: 'spiffe://corp/login' },
        { kind: 'dns', value: 'login.corp' },
      ],
    });
    assert.deepEqual(principalOf(callerFrom('127.0.0.1:5', '127.0.0.1', undefined)), { peer: '127.0.0.1:5', address: '127.0.0.1', loopback: true, identities: [] });
  });

  it('a hand-built caller: address from the peer, identity kinds inferred', () => {
    const caller: Caller = { peer: '::1:45678', loopback: true, identities: ['spiffe://corp/a', 'b.corp'] };
    assert.deepEqual(principalOf(caller), {
      peer: '::1:45678',
      address: '::1',
      loopback: true,
      identities: [
        { kind: 'uri', value: 'spiffe://corp/a' },
        { kind: 'dns', value: 'b.corp' },
      ],
    });
  });
});
