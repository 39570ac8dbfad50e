import assert from 'node:assert/strict';
import { ManualClock } from '../../../src/shared/clock.js';
import type { FeedMessage } from '../../../src/shared/revocation-event.js';
import { createInternalVerifier, createVerifier } from '../../../src/verifier/create-verifier.js';
import { MutableKeyResolver } from '../../../src/verifier/key-resolvers.js';
import type { RevocationSource } from '../../../src/verifier/revocation-source.js';
import { MemoryTokenStore } from '../../../src/store/memory-token-store.js';
import { accessPayload, forgeToken, generateTestKey } from '../../helpers/token-forge.js';

const ISSUER = 'https://issuer.test';

/** The real memory store as a source, with a switch that drops live feed messages (lost pub/sub traffic). */
function lossySource(store: MemoryTokenStore) {
  const control = { drop: (_m: FeedMessage) => false, disconnect: () => {}, reconnect: () => {}, inject: (_m: FeedMessage) => {} };
  const source: RevocationSource = {
    readLog: (after, limit) => store.readLog(after, limit),
    async subscribe(listener) {
      control.disconnect = () => listener.onDisconnect(new Error('cut'));
      control.reconnect = () => listener.onReady();
      control.inject = (m) => listener.onMessage(m);
      return store.subscribe({ ...listener, onMessage: (m) => (control.drop(m) ? undefined : listener.onMessage(m)) });
    },
  };
  return { source, control };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

describe('createVerifier (composition: cache, keys, revocation sync, staleness)', () => {
  const key = generateTestKey('ES256');
  let clock: ManualClock;
  let store: MemoryTokenStore;
  beforeEach(() => {
    clock = new ManualClock(Date.now());
    store = new MemoryTokenStore({ retentionMs: 3_600_000, clock });
  });
  afterEach(() => store.close());
  const token = (o: Record<string, unknown> = {}) => forgeToken({ key, payload: accessPayload({ iss: ISSUER, nowSec: Math.floor(clock.nowMs() / 1000), ...o }) });

  it('a cached token stops verifying once its key is withdrawn from the key set', async () => {
    const keys = new MutableKeyResolver([key.verificationKey]);
    const v = createVerifier({ issuer: ISSUER, keys, clock });
    const t = token();
    assert.equal(v.verifySync(t).valid, true);
    assert.equal(v.verifySync(t).valid, true);
    assert.equal(v.status().cache.hits, 1);
    keys.replace([generateTestKey('ES256').verificationKey]);
    const r = v.verifySync(t);
    assert.equal(r.valid ? 'valid' : r.reason, 'UNKNOWN_KEY');
  });

  it('fail-closed: STALE once no heartbeat or event was seen within the bound, fresh again after one', async () => {
    const { source } = lossySource(store);
    const v = createVerifier({ issuer: ISSUER, keys: new MutableKeyResolver([key.verificationKey]), revocations: source, clock, stalenessBoundMs: 1000 });
    await v.start();
    const t = token();
    assert.equal(v.verifySync(t).valid, true);
    clock.advance(1500);
    const stale = v.verifySync(t);
    assert.equal(stale.valid ? 'valid' : stale.reason, 'STALE');
    await store.heartbeat();
    await settle();
    assert.equal(v.verifySync(t).valid, true, 'a heartbeat at the applied sequence makes it fresh');
    await v.stop();
  });

  it('fail-open: accepts while stale and counts it', async () => {
    const v = createVerifier({ issuer: ISSUER, keys: new MutableKeyResolver([key.verificationKey]), revocations: lossySource(store).source, clock, stalenessBoundMs: 1000, stalenessPolicy: 'fail-open' });
    await v.start();
    clock.advance(5000);
    assert.equal(v.verifySync(token()).valid, true);
    assert.equal(v.status().acceptedWhileStale, 1);
    assert.equal(v.status().revocation.stale, true);
    await v.stop();
  });

  it('fills a sequence gap from the log: a dropped live event is still applied', async () => {
    const { source, control } = lossySource(store);
    const v = createVerifier({ issuer: ISSUER, keys: new MutableKeyResolver([key.verificationKey]), revocations: source, clock });
    await v.start();
    const victim = token({ jti: 'victim' });
    control.drop = (m) => m.type === 'rev' && m.id === 'victim';
    await store.revoke({ kind: 'jti', id: 'victim', until: clock.nowMs() + 600_000 });
    await settle();
    assert.equal(v.verifySync(victim).valid, true, 'the dropped event is not known yet (nothing showed the gap)');
    control.drop = () => false;
    await store.revoke({ kind: 'jti', id: 'other', until: clock.nowMs() + 600_000 });
    await settle();
    const r = v.verifySync(victim);
    assert.equal(r.valid ? 'valid' : r.reason, 'REVOKED', 'seq 2 after 0 revealed the gap; the log filled it');
    assert.equal(v.status().revocation.appliedSeq, 2);
    await v.stop();
  });

  it('a heartbeat ahead of the applied sequence triggers a resync', async () => {
    const { source, control } = lossySource(store);
    const v = createVerifier({ issuer: ISSUER, keys: new MutableKeyResolver([key.verificationKey]), revocations: source, clock });
    await v.start();
    control.drop = (m) => m.type === 'rev';
    await store.revoke({ kind: 'sid', id: 'lost-session', until: clock.nowMs() + 600_000 });
    await settle();
    assert.equal(v.status().revocation.appliedSeq, 0);
    await store.heartbeat();
    await settle();
    assert.equal(v.status().revocation.appliedSeq, 1);
    const r = v.verifySync(token({ sid: 'lost-session' }));
    assert.equal(r.valid ? 'valid' : r.reason, 'REVOKED');
    await v.stop();
  });

  it('after a disconnect, reconnecting re-reads what was published meanwhile', async () => {
    const { source, control } = lossySource(store);
    const v = createVerifier({ issuer: ISSUER, keys: new MutableKeyResolver([key.verificationKey]), revocations: source, clock });
    await v.start();
    control.disconnect();
    control.drop = () => true;
    for (let i = 0; i < 5; i++) await store.revoke({ kind: 'jti', id: `gone-${i}`, until: clock.nowMs() + 600_000 });
    await settle();
    assert.equal(v.status().revocation.connected, false);
    assert.equal(v.status().revocation.appliedSeq, 0);
    control.drop = () => false;
    control.reconnect();
    await settle();
    assert.equal(v.status().revocation.appliedSeq, 5);
    assert.equal(v.status().revocation.entries.jti, 5);
    await v.stop();
  });

  it('a forged feed message claiming the next sequence cannot hide the real revocation', async () => {
    const { source, control } = lossySource(store);
    const v = createVerifier({ issuer: ISSUER, keys: new MutableKeyResolver([key.verificationKey]), revocations: source, clock });
    await v.start();
    const victim = token({ jti: 'victim' });
    const forge = (seq: number) => control.inject({ v: 1, type: 'rev', seq, kind: 'jti', id: 'decoy', until: clock.nowMs() + 60_000, at: clock.nowMs() });
    // 1. The real event still arrives on the feed after the forgery.
    forge(1);
    await store.revoke({ kind: 'jti', id: 'victim', until: clock.nowMs() + 600_000 });
    await settle();
    assert.equal((v.verifySync(victim) as { reason?: string }).reason, 'REVOKED');
    // 2. The real event is lost on the feed: the next heartbeat confirms live sequences against the log.
    const victim2 = token({ jti: 'victim-2' });
    forge(2);
    control.drop = (m) => m.type === 'rev';
    await store.revoke({ kind: 'jti', id: 'victim-2', until: clock.nowMs() + 600_000 });
    await settle();
    assert.equal(v.verifySync(victim2).valid, true, 'not known yet: the forgery took its sequence');
    control.drop = () => false;
    await store.heartbeat();
    await settle();
    assert.equal((v.verifySync(victim2) as { reason?: string }).reason, 'REVOKED', 'confirmed from the log');
    await v.stop();
  });

  it('follows the log when it goes back (Redis lost writes): reused sequence numbers are applied, not ignored', async () => {
    // `master` is whichever store is the Redis master now; a failover swaps in one that lost every write.
    let master = store;
    let listener: import('../../../src/verifier/revocation-source.js').FeedListener | undefined;
    let dropLive = false;
    const source: RevocationSource = {
      readLog: (after, limit) => master.readLog(after, limit),
      async subscribe(l) {
        listener = l;
        const subscribeTo = (s: MemoryTokenStore) => s.subscribe({ ...l, onMessage: (m) => (dropLive ? undefined : l.onMessage(m)) });
        await subscribeTo(store);
        const fresh = new MemoryTokenStore({ retentionMs: 3_600_000, clock });
        await subscribeTo(fresh);
        failover = async () => {
          master = fresh;
          return fresh;
        };
        return { close: async () => undefined };
      },
    };
    let failover: () => Promise<MemoryTokenStore> = async () => store;
    const v = createVerifier({ issuer: ISSUER, keys: new MutableKeyResolver([key.verificationKey]), revocations: source, clock, });
    await v.start();
    for (let i = 0; i < 3; i++) await store.revoke({ kind: 'jti', id: `before-${i}`, until: clock.nowMs() + 600_000 });
    await store.heartbeat(); // the verifier confirms the live events against the log (as it does every heartbeat)
    await settle();
    assert.equal(v.status().revocation.appliedSeq, 3);
    const fresh = await failover();
    dropLive = true; // the live event is lost too: only the log can tell
    await fresh.revoke({ kind: 'jti', id: 'after', until: clock.nowMs() + 600_000 });
    dropLive = false;
    listener!.onReady(); // the subscriber reconnected to the new master
    await settle();
    const r = v.verifySync(token({ jti: 'after' }));
    assert.equal(r.valid ? 'valid' : r.reason, 'REVOKED', 'seq 1 of the new log is applied although 3 was applied before');
    assert.equal(v.status().revocation.appliedSeq, 1);
    assert.equal((v.verifySync(token({ jti: 'before-0' })) as { reason?: string }).reason, 'REVOKED', 'earlier revocations are kept');
    await v.stop();
    await fresh.close();
  });

  it('verify() refetches keys on an unknown kid; verifySync() answers UNKNOWN_KEY without waiting', async () => {
    const next = generateTestKey('ES256');
    const keys = new MutableKeyResolver([key.verificationKey]);
    let lookups = 0;
    const resolver = { get: (kid: string) => keys.get(kid), resolveUnknown: async (kid: string) => (lookups++, keys.replace([key.verificationKey, next.verificationKey]), keys.get(kid)) };
    const v = createVerifier({ issuer: ISSUER, keys: resolver, clock });
    const t = forgeToken({ key: next, payload: accessPayload({ iss: ISSUER, nowSec: Math.floor(clock.nowMs() / 1000) }) });
    assert.equal((v.verifySync(t) as { reason?: string }).reason, 'UNKNOWN_KEY');
    await settle();
    assert.equal(lookups, 1, 'verifySync started a refetch');
    assert.equal((await v.verify(t)).valid, true);
  });

  it('L6: rejects tokens whose exp - iat exceeds maxTokenLifetimeMs, and exp <= iat, as MALFORMED', async () => {
    const v = createVerifier({ issuer: ISSUER, keys: new MutableKeyResolver([key.verificationKey]), clock, maxTokenLifetimeMs: 3_600_000 });
    const now = Math.floor(clock.nowMs() / 1000);
    const reason = (p: Record<string, unknown>) => {
      const r = v.verifySync(forgeToken({ key, payload: accessPayload({ iss: ISSUER, nowSec: now, ...p }) }));
      return r.valid ? 'valid' : `${r.reason}: ${r.detail}`;
    };
    assert.equal(reason({ ttlSec: 3600 }), 'valid');
    assert.match(reason({ ttlSec: 3601 }), /^MALFORMED: token lifetime \(exp - iat\) exceeds/);
    assert.match(reason({ iat: now - 10 * 86_400, nbf: now - 10 * 86_400, exp: now + 60 }), /^MALFORMED: token lifetime/, 'an old iat does not make a long life acceptable');
    assert.match(reason({ iat: now + 20, nbf: now, exp: now - 10 }), /^MALFORMED: claim exp is not after iat/, 'exp before iat by the 30 s leeway');
    assert.equal(reason({ iat: now, exp: now - 5 }), 'valid', 'within the leeway, as the attack corpus expects');
    const byDefault = createVerifier({ issuer: ISSUER, keys: new MutableKeyResolver([key.verificationKey]), clock });
    const day = forgeToken({ key, payload: accessPayload({ iss: ISSUER, nowSec: now, ttlSec: 86_400 }) });
    const longer = forgeToken({ key, payload: accessPayload({ iss: ISSUER, nowSec: now, ttlSec: 86_401 }) });
    assert.equal(byDefault.verifySync(day).valid, true, 'default bound: 24 h');
    assert.equal((byDefault.verifySync(longer) as { reason?: string }).reason, 'MALFORMED');
    assert.throws(() => createVerifier({ issuer: ISSUER, keys: new MutableKeyResolver([]), maxTokenLifetimeMs: 10 }), /maxTokenLifetimeMs/);
  });

  it('its methods work detached from the object (passed as callbacks)', async () => {
    const { verify, verifySync } = createVerifier({ issuer: ISSUER, keys: new MutableKeyResolver([key.verificationKey]), clock });
    const t = token();
    assert.equal((await verify(t)).valid, true);
    assert.equal(verifySync(t).valid, true);
    const { verifyNow } = createInternalVerifier({ issuer: ISSUER, keys: new MutableKeyResolver([key.verificationKey]), clock });
    assert.equal((verifyNow(t) as { valid: boolean }).valid, true);
  });

  it('has only the public methods: verify, verifySync, start, stop, status', () => {
    const v = createVerifier({ issuer: ISSUER, keys: new MutableKeyResolver([key.verificationKey]), clock });
    assert.deepEqual(Object.keys(v).sort(), ['start', 'status', 'stop', 'verify', 'verifySync']);
  });

  it('stop() closes none of the resources it was given', async () => {
    let keysStopped = 0;
    let subscriptions = 0;
    let closed = 0;
    const keys = { get: () => undefined, stop: () => void keysStopped++ };
    const revocations = {
      readLog: async () => ({ events: [], headSeq: 0 }),
      subscribe: async (listener: { onReady(): void }) => {
        subscriptions++;
        queueMicrotask(() => listener.onReady());
        return { close: async () => void subscriptions-- };
      },
      close: async () => void closed++,
    };
    const v = createVerifier({ issuer: ISSUER, keys, revocations, clock, startTimeoutMs: 1000 });
    await v.start();
    assert.equal(subscriptions, 1);
    await v.stop();
    assert.equal(subscriptions, 0, 'its own feed subscription is closed');
    assert.deepEqual({ keysStopped, closed }, { keysStopped: 0, closed: 0 }, 'the resolver and the source are the caller\'s');
  });

  it('refuses algorithms off the allow-list at construction', () => {
    assert.throws(() => createVerifier({ issuer: ISSUER, keys: new MutableKeyResolver(), algorithms: ['HS256' as never] }), /HS256" is not supported/);
    assert.throws(() => createVerifier({ issuer: '', keys: new MutableKeyResolver() }), /issuer is required/);
  });
});
