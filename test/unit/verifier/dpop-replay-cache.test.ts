import assert from 'node:assert/strict';
import { MemoryDpopReplayCache } from '../../../src/verifier/dpop-replay-cache.js';

describe('MemoryDpopReplayCache (bounded DPoP replay protection)', () => {
  const T0 = 1_800_000_000_000;

  it('an id is fresh once, then a replay until its window ends, then forgotten', () => {
    const c = new MemoryDpopReplayCache();
    assert.equal(c.claim('a', T0 + 60_000, T0), 'fresh');
    assert.equal(c.claim('a', T0 + 60_000, T0 + 1), 'replayed');
    assert.equal(c.claim('a', T0 + 60_000, T0 + 59_999), 'replayed');
    assert.equal(c.claim('b', T0 + 120_000, T0 + 60_000), 'fresh');
    assert.equal(c.size, 1, 'a was dropped when its window ended');
    assert.deepEqual(c.stats(), { size: 1, maxEntries: 200_000, refusedFull: 0, replays: 2 });
  });

  it('memory holds only ids whose window is open: 10 000 claims spread over 10 minutes never exceed one window of them', () => {
    const c = new MemoryDpopReplayCache();
    let most = 0;
    for (let i = 0; i < 10_000; i++) {
      const now = T0 + i * 60; // one claim every 60 ms
      assert.equal(c.claim(`id-${i}`, now + 60_000, now), 'fresh');
      most = Math.max(most, c.size);
    }
    // 60 s / 60 ms = 1000 open windows, plus at most a second's worth not yet pruned.
    assert.ok(most <= 1000 + 17 + 1, `held ${most}`);
    c.prune(T0 + 10_000 * 60 + 61_000);
    assert.equal(c.size, 0);
  });

  it('when full it refuses new ids (never evicting unexpired ones) and accepts again once entries expire', () => {
    const c = new MemoryDpopReplayCache({ maxEntries: 3 });
    for (const id of ['a', 'b', 'c']) assert.equal(c.claim(id, T0 + 10_000, T0), 'fresh');
    assert.equal(c.claim('d', T0 + 10_000, T0), 'full');
    assert.equal(c.claim('a', T0 + 10_000, T0), 'replayed', 'a full cache still knows its ids');
    assert.equal(c.stats().refusedFull, 1);
    assert.equal(c.claim('d', T0 + 20_000, T0 + 10_000), 'fresh');
    assert.equal(c.size, 1);
  });

  it('an id claimed again after its window (a new proof reusing it) is held for its new window', () => {
    const c = new MemoryDpopReplayCache();
    assert.equal(c.claim('a', T0 + 1000, T0), 'fresh');
    assert.equal(c.claim('a', T0 + 5000, T0 + 1000), 'fresh');
    c.prune(T0 + 2500);
    assert.equal(c.claim('a', T0 + 5000, T0 + 2500), 'replayed', 'the old bucket did not drop the renewed entry');
  });

  it('an id whose window already ended is not stored', () => {
    const c = new MemoryDpopReplayCache();
    assert.equal(c.claim('late', T0, T0), 'fresh');
    assert.equal(c.size, 0);
  });

  it('refuses a nonsensical bound', () => {
    assert.throws(() => new MemoryDpopReplayCache({ maxEntries: 0 }), /positive integer/);
  });
});
