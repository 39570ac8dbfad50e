import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ManualClock } from '../../src/shared/clock.js';
import { ErrorCodes } from '../../src/shared/errors.js';
import type { RevocationEvent } from '../../src/shared/revocation-event.js';
import type { RefreshSnapshot, RotateRefreshInput, RotateResult, TokenStore } from '../../src/store/token-store.js';
import { FeedCollector } from './feed-collector.js';
import { testChecks, testGraceProof, testLiveProof } from '../helpers/refresh-checks.js';

/** What a store under contract test comes with. */
export interface ContractContext {
  store: TokenStore;
  /**
   * The store's own clock, when the test controls it (memory store). `undefined` when store time is
   * real time (Redis stamps events with its TIME): time-dependent cases then wait for real time to
   * pass, polling a condition with a deadline.
   */
  clock: ManualClock | undefined;
  cleanup(): Promise<void>;
}

export interface ContractFactoryOptions {
  /** Log retention for this store. Default: something long enough that nothing is trimmed. */
  retentionMs?: number;
}

export type ContractFactory = (options?: ContractFactoryOptions) => Promise<ContractContext>;

const MIN = 60_000;
const HOUR = 60 * MIN;

/**
 * The TokenStore contract: every implementation must pass it unchanged. Runs a fresh store per
 * test. Caller-supplied times (`now` in inputs) come from a ManualClock — the store's own when it
 * has one, else a private one starting at real time, so rotation decisions are deterministic for
 * both stores.
 */
