import assert from 'node:assert/strict';
import { ManualClock } from '../../../src/shared/clock.js';
import { MAX_FEED_MESSAGE_LENGTH, parseFeedMessage, type FeedMessage, type RevocationEvent } from '../../../src/shared/revocation-event.js';
import { MemoryTokenStore } from '../../../src/store/memory-token-store.js';
import type { FeedListener, RevocationSource } from '../../../src/verifier/revocation-source.js';
import { RevocationState } from '../../../src/verifier/revocation-state.js';
import { RevocationSync, type LostRevocation, type RevocationSyncOptions } from '../../../src/verifier/revocation-sync.js';
import { recordingLogger } from '../../helpers/recording-logger.js';

async function settle(): Promise<void> {
  for (let i = 0; i < 30; i++) await new Promise((r) => setImmediate(r));
}

const claims = (o: { jti?: string; sid?: string; sub?: string; gen?: number }) =>
  ({ tokenId: o.jti ?? 'none', sessionId: o.sid ?? 'none', subject: o.sub ?? 'none', generation: o.gen ?? 0 }) as never;

/**
 * A memory store as the log, a feed the test can also publish on (a PUBLISH-only attacker), and a
 * `failover` that swaps in another store as the master (the new primary, which lost writes).
 */
function harness(opts: Partial<RevocationSyncOptions> = {}) {
  const clock = new ManualClock(Date.now());
  let master = new MemoryTokenStore({ retentionMs: 3_600_000, clock });
  const first = master;
  const reads: number[] = [];
  let listener: FeedListener | undefined;
  const source: RevocationSource = {
    readLog: (after, limit) => {
      reads.push(after);
      return master.readLog(after, limit);
    },
    async subscribe(l) {
      listener = l;
      return master.subscribe(l);
    },
  };
  const state = new RevocationState();
  const logger = recordingLogger();
  const sync = new RevocationSync({ source, state, clock, logger, ...opts });
  return {
    clock,
    state,
    sync,
    reads,
    logger,
    get store() {
      return master;
    },
    forge(m: Record<string, unknown>) {
      const parsed = parseFeedMessage(JSON.stringify(m));
      if (parsed) listener!.onMessage(parsed);
    },
    /** The new primary: a store holding only the first `keep` entries of the old log, its counter reset to match. */
    async failover(keep: number): Promise<MemoryTokenStore> {
      const next = new MemoryTokenStore({ retentionMs: 3_600_000, clock });
      const page = await master.readLog(0, 10_000);
      for (const e of page.events.slice(0, keep)) {
        await next.revoke(e.kind === 'sub' ? { kind: 'sub', id: e.id, until: e.until } : { kind: e.kind, id: e.id, until: e.until });
      }
      master = next;
      await next.subscribe(listener!);
      return next;
    },
    async close() {
      await sync.stop();
      await first.close();
      if (master !== first) await master.close();
    },
  };
}

