import assert from 'node:assert/strict';
import { createPropagationTracker } from '../../../src/authority/propagation.js';
import { MemoryTokenStore } from '../../../src/store/memory-token-store.js';
import { ErrorCodes, TokenAuthorityError } from '../../../src/shared/errors.js';

describe('PropagationTracker (GetPropagation)', () => {
  it('answers from receipts, waits for enough verifiers, and caps how many calls wait at once', async () => {
    const store = new MemoryTokenStore({ retentionMs: 60_000 });
    try {
      const tracker = createPropagationTracker(store, { pollMs: 1, maxWaiting: 1 });
      await store.reportApplied('a', 5, 10_000);
      await store.reportApplied('b', 3, 10_000);
      const now = await tracker.query(4, 0, 0);
      assert.equal(now.appliedCount, 1);
      assert.deepEqual(now.verifiers.map((v) => v.instanceId).sort(), ['a', 'b']);
      const waiting = tracker.query(4, 2, 5000);
      await assert.rejects(tracker.query(4, 2, 5000), (e: unknown) => e instanceof TokenAuthorityError && e.code === ErrorCodes.RATE_LIMITED);
      await store.reportApplied('b', 4, 10_000);
      assert.equal((await waiting).appliedCount, 2, 'the waiting call returns as soon as enough verifiers report');
      assert.equal((await tracker.query(4, 3, 20)).appliedCount, 2, 'a wait that cannot be met ends at its deadline');
    } finally {
      await store.close();
    }
  });
});
