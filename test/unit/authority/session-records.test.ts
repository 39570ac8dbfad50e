import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createRefreshIntegrity, createSessionSeal, hashRefreshToken, newRefreshToken, type SealedSession } from '../../../src/authority/session-records.js';
import type { SessionConstraints } from '../../../src/store/token-store.js';

describe('session seal: open() returns only what the seal covers', () => {
  const current = { id: 'k2', secret: randomBytes(32) };
  const older = { id: 'k1', secret: randomBytes(32) };
  const seal = createSessionSeal(current, [older]);
  const session: SealedSession = {
    sessionId: 's1',
    subject: 'alice',
    audience: ['orders'],
    scopes: ['read'],
    extra: { tenant: 'acme', client_id: 'web' },
    absoluteExpiresAt: 2_000_000,
    createdAt: 1_000_000,
    constraints: { maxAccessTtlMs: 600_000, confirmation: { jkt: Buffer.alloc(32, 3).toString('base64url') } },
  };
  const stored = (over: Partial<SealedSession> = {}, s = seal.seal(session)) => ({ ...session, audience: [...session.audience], scopes: [...session.scopes], ...over, seal: s });

  it('opens what it sealed, whatever the order of keys in extra and constraints', () => {
    assert.deepEqual(seal.open(stored()), session);
    const reordered = { confirmation: session.constraints.confirmation, maxAccessTtlMs: 600_000 } as SessionConstraints;
    assert.deepEqual(seal.open(stored({ extra: { client_id: 'web', tenant: 'acme' }, constraints: reordered }))?.constraints, reordered);
  });

  it('opens a seal made under an older secret (KEK rotation), not one under an unknown secret', () => {
    const old = createSessionSeal(older);
    assert.ok(seal.open(stored({}, old.seal(session))));
    const stranger = createSessionSeal({ id: 'k1', secret: randomBytes(32) });
    assert.equal(seal.open(stored({}, stranger.seal(session))), undefined);
  });

  it('refuses any change to a covered field, including a constraint turned into a look-alike array', () => {
    const changes: Array<Partial<SealedSession>> = [
      { sessionId: 's2' },
      { subject: 'mallory' },
      { audience: ['orders', 'billing'] },
      { scopes: ['read', 'admin'] },
      { extra: { tenant: 'acme' } },
      { absoluteExpiresAt: 3_000_000 },
      { createdAt: 1_000_001 },
      { constraints: { maxAccessTtlMs: 600_000 } },
      { constraints: {} },
      { constraints: [['confirmation', session.constraints.confirmation], ['maxAccessTtlMs', 600_000]] as unknown as SessionConstraints },
    ];
    for (const change of changes) assert.equal(seal.open(stored(change)), undefined, JSON.stringify(change));
    assert.equal(seal.open({ ...stored(), seal: undefined }), undefined, 'no seal at all');
  });
});

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