describe('RevocationSync against a forged feed and a log that goes back', () => {
  it('M4: a forged event with seq = head+1 and the next heartbeat do not make the verifier re-read the whole log', async () => {
    const h = harness();
    await h.sync.start(1000);
    for (let i = 0; i < 5; i++) await h.store.revoke({ kind: 'jti', id: `t${i}`, until: h.clock.nowMs() + 60_000 });
    await h.store.heartbeat();
    await settle();
    const readsBefore = h.reads.length;
    h.forge({ v: 1, type: 'rev', seq: 6, kind: 'jti', id: 'forged', until: h.clock.nowMs() + 60_000, at: h.clock.nowMs() });
    await h.store.heartbeat();
    await settle();
    await h.store.heartbeat();
    await settle();
    const later = h.reads.slice(readsBefore);
    assert.ok(later.length > 0, 'the forged event is checked against the log');
    assert.ok(later.every((after) => after >= 4), `only incremental reads (after ${later.join(', ')}), no full re-read from 0`);
    assert.equal(h.sync.status().fullReloads, 0);
    assert.equal(h.logger.lines.filter((r) => r.level === 'error').length, 0, 'no "log went back" error');
    assert.equal(h.sync.status().appliedSeq, 5, 'the forged sequence is not counted as applied');
    assert.equal(h.state.isRevoked(claims({ jti: 'forged' }), h.clock.nowMs()), false, 'the unconfirmed forged entry was undone');
    assert.equal(h.state.isRevoked(claims({ jti: 't4' }), h.clock.nowMs()), true);
    await h.close();
  });

  it('M5: a forged message cannot hide a real revocation that claims the same sequence', async () => {
    const h = harness();
    await h.sync.start(1000);
    await h.store.heartbeat();
    await settle();
    h.forge({ v: 1, type: 'rev', seq: 1, kind: 'jti', id: 'decoy', until: h.clock.nowMs() + 60_000, at: h.clock.nowMs() });
    await h.store.revoke({ kind: 'jti', id: 'real', until: h.clock.nowMs() + 60_000 });
    await settle();
    assert.equal(h.state.isRevoked(claims({ jti: 'real' }), h.clock.nowMs()), true, 'applied at once, before any log read');
    await h.store.heartbeat();
    await settle();
    assert.equal(h.state.isRevoked(claims({ jti: 'real' }), h.clock.nowMs()), true, 'kept: the log confirms it');
    assert.equal(h.state.isRevoked(claims({ jti: 'decoy' }), h.clock.nowMs()), false, 'undone: the log holds something else at seq 1');
    await h.close();
  });

  it('M5: unconfirmed live entries are capped and undone, `until` is clamped, a forgery never lowers a real entry', async () => {
    const h = harness({ maxUnconfirmed: 50, maxEntryLifetimeMs: 120_000 });
    await h.sync.start(1000);
    const realUntil = h.clock.nowMs() + 60_000;
    await h.store.revoke({ kind: 'sid', id: 'victim', until: realUntil });
    await h.store.heartbeat();
    await settle();
    for (let i = 0; i < 1000; i++) {
      h.forge({ v: 1, type: 'rev', seq: 1_000_000 + i, kind: 'jti', id: `f${i}-${'x'.repeat(200)}`, until: 8.64e15, at: 0 });
    }
    // Forged claims about a real entry: a far `until` is clamped, and undone back to the real one.
    h.forge({ v: 1, type: 'rev', seq: 2, kind: 'sid', id: 'victim', until: 8.64e15, at: 0 });
    assert.ok(h.state.size <= 51, `at most maxUnconfirmed live entries held (${h.state.size})`);
    for (const [kind, id] of [['jti', 'f0-' + 'x'.repeat(200)]] as const) {
      const e = h.state.get(kind, id);
      assert.ok(e && e.until <= h.clock.nowMs() + 120_000, 'until clamped to the verifier\'s bound');
    }
    await settle();
    await h.store.heartbeat();
    await settle();
    assert.equal(h.state.size, 1, 'only the real entry is left');
    assert.equal(h.state.get('sid', 'victim')?.until, realUntil, 'the real entry has its own until again');
    await h.close();
  });

  it('M5: oversized messages, ids and reasons are refused before they are held', () => {
    const base = { v: 1, type: 'rev', seq: 1, kind: 'jti', until: 1, at: 1 };
    assert.ok(parseFeedMessage(JSON.stringify({ ...base, id: 'a'.repeat(256) })));
    assert.equal(parseFeedMessage(JSON.stringify({ ...base, id: 'a'.repeat(257) })), undefined);
    assert.equal(parseFeedMessage(JSON.stringify({ ...base, id: 'a', reason: 'r'.repeat(129) })), undefined);
    assert.equal(parseFeedMessage(JSON.stringify({ ...base, id: 'a', pad: 'p'.repeat(MAX_FEED_MESSAGE_LENGTH) })), undefined);
    assert.equal(parseFeedMessage(JSON.stringify({ ...base, id: 'a', until: 'soon' })), undefined);
  });

  it('L7: a heartbeat with a huge seq pins neither the head nor the lag; a verifier starting meanwhile becomes fresh', async () => {
    const h = harness();
    await h.store.revoke({ kind: 'jti', id: 't', until: h.clock.nowMs() + 60_000 });
    const started = h.sync.start(1000);
    h.forge({ v: 1, type: 'hb', seq: 9_000_000_000_000, at: 0 });
    await started;
    await settle();
    h.forge({ v: 1, type: 'hb', seq: 9_000_000_000_000, at: 0 });
    await settle();
    const s = h.sync.status();
    assert.equal(s.synced, true);
    assert.equal(s.headSeq, 1, 'the head is what the log says');
    assert.equal(s.lag, 0);
    assert.ok(s.ageMs < 1000, 'fresh');
    await h.close();
  });

  it('fresh means complete: after a failover that reused lost sequence numbers, the new entries at those numbers are applied', async () => {
    const h = harness();
    await h.sync.start(1000);
    for (let i = 0; i < 6; i++) await h.store.revoke({ kind: 'jti', id: `old${i}`, until: h.clock.nowMs() + 60_000 });
    await h.store.heartbeat();
    await settle();
    assert.equal(h.sync.status().appliedSeq, 6);
    // The new primary kept 3 entries, then handed out 4..8 again, to other revocations.
    const next = await h.failover(3);
    for (let i = 0; i < 5; i++) await next.revoke({ kind: 'jti', id: `new${i}`, until: h.clock.nowMs() + 60_000 });
    await next.heartbeat();
    await settle();
    for (let i = 0; i < 5; i++) assert.equal(h.state.isRevoked(claims({ jti: `new${i}` }), h.clock.nowMs()), true, `new${i} (a reused sequence) applied`);
    for (let i = 0; i < 6; i++) assert.equal(h.state.isRevoked(claims({ jti: `old${i}` }), h.clock.nowMs()), true, `old${i} kept`);
    assert.equal(h.sync.status().fullReloads, 1);
    assert.equal(h.sync.status().appliedSeq, 8);
    await h.close();
  });

  it('after the log went back, hands over what it holds that the log lacks — never what only a forged message said', async () => {
    const lost: LostRevocation[][] = [];
    const h = harness({ onLostRevocations: (l) => lost.push(l) });
    await h.sync.start(1000);
    const until = h.clock.nowMs() + 60_000;
    await h.store.revoke({ kind: 'jti', id: 'kept', until });
    await h.store.revoke({ kind: 'sid', id: 'lost-sid', until });
    await h.store.revoke({ kind: 'sub', id: 'lost-sub', until });
    await h.store.heartbeat();
    await settle();
    // Acknowledged by the old master after the log read, applied locally by the authority, lost too.
    const local: RevocationEvent = { v: 1, type: 'rev', seq: 4, kind: 'jti', id: 'lost-local', until, at: h.clock.nowMs() };
    h.sync.applyLocal(local);
    h.forge({ v: 1, type: 'rev', seq: 5, kind: 'jti', id: 'forged', until, at: h.clock.nowMs() });
    const next = await h.failover(1);
    await next.heartbeat();
    await settle();
    assert.equal(lost.length, 1);
    const got = lost[0]!.map((l) => `${l.kind}:${l.id}${l.gen !== undefined ? `@${l.gen}` : ''}`).sort();
    assert.deepEqual(got, ['jti:lost-local', 'sid:lost-sid', 'sub:lost-sub@1']);
    assert.ok(h.sync.status().ageMs < 1000, 'fresh again once the log was re-read');
    await h.close();
  });

  it('full reloads are rate-limited, and the state is not fresh while one waits', async () => {
    const h = harness({ minFullReloadIntervalMs: 60_000 });
    await h.sync.start(1000);
    for (let i = 0; i < 4; i++) await h.store.revoke({ kind: 'jti', id: `a${i}`, until: h.clock.nowMs() + 600_000 });
    await h.store.heartbeat();
    await settle();
    let next = await h.failover(2);
    await next.heartbeat();
    await settle();
    assert.equal(h.sync.status().fullReloads, 1);
    for (let i = 0; i < 4; i++) await next.revoke({ kind: 'jti', id: `b${i}`, until: h.clock.nowMs() + 600_000 });
    await next.heartbeat();
    await settle();
    next = await h.failover(1);
    h.clock.advance(1000);
    await next.heartbeat();
    await settle();
    assert.equal(h.sync.status().fullReloads, 1, 'the second one waits');
    assert.ok(h.sync.status().ageMs >= 1000, 'not fresh while the log is known to have gone back');
    await h.close();
  });
});