export function runTokenStoreContract(name: string, factory: ContractFactory): void {
  describe(`TokenStore contract: ${name}`, function () {
    let ctx: ContractContext;
    /** Source of caller-supplied `now` values. */
    let t: ManualClock;
    const extra: ContractContext[] = [];

    beforeEach(async () => {
      ctx = await factory();
      t = ctx.clock ?? new ManualClock(Date.now());
    });

    afterEach(async () => {
      await ctx.cleanup();
      for (const c of extra.splice(0)) await c.cleanup();
    });

    const store = () => ctx.store;
    const storeNow = () => (ctx.clock ? ctx.clock.nowMs() : Date.now());

    /** Lets store time pass: instantly on a manual clock, else waits for real time (bounded). */
    async function passStoreTime(ms: number, c: ContractContext = ctx): Promise<void> {
      if (c.clock) {
        c.clock.advance(ms);
        return;
      }
      const target = Date.now() + ms;
      await waitFor(`${ms} ms of real time`, () => Date.now() >= target, ms + 5000);
    }

    async function withRetention(retentionMs: number): Promise<ContractContext> {
      const c = await factory({ retentionMs });
      extra.push(c);
      return c;
    }

    async function newSession(
      opts: { subject?: string; refreshTtlMs?: number; absoluteTtlMs?: number; s?: TokenStore } = {},
    ) {
      const sessionId = `sid-${id()}`;
      const refreshHash = hash();
      const now = t.nowMs();
      const subject = opts.subject ?? `user-${id()}`;
      const { generation } = await (opts.s ?? store()).createSession({
        sessionId,
        subject,
        audience: ['api://orders', 'api://billing'],
        scopes: ['orders:read', 'orders:write'],
        extra: { tenant: 'acme', 'x/y': 'ü"q' },
        refreshHash,
        refreshProof: testLiveProof(refreshHash, sessionId, now + (opts.refreshTtlMs ?? 1 * HOUR), now),
        refreshExpiresAt: now + (opts.refreshTtlMs ?? 1 * HOUR),
        absoluteExpiresAt: now + (opts.absoluteTtlMs ?? 24 * HOUR),
        now,
      });
      return { sessionId, refreshHash, subject, generation, createdAt: now };
    }

    async function freshInput() {
      const now = t.nowMs();
      const sessionId = `sid-${id()}`;
      const refreshHash = hash();
      return { sessionId, subject: 'u', audience: [], scopes: [], extra: {}, refreshHash, refreshProof: 'p', refreshExpiresAt: now + HOUR, absoluteExpiresAt: now + HOUR, now };
    }

    function rotateInput(presentedHash: string, over: Partial<RotateRefreshInput> = {}): RotateRefreshInput {
      const now = t.nowMs();
      return {
        presentedHash,
        successorHash: hash(),
        successorExpiresAt: now + 1 * HOUR,
        now,
        graceMs: 0,
        idleTimeoutMs: 0,
        revocationUntil: now + 15 * MIN,
        checks: testChecks,
        ...over,
      };
    }

    async function rotate(presentedHash: string, over: Partial<RotateRefreshInput> = {}) {
      const input = rotateInput(presentedHash, over);
      return { input, result: await store().rotateRefresh(input) };
    }

    function expectOutcome<O extends RotateResult['outcome']>(
      r: RotateResult,
      outcome: O,
    ): Extract<RotateResult, { outcome: O }> {
      assert.equal(r.outcome, outcome, `expected ${outcome}, got ${JSON.stringify(r)}`);
      return r as Extract<RotateResult, { outcome: O }>;
    }

    async function subscribed(s: TokenStore = store()) {
      const feed = new FeedCollector();
      const subscription = await s.subscribe(feed);
      await feed.until('onReady', () => feed.readyCount === 1);
      return { feed, subscription };
    }

    // ---------------------------------------------------------------- sessions

    describe('createSession / getSession / findSessionByRefresh', () => {
      it('returns the current generation and records the session', async () => {
        const s = await newSession({ subject: 'alice' });
        assert.equal(s.generation, 0);
        const rec = await store().getSession(s.sessionId);
        assert.deepEqual(rec, {
          sessionId: s.sessionId,
          subject: 'alice',
          audience: ['api://orders', 'api://billing'],
          scopes: ['orders:read', 'orders:write'],
          extra: { tenant: 'acme', 'x/y': 'ü"q' },
          generation: 0,
          createdAt: s.createdAt,
          absoluteExpiresAt: s.createdAt + 24 * HOUR,
          lastUsedAt: s.createdAt,
          revoked: false,
        });
        assert.deepEqual(await store().findSessionByRefresh(s.refreshHash), rec);

        await store().revoke({ kind: 'sub', id: 'alice', until: t.nowMs() + 15 * MIN });
        await store().revoke({ kind: 'sub', id: 'alice', until: t.nowMs() + 15 * MIN });
        assert.equal((await newSession({ subject: 'alice' })).generation, 2);
        assert.equal((await newSession({ subject: 'bob' })).generation, 0, 'generations are per subject');
      });

      it('answers undefined for unknown sessions and refresh tokens', async () => {
        assert.equal(await store().getSession('no-such-session'), undefined);
        assert.equal(await store().findSessionByRefresh(hash()), undefined);
      });

      it('refuses a session id or refresh hash that already exists, without changing anything', async () => {
        const s = await newSession();
        const now = t.nowMs();
        const base = {
          subject: 'mallory',
          audience: [],
          scopes: [],
          extra: {},
          refreshExpiresAt: now + HOUR,
          absoluteExpiresAt: now + HOUR,
          now,
        };
        await assert.rejects(
          store().createSession({ ...base, sessionId: s.sessionId, refreshHash: hash(), refreshProof: 'p' }),
          { code: ErrorCodes.INTERNAL },
        );
        await assert.rejects(
          store().createSession({ ...base, sessionId: `sid-${id()}`, refreshHash: s.refreshHash, refreshProof: 'p' }),
          { code: ErrorCodes.INTERNAL },
        );
        assert.equal((await store().getSession(s.sessionId))?.subject, s.subject);
        assert.equal((await store().findSessionByRefresh(s.refreshHash))?.sessionId, s.sessionId);
      });

      it('keeps a session\'s constraints and seal as given, through every read and a rotation; none given, none returned', async () => {
        const now = t.nowMs();
        const sessionId = `sid-${id()}`;
        const refreshHash = hash();
        const constraints = { maxAccessTtlMs: 600_000, later: { nested: ['a', 'b'], 'x/y': 'ü"q' } };
        await store().createSession({
          sessionId, subject: 'u', audience: ['a'], scopes: [], extra: { client_id: 'c' }, constraints, seal: 'v2.test.seal', refreshHash,
          refreshProof: testLiveProof(refreshHash, sessionId, now + HOUR, now), refreshExpiresAt: now + HOUR, absoluteExpiresAt: now + 24 * HOUR, now,
        });
        const rec = await store().getSession(sessionId);
        assert.deepEqual(rec?.constraints, constraints);
        assert.equal(rec?.seal, 'v2.test.seal');
        assert.deepEqual(rec?.extra, { client_id: 'c' });
        assert.deepEqual(await store().findSessionByRefresh(refreshHash), rec);
        assert.deepEqual((await store().loadRefresh(refreshHash))?.session, rec);
        const seen: RefreshSnapshot[] = [];
        const r = await store().rotateRefresh(rotateInput(refreshHash, { checks: { ...testChecks, check: (snap) => (seen.push(snap), testChecks.check(snap)) } }));
        assert.deepEqual(seen[0]?.session.constraints, constraints, 'the check sees them');
        const rotated = expectOutcome(r, 'rotated');
        assert.deepEqual(rotated.session.constraints, constraints);
        assert.equal(rotated.session.seal, 'v2.test.seal');
        const plain = await newSession();
        const p = await store().getSession(plain.sessionId);
        assert.equal('constraints' in p!, false);
        assert.equal('seal' in p!, false);
        await assert.rejects(store().createSession({ ...(await freshInput()), constraints: [] as never }), { code: ErrorCodes.INVALID_ARGUMENT });
        await assert.rejects(store().createSession({ ...(await freshInput()), seal: '' }), { code: ErrorCodes.INVALID_ARGUMENT });
      });
    });

    // ---------------------------------------------------------------- rotation

    describe('rotateRefresh', () => {
      it('rotates a chain of 50, each token spent and its successor current', async () => {
        const s = await newSession();
        let current = s.refreshHash;
        const spent: string[] = [];
        for (let i = 0; i < 50; i++) {
          t.advance(1000);
          const { input, result } = await rotate(current);
          const r = expectOutcome(result, 'rotated');
          assert.equal(r.viaGrace, false);
          assert.equal(r.generation, 0);
          assert.equal(r.session.sessionId, s.sessionId);
          assert.equal(r.session.lastUsedAt, input.now);
          assert.equal(r.session.revoked, false);
          spent.push(current);
          current = input.successorHash;
        }
        for (const h of [...spent, current]) {
          assert.equal((await store().findSessionByRefresh(h))?.sessionId, s.sessionId, 'every token stays known');
        }
        expectOutcome((await rotate(current)).result, 'rotated');
      });

      it('answers invalid for a token that was never issued', async () => {
        expectOutcome((await rotate(hash())).result, 'invalid');
      });

      it('lets exactly one of 100 concurrent rotations of one token win; the rest is reuse and revokes the family', async () => {
        // Serialised by the store, the first call rotates. The second presents a token that is spent
        // by then: reuse (a real client never sends one refresh token twice at once, so a second
        // copy in flight means a second holder), which revokes the family. The other 98 find the
        // family revoked. With graceMs > 0 the second one would be a grace rotation instead.
        const s = await newSession();
        const inputs = Array.from({ length: 100 }, () => rotateInput(s.refreshHash));
        const results = await Promise.all(inputs.map((i) => store().rotateRefresh(i)));
        const count = (o: string) => results.filter((r) => r.outcome === o).length;
        assert.deepEqual(
          { rotated: count('rotated'), reused: count('reused'), revoked: count('revoked'), other: 100 - count('rotated') - count('reused') - count('revoked') },
          { rotated: 1, reused: 1, revoked: 98, other: 0 },
        );
        const winner = inputs[results.findIndex((r) => r.outcome === 'rotated')]!;
        const reuse = expectOutcome(results.find((r) => r.outcome === 'reused')!, 'reused');
        assert.equal(reuse.event.kind, 'sid');
        assert.equal(reuse.event.id, s.sessionId);

        assert.equal((await store().getSession(s.sessionId))?.revoked, true, 'family ends revoked');
        expectOutcome((await rotate(winner.successorHash)).result, 'revoked');
        const log = await store().readLog(0, 1000);
        assert.deepEqual(
          log.events.filter((e) => e.kind === 'sid' && e.id === s.sessionId).map((e) => e.seq),
          [reuse.event.seq],
          'exactly one sid revocation appended',
        );
      });

      it('treats a spent token as reuse: family revoked, sid revocation appended and published', async () => {
        const { feed, subscription } = await subscribed();
        const s = await newSession();
        const first = await rotate(s.refreshHash);
        expectOutcome(first.result, 'rotated');
        t.advance(5000);
        const { input, result } = await rotate(s.refreshHash, { graceMs: 0 });
        const r = expectOutcome(result, 'reused');
        assert.equal(r.session.revoked, true);
        assert.equal(r.session.sessionId, s.sessionId);
        assert.equal(r.event.kind, 'sid');
        assert.equal(r.event.id, s.sessionId);
        assert.equal(r.event.until, input.revocationUntil);
        assert.equal(r.event.reason, 'refresh-token-reuse');
        assert.equal(r.event.seq, 1);

        assert.deepEqual((await store().readLog(0, 10)).events, [r.event]);
        await feed.until('the reuse revocation on the feed', () => feed.revocations.length === 1);
        assert.deepEqual(feed.revocations[0], r.event);
        // Every token of the family is dead now, including the legitimate successor.
        expectOutcome((await rotate(first.input.successorHash)).result, 'revoked');
        expectOutcome((await rotate(s.refreshHash)).result, 'revoked');
        // And the reuse revocation is the session's revocation: revoking the sid again is a no-op.
        const again = await store().revoke({ kind: 'sid', id: s.sessionId, until: t.nowMs() + HOUR });
        assert.deepEqual(again, r.event);
        await subscription.close();
      });

      it('accepts the parent again within the grace window while its successor is unused', async () => {
        const s = await newSession();
        const a = s.refreshHash;
        const b = (await rotate(a)).input.successorHash;
        t.advance(4000);
        const { input: retry, result } = await rotate(a, { graceMs: 5000 });
        const r = expectOutcome(result, 'rotated');
        assert.equal(r.viaGrace, true);
        assert.equal(r.session.lastUsedAt, retry.now);
        const c = retry.successorHash;
        // The superseded successor was never delivered: unknown, not reuse — the family lives.
        assert.equal(await store().findSessionByRefresh(b), undefined, 'superseded successor is gone');
        expectOutcome((await rotate(b, { graceMs: 5000 })).result, 'invalid');
        assert.equal((await store().getSession(s.sessionId))?.revoked, false);
        // The grace successor is the live token.
        const d = (await rotate(c, { graceMs: 5000 }));
        expectOutcome(d.result, 'rotated');
        // Now that the parent's successor has been used, the parent is plain reuse, grace or not.
        expectOutcome((await rotate(a, { graceMs: 60_000 })).result, 'reused');
        assert.equal((await store().readLog(0, 10)).events.length, 1);
      });

      it('grace ends at spentAt + graceMs inclusive; later it is reuse', async () => {
        const s1 = await newSession();
        await rotate(s1.refreshHash);
        t.advance(5000);
        expectOutcome((await rotate(s1.refreshHash, { graceMs: 5000 })).result, 'rotated');

        const s2 = await newSession();
        await rotate(s2.refreshHash);
        t.advance(5001);
        const r = expectOutcome((await rotate(s2.refreshHash, { graceMs: 5000 })).result, 'reused');
        assert.equal(r.event.id, s2.sessionId);
        assert.equal((await store().getSession(s2.sessionId))?.revoked, true);
        assert.equal((await store().getSession(s1.sessionId))?.revoked, false);
      });

      it('expires a token at its own expiry', async () => {
        const s = await newSession({ refreshTtlMs: 10_000 });
        t.advance(9_999);
        const next = await rotate(s.refreshHash, { successorExpiresAt: t.nowMs() + 10_000 });
        expectOutcome(next.result, 'rotated');
        t.advance(10_000);
        const r = expectOutcome((await rotate(next.input.successorHash)).result, 'expired');
        assert.equal(r.session.sessionId, s.sessionId);
        assert.equal(r.session.revoked, false, 'expiry is not revocation');
        assert.equal((await store().readLog(0, 10)).headSeq, 0, 'expiry appends nothing');
      });

      it('expires every token of a session at its absolute expiry', async () => {
        const s = await newSession({ refreshTtlMs: 10 * HOUR, absoluteTtlMs: 2 * HOUR });
        t.advance(2 * HOUR - 1);
        const next = await rotate(s.refreshHash, { successorExpiresAt: t.nowMs() + 10 * HOUR });
        expectOutcome(next.result, 'rotated');
        t.advance(1);
        expectOutcome((await rotate(next.input.successorHash)).result, 'expired');
      });

      it('expires a session unused for idleTimeoutMs, counting from its last use', async () => {
        const s = await newSession();
        t.advance(59_000);
        const r1 = await rotate(s.refreshHash, { idleTimeoutMs: 60_000 });
        expectOutcome(r1.result, 'rotated');
        t.advance(59_999);
        const r2 = await rotate(r1.input.successorHash, { idleTimeoutMs: 60_000 });
        expectOutcome(r2.result, 'rotated');
        t.advance(60_000);
        expectOutcome((await rotate(r2.input.successorHash, { idleTimeoutMs: 60_000 })).result, 'expired');
        // No idle timeout configured: the same token still rotates.
        expectOutcome((await rotate(r2.input.successorHash, { idleTimeoutMs: 0 })).result, 'rotated');
      });

      it('hands the caller exactly what it read, and writes nothing when the check throws', async () => {
        const s = await newSession();
        const seen: RefreshSnapshot[] = [];
        const refuse = { ...testChecks, check: (snap: RefreshSnapshot) => { seen.push(snap); throw new Error('refused by the check'); } };
        await assert.rejects(store().rotateRefresh(rotateInput(s.refreshHash, { checks: refuse })), /refused by the check/);
        assert.equal(seen.length, 1);
        const snap = seen[0]!;
        assert.equal(snap.key, s.refreshHash);
        assert.equal(snap.sessionId, s.sessionId);
        assert.equal(snap.state, 'live');
        assert.equal(snap.current, s.refreshHash);
        assert.equal(snap.issuedAt, s.createdAt);
        assert.equal(snap.proof, testLiveProof(s.refreshHash, s.sessionId, snap.expiresAt, s.createdAt));
        assert.equal(snap.session.subject, s.subject);
        // Nothing was spent: the token still rotates.
        expectOutcome((await rotate(s.refreshHash)).result, 'rotated');
      });

      it('rotates a live token only if its proof holds; an unproven one is invalid and stays as it was', async () => {
        const now = t.nowMs();
        const sessionId = `sid-${id()}`;
        const refreshHash = hash();
        await store().createSession({
          sessionId, subject: 'u', audience: ['a'], scopes: [], extra: {}, refreshHash,
          refreshProof: testLiveProof(refreshHash, 'another-session', now + HOUR, now),
          refreshExpiresAt: now + HOUR, absoluteExpiresAt: now + 2 * HOUR, now,
        });
        const r = expectOutcome((await rotate(refreshHash)).result, 'invalid');
        assert.equal(r.unproven, true);
        assert.equal((await store().getSession(sessionId))?.lastUsedAt, now, 'nothing written');
        assert.equal((await store().readLog(0, 10)).headSeq, 0, 'no revocation: an unproven record proves no theft');
      });

      it('replaces a spent token\'s live proof by a grace proof; revoking the session deletes the proofs of its current token and its parent', async () => {
        const s = await newSession();
        const first = await rotate(s.refreshHash);
        expectOutcome(first.result, 'rotated');
        const b = first.input.successorHash;
        const snaps = new Map<string, RefreshSnapshot>();
        const record = { ...testChecks, check: (snap: RefreshSnapshot) => { snaps.set(snap.key, snap); throw new Error('look only'); } };
        const look = async (h: string) => {
          await assert.rejects(store().rotateRefresh(rotateInput(h, { checks: record })), /look only/);
          return snaps.get(h)!;
        };
        const parent = await look(s.refreshHash);
        assert.equal(parent.state, 'spent');
        assert.equal(parent.proof, testGraceProof(s.refreshHash, s.sessionId, b, first.input.now));
        const live = await look(b);
        assert.equal(live.proof, testLiveProof(b, s.sessionId, first.input.successorExpiresAt, first.input.now));
        assert.equal(live.issuedAt, first.input.now);

        await store().revoke({ kind: 'sid', id: s.sessionId, until: t.nowMs() + HOUR });
        assert.equal((await look(b)).proof, undefined, 'the current token\'s proof is gone');
        assert.equal((await look(s.refreshHash)).proof, undefined, 'the parent\'s grace proof is gone');
      });

      it('signing a subject out everywhere deletes the proofs of all its sessions, sparing later ones and other subjects', async () => {
        const a1 = await newSession({ subject: 'sue' });
        const a2 = await newSession({ subject: 'sue' });
        const other = await newSession({ subject: 'tom' });
        const proofOf = async (h: string) => {
          let proof: string | undefined = 'unseen';
          const look = { ...testChecks, check: (snap: RefreshSnapshot) => { proof = snap.proof; throw new Error('look only'); } };
          await assert.rejects(store().rotateRefresh(rotateInput(h, { checks: look })), /look only/);
          return proof;
        };
        await store().revoke({ kind: 'sub', id: 'sue', until: t.nowMs() + HOUR });
        assert.equal(await proofOf(a1.refreshHash), undefined);
        assert.equal(await proofOf(a2.refreshHash), undefined);
        assert.notEqual(await proofOf(other.refreshHash), undefined, 'other subjects keep theirs');
        const later = await newSession({ subject: 'sue' });
        expectOutcome((await rotate(later.refreshHash)).result, 'rotated');
      });

      it('refuses a successor hash that already exists and leaves the presented token live', async () => {
        const s1 = await newSession();
        const s2 = await newSession();
        await assert.rejects(store().rotateRefresh(rotateInput(s1.refreshHash, { successorHash: s2.refreshHash })), {
          code: ErrorCodes.INTERNAL,
        });
        expectOutcome((await rotate(s1.refreshHash)).result, 'rotated');
      });
    });

    // ---------------------------------------------------------------- revocation

    describe('revoke', () => {
      it('jti: appends an event in the wire format with the next sequence', async () => {
        const until = t.nowMs() + 10 * MIN;
        const before = storeNow();
        const e1 = await store().revoke({ kind: 'jti', id: 'jti-1', until, reason: 'logout' });
        const e2 = await store().revoke({ kind: 'jti', id: 'jti-2', until });
        const after = storeNow();
        assert.deepEqual({ ...e1, at: 0 }, { v: 1, type: 'rev', seq: 1, kind: 'jti', id: 'jti-1', until, at: 0, reason: 'logout' });
        assert.deepEqual({ ...e2, at: 0 }, { v: 1, type: 'rev', seq: 2, kind: 'jti', id: 'jti-2', until, at: 0 });
        assert.ok(!('gen' in e1) && !('reason' in e2), 'no empty optional fields');
        assert.ok(e1.at >= before && e2.at <= after && e1.at <= e2.at, 'at is store time');
        assert.deepEqual((await store().readLog(0, 10)).events, [e1, e2]);
      });

      it('sid: revokes the family and appends', async () => {
        const s = await newSession();
        const next = await rotate(s.refreshHash);
        const e = await store().revoke({ kind: 'sid', id: s.sessionId, until: t.nowMs() + 10 * MIN });
        assert.equal(e.kind, 'sid');
        assert.equal(e.id, s.sessionId);
        assert.equal((await store().getSession(s.sessionId))?.revoked, true);
        const r = expectOutcome((await rotate(next.input.successorHash)).result, 'revoked');
        assert.equal(r.session.revoked, true);
        // A session the store does not know (expired, or another authority's) is still announced.
        const unknown = await store().revoke({ kind: 'sid', id: 'sid-unknown', until: t.nowMs() + MIN });
        assert.equal(unknown.seq, 2);
      });

      it('sub: bumps the generation, revoking the sessions created before, sparing those after', async () => {
        const old = await newSession({ subject: 'carol' });
        const other = await newSession({ subject: 'dave' });
        const e1 = await store().revoke({ kind: 'sub', id: 'carol', until: t.nowMs() + 15 * MIN, reason: 'password-change' });
        assert.equal(e1.kind, 'sub');
        assert.equal(e1.gen, 1);
        assert.equal(e1.reason, 'password-change');

        const fresh = await newSession({ subject: 'carol' });
        assert.equal(fresh.generation, 1, 'a session created after the bump carries the new generation');
        const r = expectOutcome((await rotate(old.refreshHash)).result, 'revoked');
        assert.equal(r.session.revoked, true);
        assert.equal((await store().getSession(old.sessionId))?.revoked, true);
        const ok = expectOutcome((await rotate(fresh.refreshHash)).result, 'rotated');
        assert.equal(ok.generation, 1);
        assert.equal(ok.session.generation, 1);
        expectOutcome((await rotate(other.refreshHash)).result, 'rotated');

        const e2 = await store().revoke({ kind: 'sub', id: 'carol', until: t.nowMs() + 15 * MIN });
        assert.deepEqual([e2.seq, e2.gen], [2, 2], 'sub is never idempotent: every call bumps and appends');
      });

      it('jti and sid are idempotent while live: the original event, no new sequence', async () => {
        const s = await newSession();
        const until = storeNow() + 800;
        const j1 = await store().revoke({ kind: 'jti', id: 'jti-x', until, reason: 'first' });
        const j2 = await store().revoke({ kind: 'jti', id: 'jti-x', until: until + 5000, reason: 'second' });
        assert.deepEqual(j2, j1);
        const s1 = await store().revoke({ kind: 'sid', id: s.sessionId, until });
        const s2 = await store().revoke({ kind: 'sid', id: s.sessionId, until: until + 5000 });
        assert.deepEqual(s2, s1);
        // A jti and a sid with the same id are different targets.
        const sameId = await store().revoke({ kind: 'sid', id: 'jti-x', until });
        assert.equal(sameId.seq, 3);
        assert.equal((await store().readLog(0, 10)).headSeq, 3);

        // Once the entry's `until` has passed, the marker is gone and a revoke appends again.
        await passStoreTime(until - storeNow() + 1);
        const j3 = await store().revoke({ kind: 'jti', id: 'jti-x', until: storeNow() + MIN });
        assert.equal(j3.seq, 4);
      });

      it('carries ids and reasons with quotes, slashes, newlines and non-ASCII verbatim', async () => {
        const { feed, subscription } = await subscribed();
        const weird = 'a"b\\c/d\né✓';
        const e = await store().revoke({ kind: 'sid', id: weird, until: t.nowMs() + HOUR, reason: weird });
        assert.equal(e.id, weird);
        assert.equal(e.reason, weird);
        assert.deepEqual((await store().readLog(0, 1)).events, [e]);
        await feed.until('the revocation', () => feed.revocations.length === 1);
        assert.deepEqual(feed.revocations[0], e);
        assert.deepEqual(await store().revoke({ kind: 'sid', id: weird, until: t.nowMs() + HOUR }), e);
        await subscription.close();
      });

      it('rejects malformed input with ERR_INVALID_ARGUMENT', async () => {
        await assert.rejects(store().revoke({ kind: 'jti', id: '', until: 1 }), { code: ErrorCodes.INVALID_ARGUMENT });
        await assert.rejects(store().revoke({ kind: 'nope' as 'jti', id: 'x', until: 1 }), { code: ErrorCodes.INVALID_ARGUMENT });
        await assert.rejects(store().revoke({ kind: 'jti', id: 'x', until: 1.5 }), { code: ErrorCodes.INVALID_ARGUMENT });
        await assert.rejects(store().readLog(-1, 10), { code: ErrorCodes.INVALID_ARGUMENT });
        await assert.rejects(store().readLog(0, 0), { code: ErrorCodes.INVALID_ARGUMENT });
      });
    });

    describe('restoreRevocations (re-append what a failover lost)', () => {
      it('re-applies and appends entries the store lacks, with fresh sequences; skips what it covers; is idempotent', async () => {
        const s = await newSession({ subject: 'erin' });
        const until = storeNow() + 10 * MIN;
        const held = await store().revoke({ kind: 'jti', id: 'still-there', until });
        const restored = await store().restoreRevocations([
          { kind: 'jti', id: 'still-there', until },
          { kind: 'jti', id: 'lost-jti', until },
          { kind: 'sid', id: s.sessionId, until },
          { kind: 'sub', id: 'erin', until, gen: 3 },
          { kind: 'jti', id: 'expired', until: storeNow() - 1 },
        ]);
        assert.deepEqual(restored.map((e) => [e.seq, e.kind, e.id, e.gen ?? null, e.reason]), [
          [held.seq + 1, 'jti', 'lost-jti', null, 'restored'],
          [held.seq + 2, 'sid', s.sessionId, null, 'restored'],
          [held.seq + 3, 'sub', 'erin', 3, 'restored'],
        ]);
        assert.equal((await store().getSession(s.sessionId))?.revoked, true, 'the session is dead again');
        expectOutcome((await rotate(s.refreshHash)).result, 'revoked');
        assert.equal((await newSession({ subject: 'erin' })).generation, 3, 'the generation is raised to the held one');
        assert.deepEqual((await store().readLog(held.seq, 10)).events, restored);
        assert.deepEqual(
          await store().restoreRevocations([{ kind: 'jti', id: 'lost-jti', until }, { kind: 'sub', id: 'erin', until, gen: 3 }, { kind: 'sid', id: s.sessionId, until }]),
          [],
          'a second replica handing over the same entries appends nothing',
        );
        await assert.rejects(store().restoreRevocations([{ kind: 'sub', id: 'x', until }]), { code: ErrorCodes.INVALID_ARGUMENT });
      });

      it('applies the same effect as revoke: the restored sessions and subjects lose their refresh proofs', async () => {
        const bySid = await newSession({ subject: 'ruth' });
        const bySub = await newSession({ subject: 'sam' });
        const untouched = await newSession({ subject: 'tia' });
        const proofOf = async (h: string) => {
          let proof: string | undefined = 'unseen';
          const look = { ...testChecks, check: (snap: RefreshSnapshot) => { proof = snap.proof; throw new Error('look only'); } };
          await assert.rejects(store().rotateRefresh(rotateInput(h, { checks: look })), /look only/);
          return proof;
        };
        const until = storeNow() + 10 * MIN;
        await store().restoreRevocations([{ kind: 'sid', id: bySid.sessionId, until }, { kind: 'sub', id: 'sam', until, gen: 1 }]);
        assert.equal(await proofOf(bySid.refreshHash), undefined, 'a restored sid revocation deletes the session\'s proofs');
        assert.equal(await proofOf(bySub.refreshHash), undefined, 'a restored sub revocation deletes the proofs of the subject\'s sessions');
        assert.notEqual(await proofOf(untouched.refreshHash), undefined);
      });
    });

    // ---------------------------------------------------------------- log

    describe('readLog', () => {
      it('is empty with head 0 before any revocation', async () => {
        assert.deepEqual(await store().readLog(0, 10), { events: [], headSeq: 0 });
      });

      it('pages in ascending sequence order with an exclusive start', async () => {
        const written: RevocationEvent[] = [];
        for (let i = 1; i <= 25; i++) {
          written.push(await store().revoke({ kind: 'jti', id: `j${i}`, until: t.nowMs() + HOUR }));
        }
        const seqs = (p: { events: readonly RevocationEvent[] }) => p.events.map((e) => e.seq);
        const p1 = await store().readLog(0, 10);
        assert.deepEqual(seqs(p1), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert.equal(p1.headSeq, 25);
        const p2 = await store().readLog(10, 10);
        assert.deepEqual(seqs(p2), [11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
        const p3 = await store().readLog(20, 10);
        assert.deepEqual(seqs(p3), [21, 22, 23, 24, 25]);
        assert.deepEqual(await store().readLog(25, 10), { events: [], headSeq: 25 });
        assert.deepEqual(await store().readLog(7, 3), { events: written.slice(7, 10), headSeq: 25 });
        assert.deepEqual([...p1.events, ...p2.events, ...p3.events], written, 'the log holds exactly what revoke returned');
      });

      it('trims entries older than the retention, and only those', async function () {
        // Redis stamps entries with its own TIME, so for a real-time store this case waits out a
        // short retention for real.
        const retentionMs = ctx.clock ? 10 * MIN : 750;
        const c = await withRetention(retentionMs);
        const s = c.store;
        const now = () => (c.clock ? c.clock.nowMs() : Date.now());
        await s.revoke({ kind: 'jti', id: 'a', until: now() + HOUR });
        const b = await s.revoke({ kind: 'jti', id: 'b', until: now() + HOUR });
        assert.deepEqual(await s.heartbeat(), { headSeq: 2, trimmed: 0 }, 'young entries are kept');

        await passStoreTime(b.at + retentionMs + 1 - now(), c);
        assert.deepEqual(await s.heartbeat(), { headSeq: 2, trimmed: 2 });
        assert.deepEqual(await s.readLog(0, 10), { events: [], headSeq: 2 }, 'head survives trimming');

        const cEvent = await s.revoke({ kind: 'jti', id: 'c', until: now() + HOUR });
        assert.equal(cEvent.seq, 3, 'sequence continues after trimming');
        assert.deepEqual((await s.heartbeat()).trimmed, 0);
        assert.deepEqual((await s.readLog(0, 10)).events, [cEvent]);

        // Appends trim too (a few entries each), so the log stays bounded between heartbeats.
        await passStoreTime(cEvent.at + retentionMs + 1 - now(), c);
        const d = await s.revoke({ kind: 'jti', id: 'd', until: now() + HOUR });
        assert.deepEqual(await s.readLog(0, 10), { events: [d], headSeq: 4 });
      });
    });

    // ---------------------------------------------------------------- feed

    describe('subscribe / heartbeat', () => {
      it('calls onReady once subscribed, before any message', async () => {
        const { feed, subscription } = await subscribed();
        await store().revoke({ kind: 'jti', id: 'j', until: t.nowMs() + HOUR });
        await feed.until('one revocation', () => feed.revocations.length === 1);
        assert.deepEqual(feed.calls, ['ready', 'rev:1']);
        await subscription.close();
      });

      it('delivers every sequence exactly once, in order, across 200 concurrent revokes', async function () {
        this.timeout(30_000);
        const { feed, subscription } = await subscribed();
        const kinds = ['jti', 'sid', 'sub'] as const;
        const returned = await Promise.all(
          Array.from({ length: 200 }, (_, i) =>
            store().revoke({ kind: kinds[i % 3]!, id: `target-${i}`, until: t.nowMs() + HOUR }),
          ),
        );
        assert.deepEqual(
          returned.map((e) => e.seq).sort((x, y) => x - y),
          Array.from({ length: 200 }, (_, i) => i + 1),
        );
        // A heartbeat is published after all 200: once it arrives nothing else can be in flight.
        await store().heartbeat();
        await feed.until('the heartbeat after 200 revocations', () => feed.messages.some((m) => m.type === 'hb'));
        const revs = feed.revocations;
        assert.deepEqual(
          revs.map((e) => e.seq),
          Array.from({ length: 200 }, (_, i) => i + 1),
          'in order, each exactly once',
        );
        const bySeq = new Map(returned.map((e) => [e.seq, e]));
        for (const e of revs) assert.deepEqual(e, bySeq.get(e.seq));
        assert.deepEqual((await store().readLog(0, 1000)).events, revs, 'feed and log agree');
        assert.equal(feed.readyCount, 1);
        assert.equal(feed.disconnectCount, 0);
        await subscription.close();
      });

      it('publishes heartbeats carrying the head sequence', async () => {
        const { feed, subscription } = await subscribed();
        assert.deepEqual(await store().heartbeat(), { headSeq: 0, trimmed: 0 });
        for (let i = 0; i < 3; i++) await store().revoke({ kind: 'jti', id: `j${i}`, until: t.nowMs() + HOUR });
        const before = storeNow();
        assert.deepEqual(await store().heartbeat(), { headSeq: 3, trimmed: 0 });
        const after = storeNow();
        await feed.until('two heartbeats', () => feed.messages.filter((m) => m.type === 'hb').length === 2);
        assert.deepEqual(feed.calls, ['ready', 'hb:0', 'rev:1', 'rev:2', 'rev:3', 'hb:3']);
        const hb = feed.messages.at(-1)!;
        assert.equal(hb.v, 1);
        assert.ok(hb.at >= before && hb.at <= after);
        await subscription.close();
      });

      it('stops delivering after close, while other subscriptions continue', async () => {
        const one = await subscribed();
        const two = await subscribed();
        await store().revoke({ kind: 'jti', id: 'j1', until: t.nowMs() + HOUR });
        await one.feed.until('rev 1 on feed one', () => one.feed.revocations.length === 1);
        await two.feed.until('rev 1 on feed two', () => two.feed.revocations.length === 1);
        await one.subscription.close();
        await store().revoke({ kind: 'jti', id: 'j2', until: t.nowMs() + HOUR });
        await two.feed.until('rev 2 on feed two', () => two.feed.revocations.length === 2);
        assert.deepEqual(one.feed.calls, ['ready', 'rev:1']);
        await two.subscription.close();
      });
    });

    // ---------------------------------------------------------------- receipts & lifecycle

    describe('receipts', () => {
      it('keeps the latest receipt per instance and drops it after its ttl', async () => {
        const ttl = ctx.clock ? 30_000 : 400;
        const before = storeNow();
        await store().reportApplied('verifier-a', 5, ttl);
        await store().reportApplied('verifier-b', 7, 10 * ttl);
        await store().reportApplied('verifier-a', 6, ttl);
        const after = storeNow();
        const list = (await store().listApplied()).sort((x, y) => x.instanceId.localeCompare(y.instanceId));
        assert.deepEqual(
          list.map(({ instanceId, seq }) => ({ instanceId, seq })),
          [
            { instanceId: 'verifier-a', seq: 6 },
            { instanceId: 'verifier-b', seq: 7 },
          ],
        );
        for (const r of list) assert.ok(r.reportedAt >= before && r.reportedAt <= after);

        await passStoreTime(ttl + 1);
        assert.deepEqual(
          (await store().listApplied()).map((r) => r.instanceId),
          ['verifier-b'],
          'the expired receipt is gone',
        );
      });

      it('keeps a receipt stale (not gone) for its retention after its ttl; listApplied still counts only live ones', async () => {
        const ttl = ctx.clock ? 30_000 : 300;
        const retain = 4 * ttl;
        const before = storeNow();
        await store().reportApplied('kept', 3, ttl, retain);
        await store().reportApplied('plain', 4, ttl);
        const after = storeNow();
        const held = async () => (await store().listReceipts()).sort((x, y) => x.instanceId.localeCompare(y.instanceId)).map(({ instanceId, seq, live }) => ({ instanceId, seq, live }));
        assert.deepEqual(await held(), [
          { instanceId: 'kept', seq: 3, live: true },
          { instanceId: 'plain', seq: 4, live: true },
        ]);
        for (const r of await store().listReceipts()) assert.ok(r.reportedAt >= before && r.reportedAt <= after);

        await passStoreTime(ttl + 1);
        assert.deepEqual(await held(), [{ instanceId: 'kept', seq: 3, live: false }], 'past its ttl: stale, still held; without retention: gone');
        assert.deepEqual(await store().listApplied(), [], 'a stale receipt is not live');

        // Reporting again makes it live again, and restarts its retention.
        await store().reportApplied('kept', 5, ttl, retain);
        assert.deepEqual(await held(), [{ instanceId: 'kept', seq: 5, live: true }]);
        assert.deepEqual((await store().listApplied()).map((r) => `${r.instanceId}=${r.seq}`), ['kept=5']);

        await passStoreTime(retain + 1);
        assert.deepEqual(await held(), [], 'past its retention: gone');
      });

      it('refuses a retention that is not a positive integer', async () => {
        for (const bad of [0, -1, 1.5, Number.NaN]) {
          await assert.rejects(store().reportApplied('x', 1, 1000, bad), { code: ErrorCodes.INVALID_ARGUMENT }, String(bad));
        }
      });
    });

    describe('lifecycle', () => {
      it('pings while open; after close every call fails with ERR_STORE_UNAVAILABLE', async () => {
        assert.equal(await store().ping(), true);
        await store().close();
        assert.equal(await store().ping(), false);
        await assert.rejects(store().readLog(0, 10), { code: ErrorCodes.STORE_UNAVAILABLE });
        await assert.rejects(store().revoke({ kind: 'jti', id: 'j', until: t.nowMs() + MIN }), {
          code: ErrorCodes.STORE_UNAVAILABLE,
        });
        await assert.rejects(store().subscribe(new FeedCollector()), { code: ErrorCodes.STORE_UNAVAILABLE });
      });
    });
  });
}

function id(): string {
  return randomBytes(6).toString('hex');
}

/** Stands in for SHA-256(refresh token) in base64url: 43 characters. */
function hash(): string {
  return randomBytes(32).toString('base64url');
}

async function waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
