import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { hashRefreshToken, newRefreshToken } from '../../../src/authority/opaque-tokens.js';
import { createRefreshIntegrity } from '../../../src/authority/refresh-integrity.js';

describe('refresh-token record integrity (keys and proofs)', () => {
  const secret = { id: 'file', secret: randomBytes(32) };
  const ri = createRefreshIntegrity(secret);

  it('keys a token by an HMAC: not its SHA-256, stable, and different under another secret', () => {
    const token = newRefreshToken();
    const [key] = ri.keys(token);
    assert.match(key!, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(key, hashRefreshToken(token));
    assert.deepEqual(ri.keys(token), [key]);
    assert.notEqual(createRefreshIntegrity({ id: 'other', secret: randomBytes(32) }).keys(token)[0], key);
  });

  it('a live proof holds only for the key, session, expiry and issue time it was made for', () => {
    const proof = ri.liveProof('k1', 'sid-1', 2000, 1000);
    assert.equal(ri.checkLive('k1', 'sid-1', 2000, 1000, proof), true);
    assert.equal(ri.checkLive('k2', 'sid-1', 2000, 1000, proof), false);
    assert.equal(ri.checkLive('k1', 'sid-2', 2000, 1000, proof), false);
    assert.equal(ri.checkLive('k1', 'sid-1', 2001, 1000, proof), false);
    assert.equal(ri.checkLive('k1', 'sid-1', 2000, 1001, proof), false);
    assert.equal(ri.checkLive('k1', 'sid-1', 2000, 1000, undefined), false);
    assert.equal(ri.checkLive('k1', 'sid-1', 2000, 1000, 'garbage'), false);
  });

  it('a grace proof is not a live proof (and the other way round), and binds session, successor and spentAt', () => {
    const grace = ri.graceProof('k1', 'sid-1', 'k2', 1500);
    assert.equal(ri.checkGrace('k1', 'sid-1', 'k2', 1500, grace), true);
    assert.equal(ri.checkGrace('k1', 'sid-2', 'k2', 1500, grace), false, 'bound to its session');
    assert.equal(ri.checkGrace('k1', 'sid-1', 'k3', 1500, grace), false);
    assert.equal(ri.checkGrace('k1', 'sid-1', 'k2', 9999, grace), false);
    assert.equal(ri.checkLive('k1', 'sid-1', 1500, 0, grace), false);
    assert.equal(ri.checkGrace('k1', 'sid-1', 'k2', 2000, ri.liveProof('k1', 'sid-1', 2000, 1000)), false);
  });

  it('after a secret rotation, older keys are still computed and older proofs still check', () => {
    const rotated = createRefreshIntegrity({ id: 'new', secret: randomBytes(32) }, [secret]);
    const token = newRefreshToken();
    assert.equal(rotated.keys(token)[1], ri.keys(token)[0]);
    assert.equal(rotated.checkLive('k1', 's', 2, 1, ri.liveProof('k1', 's', 2, 1)), true);
    assert.match(rotated.liveProof('k1', 's', 2, 1), /^p1\.new\./);
  });
});