describe('RevocationSync: reading a large log ahead', () => {
  it('reads each page of a contiguous log once, two pages ahead, and loads every entry', async () => {
    const h = harness({ pageSize: 10 });
    for (let i = 0; i < 95; i++) await h.store.revoke({ kind: 'jti', id: `j${i}`, until: h.clock.nowMs() + 60_000 });
    await h.sync.start(1000);
    assert.equal(h.state.stats().jti, 95);
    assert.equal(h.sync.status().appliedSeq, 95);
    // Pages start after 0, 10, …, 90: each asked for exactly once (the guessed ones were right).
    assert.deepEqual([...h.reads].sort((a, b) => a - b), [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
    await h.close();
  });

  it('reads again where a guessed page does not start where the load is (a hole trimmed into the log)', async () => {
    const h = harness({ pageSize: 10 });
    for (let i = 0; i < 45; i++) await h.store.revoke({ kind: 'jti', id: `j${i}`, until: h.clock.nowMs() + 60_000 });
    // A source whose log lacks sequences 15–17 (trimmed), so page 2 ends at 23 instead of 20 and
    // the page guessed after 20 is not used.
    const source: RevocationSource = {
      readLog: async (after, limit) => {
        h.reads.push(after);
        const all = await h.store.readLog(after, 100);
        const events = all.events.filter((e) => e.seq < 15 || e.seq > 17).slice(0, limit);
        return { events, headSeq: all.headSeq };
      },
      subscribe: (l) => h.store.subscribe(l),
    };
    const state = new RevocationState();
    const sync = new RevocationSync({ source, state, clock: h.clock, logger: recordingLogger(), pageSize: 10 });
    await sync.start(1000);
    assert.equal(state.stats().jti, 42, 'every entry the log holds');
    assert.equal(sync.status().appliedSeq, 45);
    for (const seq of [0, 10, 23, 33, 43]) assert.ok(h.reads.includes(seq), `a page after ${seq} was read (reads: ${h.reads.join(', ')})`);
    await sync.stop();
    await h.close();
  });
});
