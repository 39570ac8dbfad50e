import assert from 'node:assert/strict';
import { loadConfig } from '../../../src/config/config.js';
import { fleetStatus, formatFleetStatus, humanDuration } from '../../../src/authority/fleet-status.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { MemoryTokenStore } from '../../../src/store/memory-token-store.js';
import { isTokenAuthorityError } from '../../../src/shared/errors.js';

const HOUR = 3_600_000;

describe('fleet status (GET /fleet, token-authority status)', () => {
  it('lists live and stale receipts with lag and last-seen age, sorted by instance; gone after the retention', async () => {
    const clock = new ManualClock(1_800_000_000_000);
    const store = new MemoryTokenStore({ clock, retentionMs: HOUR });
    for (let i = 0; i < 3; i++) await store.revoke({ kind: 'jti', id: `j${i}`, until: clock.nowMs() + HOUR });
    await store.reportApplied('web-2', 1, 5000, 600_000);
    clock.advance(6000);
    await store.reportApplied('web-1', 3, 5000, 600_000);
    // A verifier ahead of what this replica saw (a race) shows lag 0, never negative.
    await store.reportApplied('web-0', 4, 5000, 600_000);
    const keys = () => [{ kid: 'k1', alg: 'ES256' as const, state: 'active' as const, createdAt: clock.nowMs() - 2 * 86_400_000 }];
    const s = await fleetStatus(store, keys, clock.nowMs() + 400);
    assert.equal(s.headSequence, 3);
    assert.deepEqual(s.keys, [{ kid: 'k1', alg: 'ES256', state: 'active', createdAt: new Date(clock.nowMs() - 2 * 86_400_000).toISOString(), ageSeconds: 172_800 }]);
    assert.deepEqual(s.verifiers.map(({ instanceId, appliedSequence, lag, lastSeenAgoMs, state }) => ({ instanceId, appliedSequence, lag, lastSeenAgoMs, state })), [
      { instanceId: 'web-0', appliedSequence: 4, lag: 0, lastSeenAgoMs: 400, state: 'live' },
      { instanceId: 'web-1', appliedSequence: 3, lag: 0, lastSeenAgoMs: 400, state: 'live' },
      { instanceId: 'web-2', appliedSequence: 1, lag: 2, lastSeenAgoMs: 6400, state: 'stale' },
    ]);
    assert.equal(s.verifiers[2]!.lastSeen, new Date(clock.nowMs() - 6000).toISOString());
    assert.deepEqual([s.live, s.stale], [2, 1]);

    const text = formatFleetStatus(s);
    assert.match(text, /head sequence 3/);
    assert.match(text, /2 live, 1 stale/);
    assert.match(text, /^web-2 +stale +1 +2 +6\.4s ago$/m);
    assert.match(text, /^k1 +ES256 +active +2d$/m);

    clock.advance(600_000);
    const later = await fleetStatus(store, keys, clock.nowMs());
    assert.deepEqual(later.verifiers.map((v) => `${v.instanceId}:${v.state}`), ['web-0:stale', 'web-1:stale'], 'web-2 is past its retention');
    clock.advance(1);
    assert.equal((await fleetStatus(store, keys, clock.nowMs())).verifiers.length, 0);
    assert.match(formatFleetStatus(await fleetStatus(store, keys, clock.nowMs())), /none seen within the receipt retention/);
  });

  it('words durations for people', () => {
    assert.deepEqual([0, 400, 9_999, 37_000, 720_000, 5 * HOUR, 3 * 24 * HOUR].map(humanDuration), ['0.0s', '0.4s', '10.0s', '37s', '12m', '5h', '3d']);
  });

  it('TA_RECEIPT_RETENTION: default 10 minutes, at least the 5 s receipt TTL, named when wrong', () => {
    const base = { TA_REDIS_URL: 'redis://127.0.0.1:6379', TA_AUTHORITY_URL: 'http://127.0.0.1:8080', TA_AUDIENCE: 'orders', TA_ISSUER: 'https://issuer.test' };
    assert.equal(loadConfig('sidecar', { env: base }).receiptRetentionMs, 600_000);
    assert.equal(loadConfig('sidecar', { env: { ...base, TA_RECEIPT_RETENTION: '1h' } }).receiptRetentionMs, HOUR);
    for (const bad of ['4s', 'soon']) {
      assert.throws(() => loadConfig('sidecar', { env: { ...base, TA_RECEIPT_RETENTION: bad } }), (err: unknown) => {
        assert.ok(isTokenAuthorityError(err));
        assert.match(err.message, /TA_RECEIPT_RETENTION \(--receipt-retention\): /);
        return true;
      }, bad);
    }
  });
});
