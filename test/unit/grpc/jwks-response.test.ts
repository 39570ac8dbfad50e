import assert from 'node:assert/strict';
import { jwksResponse } from '../../../src/grpc/jwks-response.js';
import { KeyManager } from '../../../src/keys/key-manager.js';
import { MemoryKeyStore } from '../../../src/keys/memory-key-store.js';

describe('GetJwks: one mapping for the authority and the sidecar (grpc/jwks-response.ts)', () => {
  it('gives the same answer from parsed keys (the authority) and from the served JSON (a sidecar), kid and alg per key', async () => {
    const keys = new KeyManager({ store: new MemoryKeyStore(), algorithm: 'ES256', rotationIntervalMs: 0, retainMs: 60_000 });
    await keys.start();
    try {
      await keys.rotate();
      const authority = jwksResponse(keys.jwksJson(), keys.jwks().keys);
      const sidecar = jwksResponse(keys.jwksJson());
      assert.deepEqual(sidecar, authority);
      assert.equal(authority.jwksJson, keys.jwksJson());
      assert.deepEqual(authority.keys.map((k) => k.keyId), keys.jwks().keys.map((k) => k.kid));
      assert.ok(authority.keys.length >= 2);
      for (const k of authority.keys) {
        assert.equal(k.algorithm, 'ES256');
        assert.deepEqual(JSON.parse(k.jwkJson), keys.jwks().keys.find((j) => j.kid === k.keyId));
      }
    } finally {
      await keys.stop();
    }
  });

  it('answers an empty key list and a key without alg without throwing', () => {
    assert.deepEqual(jwksResponse('{"keys":[]}'), { jwksJson: '{"keys":[]}', keys: [] });
    assert.deepEqual(jwksResponse('{"keys":[{"kid":"a","kty":"OKP"}]}').keys, [{ keyId: 'a', algorithm: '', jwkJson: '{"kid":"a","kty":"OKP"}' }]);
  });
});
