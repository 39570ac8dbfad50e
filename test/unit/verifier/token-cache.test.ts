import assert from 'node:assert/strict';
import type { VerifiedClaims } from '../../../src/shared/claims.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { isTokenAuthorityError } from '../../../src/shared/errors.js';
import { TokenCache } from '../../../src/verifier/token-cache.js';

const T0 = Date.UTC(2030, 0, 1);
const T0_SEC = T0 / 1000;

function claimsFor(id: string, expiresAt = T0_SEC + 300): VerifiedClaims {
  return Object.freeze({
    issuer: 'https://issuer.test', subject: 'u', audience: ['api'], scopes: [], issuedAt: T0_SEC, notBefore: T0_SEC,
    expiresAt, tokenId: id, sessionId: 's', generation: 0, keyId: 'k', extra: {},
  });
}

describe('TokenCache', () => {
  it('returns what was set, and counts hits and misses', () => {
    const cache = new TokenCache({ capacity: 10, clock: new ManualClock(T0) });
    const c = claimsFor('a');
    assert.equal(cache.get('tok-a'), undefined);
    cache.set('tok-a', c);
    assert.equal(cache.get('tok-a'), c);
    assert.equal(cache.get('tok-a'), c);
    assert.equal(cache.get('tok-b'), undefined);
    assert.deepEqual(cache.stats(), { size: 1, hits: 2, misses: 2, evictions: 0, expirations: 0 });
  });

  it('never holds more than its capacity, counting evictions', () => {
    for (const capacity of [2, 3, 10, 101]) {
      const cache = new TokenCache({ capacity, clock: new ManualClock(T0) });
      for (let i = 0; i < 1000; i++) {
        cache.set(`tok-${i}`, claimsFor(String(i)));
        assert.ok(cache.size <= capacity, `size ${cache.size} > ${capacity}`);
      }
      const s = cache.stats();
      assert.equal(s.evictions, 1000 - s.size);
      assert.ok(s.size >= Math.floor(capacity / 2), 'keeps at least the most recent half');
      assert.ok(cache.get('tok-999'), 'the newest entry is kept');
      assert.equal(cache.get('tok-0'), undefined, 'the oldest entry is gone');
    }
  });

  it('keeps recently used entries over untouched ones (approximate LRU)', () => {
    const cache = new TokenCache({ capacity: 4, clock: new ManualClock(T0) });
    cache.set('a', claimsFor('a'));
    cache.set('b', claimsFor('b'));
    cache.set('c', claimsFor('c')); // a, b age
    assert.ok(cache.get('a')); // a is used again
    cache.set('d', claimsFor('d'));
    cache.set('e', claimsFor('e')); // the untouched b goes
    assert.equal(cache.get('b'), undefined);
    assert.ok(cache.get('a'));
    assert.ok(cache.get('e'));
  });

  it('re-setting a token replaces its claims without growing', () => {
    const cache = new TokenCache({ capacity: 4, clock: new ManualClock(T0) });
    cache.set('a', claimsFor('1'));
    cache.set('b', claimsFor('b'));
    cache.set('c', claimsFor('c')); // a now in the old generation
    const newer = claimsFor('2');
    cache.set('a', newer);
    assert.equal(cache.get('a'), newer);
    cache.set('a', claimsFor('3'));
    assert.equal(cache.get('a')?.tokenId, '3');
    assert.equal(cache.size, 3);
  });

  it('drops an entry once the token expires (exp plus skew)', () => {
    const clock = new ManualClock(T0);
    const cache = new TokenCache({ capacity: 10, clock, clockSkewSec: 5 });
    const c = claimsFor('a', T0_SEC + 10);
    cache.set('a', c);
    clock.set(T0 + 14_999);
    assert.equal(cache.get('a'), c);
    clock.set(T0 + 15_000);
    assert.equal(cache.get('a'), undefined);
    assert.equal(cache.size, 0);
    assert.deepEqual(cache.stats(), { size: 0, hits: 1, misses: 1, evictions: 0, expirations: 1 });
    // Also from the old generation.
    cache.set('b', claimsFor('b', T0_SEC + 100));
    for (let i = 0; i < 5; i++) cache.set(`f${i}`, claimsFor('f'));
    clock.set(T0 + 200_000);
    assert.equal(cache.get('b'), undefined);
    assert.equal(cache.stats().expirations, 2);
  });

  it('deletes and clears', () => {
    const cache = new TokenCache({ capacity: 4, clock: new ManualClock(T0) });
    cache.set('a', claimsFor('a'));
    cache.set('b', claimsFor('b'));
    cache.set('c', claimsFor('c'));
    assert.equal(cache.delete('a'), true); // from the old generation
    assert.equal(cache.delete('c'), true); // from the young one
    assert.equal(cache.delete('zz'), false);
    assert.equal(cache.get('a'), undefined);
    assert.equal(cache.size, 1);
    cache.clear();
    assert.equal(cache.size, 0);
    assert.equal(cache.get('b'), undefined);
  });

  it('capacity 0 disables it; capacity 1 and nonsense are refused', () => {
    const off = new TokenCache({ capacity: 0 });
    off.set('a', claimsFor('a'));
    assert.equal(off.get('a'), undefined);
    assert.equal(off.size, 0);
    for (const capacity of [1, -1, 2.5, Number.NaN]) {
      assert.throws(() => new TokenCache({ capacity }), (e) => isTokenAuthorityError(e) && e.code === 'ERR_INVALID_ARGUMENT');
    }
    assert.throws(() => new TokenCache({ clockSkewSec: -1 }), isTokenAuthorityError);
    const small = new TokenCache({ capacity: 2 });
    for (let i = 0; i < 10; i++) small.set(String(i), claimsFor(String(i)));
    assert.ok(small.size <= 2);
  });
});
