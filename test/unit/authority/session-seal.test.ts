import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSessionSeal, type SealedSession } from '../../../src/authority/session-seal.js';
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
