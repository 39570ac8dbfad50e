import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { VerifiedClaims } from '../../../src/shared/claims.js';
import type { RevocationEvent, RevocationTargetKind } from '../../../src/shared/revocation-event.js';
import { RevocationState } from '../../../src/verifier/revocation-state.js';

const T0 = Date.UTC(2030, 0, 1);
let seq = 0;

function ev(kind: RevocationTargetKind, id: string, until: number, gen?: number): RevocationEvent {
  return { v: 1, type: 'rev', seq: ++seq, kind, id, until, at: T0, ...(gen === undefined ? {} : { gen }) };
}

function claims(over: Partial<VerifiedClaims> = {}): VerifiedClaims {
  return {
    issuer: 'https://issuer.test', subject: 'alice', audience: ['api'], scopes: [], issuedAt: T0 / 1000, notBefore: T0 / 1000,
    expiresAt: T0 / 1000 + 900, tokenId: 'jti-1', sessionId: 'sid-1', generation: 3, keyId: 'k', extra: {}, ...over,
  };
}

describe('RevocationState', () => {
  it('revokes a token by jti while its entry lives (until inclusive)', () => {
    const s = new RevocationState();
    s.apply(ev('jti', 'jti-1', T0 + 1000));
    assert.equal(s.isRevoked(claims(), T0), true);
    assert.equal(s.isRevoked(claims(), T0 + 1000), true);
    assert.equal(s.isRevoked(claims(), T0 + 1001), false);
    assert.equal(s.isRevoked(claims({ tokenId: 'jti-2' }), T0), false);
    assert.deepEqual(s.stats(), { jti: 1, sid: 0, sub: 0 });
  });

  it('revokes every token of a session by sid', () => {
    const s = new RevocationState();
    s.apply(ev('sid', 'sid-1', T0 + 1000));
    assert.equal(s.isRevoked(claims({ tokenId: 'a' }), T0), true);
    assert.equal(s.isRevoked(claims({ tokenId: 'b' }), T0), true);
    assert.equal(s.isRevoked(claims({ sessionId: 'sid-2' }), T0), false);
    // A jti that equals a revoked sid is not confused with it.
    assert.equal(s.isRevoked(claims({ tokenId: 'sid-1', sessionId: 'x' }), T0), false);
  });

  it('revokes a subject’s tokens below the generation, sparing gen >= g', () => {
    const s = new RevocationState();
    s.apply(ev('sub', 'alice', T0 + 1000, 5));
    assert.equal(s.isRevoked(claims({ generation: 0 }), T0), true);
    assert.equal(s.isRevoked(claims({ generation: 4 }), T0), true);
    assert.equal(s.isRevoked(claims({ generation: 5 }), T0), false);
    assert.equal(s.isRevoked(claims({ generation: 6 }), T0), false);
    assert.equal(s.isRevoked(claims({ subject: 'bob', generation: 0 }), T0), false);
    assert.equal(s.isRevoked(claims({ generation: 4 }), T0 + 1001), false, 'a dead entry revokes nothing');
  });

  it('keeps the highest generation and the latest until, in any order', () => {
    const s = new RevocationState();
    s.apply(ev('sub', 'alice', T0 + 5000, 7));
    s.apply(ev('sub', 'alice', T0 + 1000, 5)); // older event replayed late
    assert.equal(s.isRevoked(claims({ generation: 6 }), T0), true);
    assert.equal(s.isRevoked(claims({ generation: 6 }), T0 + 4000), true);
    s.apply(ev('sub', 'alice', T0 + 2000, 9)); // higher gen, earlier until: both maxima kept
    assert.equal(s.isRevoked(claims({ generation: 8 }), T0 + 4000), true);
    assert.equal(s.size, 1);
  });

  it('is idempotent: replaying events changes nothing', () => {
    const s = new RevocationState();
    const events = [ev('jti', 'j', T0 + 3000), ev('sid', 's', T0 + 2000), ev('sub', 'u', T0 + 4000, 2)];
    for (const e of events) s.apply(e);
    const before = s.stats();
    for (let i = 0; i < 3; i++) for (const e of events) s.apply({ ...e });
    s.apply(ev('jti', 'j', T0 + 1000)); // older until for the same jti
    assert.deepEqual(s.stats(), before);
    assert.equal(s.isRevoked(claims({ tokenId: 'j' }), T0 + 2500), true, 'the later until wins');
    assert.equal(s.prune(T0 + 10_000), 3, 'each entry is dropped once, however often it was applied');
    assert.equal(s.size, 0);
  });

  it('prunes entries whose until has passed, and only those', () => {
    const s = new RevocationState();
    s.apply(ev('jti', 'a', T0 + 1000));
    s.apply(ev('jti', 'b', T0 + 1500)); // a, b and c share one expiry-queue second
    s.apply(ev('jti', 'c', T0 + 1999));
    s.apply(ev('sid', 'd', T0 + 1000));
    s.apply(ev('sub', 'alice', T0 + 1200, 4));
    assert.equal(s.prune(T0 + 1000), 0, 'until == now still lives');
    assert.equal(s.prune(T0 + 1001), 2);
    assert.deepEqual(s.stats(), { jti: 2, sid: 0, sub: 1 });
    assert.equal(s.prune(T0 + 1001), 0);
    assert.equal(s.prune(T0 + 1600), 2, 'b and the subject go; c, later in the same second, stays');
    assert.deepEqual(s.stats(), { jti: 1, sid: 0, sub: 0 });
    assert.equal(s.isRevoked(claims({ tokenId: 'c' }), T0 + 1600), true);
    assert.equal(s.prune(T0 + 60_000), 1);
    assert.equal(s.size, 0);
  });

  it('does not drop an entry early after its until was extended', () => {
    const s = new RevocationState();
    s.apply(ev('jti', 'a', T0 + 1000));
    s.apply(ev('jti', 'a', T0 + 9000));
    assert.equal(s.prune(T0 + 5000), 0);
    assert.equal(s.isRevoked(claims({ tokenId: 'a' }), T0 + 5000), true);
    assert.equal(s.prune(T0 + 9001), 1);
  });

  it('forgets a pruned subject generation entirely', () => {
    const s = new RevocationState();
    s.apply(ev('sub', 'alice', T0 + 1000, 9));
    s.prune(T0 + 2000);
    s.apply(ev('sub', 'alice', T0 + 5000, 2)); // a fresh, lower generation after the old one died
    assert.equal(s.isRevoked(claims({ generation: 3 }), T0 + 3000), false);
    assert.equal(s.isRevoked(claims({ generation: 1 }), T0 + 3000), true);
  });

  it('ignores events that are not well-formed', () => {
    const s = new RevocationState();
    const bad = [
      { ...ev('sub', 'alice', T0 + 1000) }, // no gen
      ev('sub', 'alice', T0 + 1000, -1),
      ev('sub', 'alice', T0 + 1000, 1.5),
      ev('jti', '', T0 + 1000),
      ev('jti', 'x', Number.NaN),
      ev('jti', 'x', Number.POSITIVE_INFINITY),
      { ...ev('jti', 'x', T0 + 1000), kind: 'user' as RevocationTargetKind },
      { ...ev('jti', 'x', T0 + 1000), id: 5 as unknown as string },
    ];
    for (const e of bad) s.apply(e);
    assert.equal(s.size, 0);
  });

  it('clear forgets everything', () => {
    const s = new RevocationState();
    s.apply(ev('jti', 'a', T0 + 1000));
    s.apply(ev('sub', 'alice', T0 + 1000, 5));
    s.clear();
    assert.equal(s.size, 0);
    assert.equal(s.isRevoked(claims({ tokenId: 'a', generation: 0 }), T0), false);
    s.apply(ev('jti', 'a', T0 + 1000));
    assert.equal(s.prune(T0 + 2000), 1);
  });

  it('behaves like a plain map of maxima under any sequence of apply and prune (property)', () => {
    const ids = ['a', 'b', 'c', 'd'];
    const kinds: RevocationTargetKind[] = ['jti', 'sid', 'sub'];
    const op = fc.oneof(
      fc.record({ op: fc.constant('apply' as const), kind: fc.constantFrom(...kinds), id: fc.constantFrom(...ids), until: fc.integer({ min: 0, max: 5000 }), gen: fc.integer({ min: 0, max: 5 }) }),
      fc.record({ op: fc.constant('prune' as const), advance: fc.integer({ min: 0, max: 1500 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const s = new RevocationState();
        const model = { jti: new Map<string, number>(), sid: new Map<string, number>(), sub: new Map<string, { gen: number; until: number }>() };
        let now = T0;
        for (const o of ops) {
          if (o.op === 'apply') {
            const until = T0 + o.until;
            s.apply(ev(o.kind, o.id, until, o.kind === 'sub' ? o.gen : undefined));
            if (o.kind === 'sub') {
              const cur = model.sub.get(o.id);
              model.sub.set(o.id, { gen: Math.max(cur?.gen ?? -1, o.gen), until: Math.max(cur?.until ?? -Infinity, until) });
            } else {
              model[o.kind].set(o.id, Math.max(model[o.kind].get(o.id) ?? -Infinity, until));
            }
          } else {
            now += o.advance;
            let expected = 0;
            for (const m of [model.jti, model.sid]) for (const [id, u] of m) if (u < now) { m.delete(id); expected++; }
            for (const [id, e] of model.sub) if (e.until < now) { model.sub.delete(id); expected++; }
            assert.equal(s.prune(now), expected);
          }
          assert.deepEqual(s.stats(), { jti: model.jti.size, sid: model.sid.size, sub: model.sub.size });
          for (const id of ids) {
            for (const gen of [0, 3, 6]) {
              const c = claims({ tokenId: id, sessionId: id, subject: id, generation: gen });
              const sub = model.sub.get(id);
              const want = (model.jti.get(id) ?? -Infinity) >= now || (model.sid.get(id) ?? -Infinity) >= now ||
                (sub !== undefined && gen < sub.gen && sub.until >= now);
              assert.equal(s.isRevoked(c, now), want);
            }
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
