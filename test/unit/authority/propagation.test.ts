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

describe('PropagationTracker: cancellation, deadlines, one shared poller, per-caller cap', () => {
  let store: MemoryTokenStore;
  beforeEach(() => {
    store = new MemoryTokenStore({ retentionMs: 60_000 });
  });
  afterEach(() => store.close());

  it('frees a slot the moment its call is cancelled, answering with what it has', async () => {
    const tracker = createPropagationTracker(store, { pollMs: 1, maxWaiting: 1 });
    const cancel = new AbortController();
    const waiting = tracker.query(1, 1, 30_000, { signal: cancel.signal });
    await eventuallyWaiting(tracker, 1);
    cancel.abort();
    assert.equal((await waiting).appliedCount, 0);
    assert.equal(tracker.waiting, 0);
    // The slot is free: another call may wait (and is answered when a verifier reports).
    const next = tracker.query(1, 1, 30_000);
    await store.reportApplied('a', 1, 10_000);
    assert.equal((await next).appliedCount, 1);
  });

  it('does not wait at all for a call already cancelled', async () => {
    const cancel = new AbortController();
    cancel.abort();
    const tracker = createPropagationTracker(store, { pollMs: 1 });
    assert.equal((await tracker.query(1, 1, 30_000, { signal: cancel.signal })).appliedCount, 0);
    assert.equal(tracker.waiting, 0);
  });

  it('ends a wait just before the call deadline, not at wait_ms', async () => {
    const tracker = createPropagationTracker(store, { pollMs: 1 });
    const started = Date.now();
    await tracker.query(1, 1, 30_000, { deadlineMs: Date.now() + 60 });
    const took = Date.now() - started;
    assert.ok(took < 1000, `ended after ${took} ms`);
    assert.equal(tracker.waiting, 0);
  });

  it('reads the store once per poll interval, however many calls wait', async () => {
    let reads = 0;
    let onRead: (() => void) | undefined;
    const listApplied = store.listApplied.bind(store);
    store.listApplied = async () => {
      reads++;
      onRead?.();
      return listApplied();
    };
    const tracker = createPropagationTracker(store, { pollMs: 20, maxWaiting: 64, maxWaitingPerCaller: 64 });
    const calls = Array.from({ length: 40 }, () => tracker.query(1, 1, 30_000));
    await eventuallyWaiting(tracker, 40);
    const initial = reads; // one read each, before waiting
    // Three poll ticks later…
    for (let i = 0; i < 3; i++) await new Promise<void>((r) => (onRead = r));
    assert.ok(reads - initial <= 3, `${reads - initial} reads in 3 poll intervals for 40 waiting calls`);
    await store.reportApplied('a', 1, 10_000);
    for (const a of await Promise.all(calls)) assert.equal(a.appliedCount, 1);
    assert.equal(tracker.waiting, 0);
  });

  it('caps the calls one caller may have waiting, and frees them as they end', async () => {
    const tracker = createPropagationTracker(store, { pollMs: 1, maxWaiting: 64, maxWaitingPerCaller: 2 });
    const cancel = new AbortController();
    const a = [tracker.query(1, 1, 30_000, { caller: 'ip:10.0.0.1', signal: cancel.signal }), tracker.query(1, 1, 30_000, { caller: 'ip:10.0.0.1', signal: cancel.signal })];
    await eventuallyWaiting(tracker, 2);
    await assert.rejects(tracker.query(1, 1, 30_000, { caller: 'ip:10.0.0.1' }), (e: unknown) => e instanceof TokenAuthorityError && e.code === ErrorCodes.RATE_LIMITED && /this caller already has 2/.test(e.message));
    // Another caller is not affected.
    const other = tracker.query(1, 1, 30_000, { caller: 'ip:10.0.0.2' });
    cancel.abort();
    await Promise.all(a);
    const again = tracker.query(1, 1, 30_000, { caller: 'ip:10.0.0.1' });
    await store.reportApplied('v', 1, 10_000);
    assert.equal((await again).appliedCount, 1);
    assert.equal((await other).appliedCount, 1);
  });

  it('passes a store failure to every waiter', async () => {
    const tracker = createPropagationTracker(store, { pollMs: 1 });
    const w = tracker.query(1, 1, 30_000);
    await eventuallyWaiting(tracker, 1);
    store.listApplied = async () => {
      throw new TokenAuthorityError(ErrorCodes.STORE_UNAVAILABLE, 'down');
    };
    await assert.rejects(w, /down/);
    assert.equal(tracker.waiting, 0);
  });
});

/** The tracker's waiting count reaches n (it does once the first store reads have answered). */
async function eventuallyWaiting(tracker: { waiting: number }, n: number): Promise<void> {
  while (tracker.waiting < n) await new Promise((r) => setImmediate(r));
}
