import assert from 'node:assert/strict';
import { verify as cryptoVerify } from 'node:crypto';
import { chmod, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { FileKeyStore } from '../../../src/keys/file-key-store.js';
import { KeyManager, type KeyManagerOptions } from '../../../src/keys/key-manager.js';
import { PRIVATE_JWK_MEMBERS } from '../../../src/verifier/jose-rules.js';
import { type KeySetDocument, type KeyStore } from '../../../src/keys/key-store.js';
import { MemoryKeyStore } from '../../../src/keys/memory-key-store.js';
import { SIGNING_ALGORITHMS } from '../../../src/verifier/jose-rules.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { ErrorCodes, isTokenAuthorityError } from '../../../src/shared/errors.js';
import { capturingLogger, GatedStore, makeTempDir, removeTempDir, samplePayload, SaveGate } from './helpers.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const RETAIN = 20 * MINUTE;

function verifyWith(manager: KeyManager, token: string) {
  return jwtVerify(token, createLocalJWKSet({ keys: manager.jwks().keys.map((k) => ({ ...k })) }), { typ: 'at+jwt' });
}

function codeIs(code: string) {
  return (err: unknown) => isTokenAuthorityError(err) && err.code === code;
}

async function stored(store: KeyStore): Promise<KeySetDocument> {
  const doc = await store.load();
  assert.ok(doc, 'store is empty');
  return doc;
}

describe('KeyManager', () => {
  let clock: ManualClock;
  let managers: KeyManager[];
  let dirs: string[];

  beforeEach(() => {
    clock = new ManualClock();
    managers = [];
    dirs = [];
  });

  afterEach(async () => {
    await Promise.all(managers.map((m) => m.stop()));
    await Promise.all(dirs.map(removeTempDir));
  });

  function manager(store: KeyStore, options: Partial<KeyManagerOptions> = {}): KeyManager {
    const m = new KeyManager({
      store,
      algorithm: 'ES256',
      rotationIntervalMs: 0,
      retainMs: RETAIN,
      clock,
      reloadIntervalMs: 0,
      ...options,
    });
    managers.push(m);
    return m;
  }

  async function tempDir(): Promise<string> {
    const dir = await makeTempDir();
    dirs.push(dir);
    return dir;
  }

  describe('options and preconditions', () => {
    it('rejects invalid options with ERR_CONFIG naming the option', () => {
      const store = new MemoryKeyStore();
      assert.throws(() => manager(store, { rotationIntervalMs: -1 }), (err) => codeIs(ErrorCodes.CONFIG)(err) && /rotationIntervalMs/.test((err as Error).message));
      assert.throws(() => manager(store, { retainMs: Number.NaN }), (err) => codeIs(ErrorCodes.CONFIG)(err) && /retainMs/.test((err as Error).message));
      assert.throws(() => manager(store, { algorithm: 'HS256' as never }), codeIs(ErrorCodes.CONFIG));
    });

    it('has no signer and refuses to rotate before start', async () => {
      const km = manager(new MemoryKeyStore());
      assert.throws(() => km.signer(), codeIs(ErrorCodes.FAILED_PRECONDITION));
      await assert.rejects(km.rotate(), codeIs(ErrorCodes.FAILED_PRECONDITION));
      assert.deepEqual(km.jwks().keys, []);
    });

    it('derives the JWKS max-age from the rotation interval', () => {
      const store = new MemoryKeyStore();
      assert.equal(manager(store, { rotationIntervalMs: 0 }).jwksMaxAgeSec(), 3600);
      assert.equal(manager(store, { rotationIntervalMs: HOUR }).jwksMaxAgeSec(), 360);
      assert.equal(manager(store, { rotationIntervalMs: MINUTE }).jwksMaxAgeSec(), 60);
      assert.equal(manager(store, { rotationIntervalMs: 30 * 24 * HOUR }).jwksMaxAgeSec(), 3600);
    });
  });

  describe('lifecycle', () => {
    it('initialises an empty store with an active and a next key', async () => {
      const store = new MemoryKeyStore();
      const km = manager(store);
      await km.start();
      const list = km.list();
      assert.deepEqual(list.map((k) => k.state), ['active', 'next']);
      assert.ok(list.every((k) => k.alg === 'ES256' && k.createdAt === clock.nowMs()));
      assert.equal(list[0]!.activatedAt, clock.nowMs());
      assert.equal(km.signer().kid, list[0]!.kid);
      assert.deepEqual(km.jwks().keys.map((k) => k.kid), list.map((k) => k.kid), 'active first, then next');
      assert.ok(km.resolver.get(list[1]!.kid), 'next key is resolvable before it signs');
      const doc = await stored(store);
      assert.equal(doc.version, 1);
      assert.deepEqual(doc.keys.map((k) => k.kid), list.map((k) => k.kid));
      assert.equal(km.jwksJson(), km.jwksJson(), 'cached');
      assert.deepEqual(JSON.parse(km.jwksJson()), km.jwks());
    });

    it('rotates: next signs, the old key is retired yet still verifies, a new next appears', async () => {
      const store = new MemoryKeyStore();
      const km = manager(store);
      await km.start();
      const [active, next] = km.list();
      const oldToken = km.signer().sign(samplePayload({ jti: 'old' }));
      const jsonBefore = km.jwksJson();
      let changes = 0;
      km.onChange(() => changes++);

      clock.advance(5 * MINUTE);
      const info = await km.rotate();

      assert.equal(info.kid, next!.kid);
      assert.equal(info.activatedAt, clock.nowMs());
      assert.equal(changes, 1);
      const list = km.list();
      assert.deepEqual(list.map((k) => k.state), ['active', 'next', 'retired']);
      assert.equal(list[0]!.kid, next!.kid);
      assert.equal(list[2]!.kid, active!.kid);
      assert.equal(list[2]!.retiredAt, clock.nowMs());
      assert.equal(list[2]!.removeAfter, clock.nowMs() + RETAIN);
      assert.ok(![active!.kid, next!.kid].includes(list[1]!.kid));
      assert.notEqual(km.jwksJson(), jsonBefore);
      assert.deepEqual(km.jwks().keys.map((k) => k.kid), list.map((k) => k.kid));

      const newToken = km.signer().sign(samplePayload({ jti: 'new' }));
      const verifiedNew = await verifyWith(km, newToken);
      assert.equal(verifiedNew.protectedHeader.kid, next!.kid);
      const verifiedOld = await verifyWith(km, oldToken);
      assert.equal(verifiedOld.protectedHeader.kid, active!.kid);

      const retired = km.resolver.get(active!.kid);
      assert.ok(retired);
      assert.equal(retired.alg, 'ES256');
      const [h, p, s] = oldToken.split('.') as [string, string, string];
      assert.ok(cryptoVerify('sha256', Buffer.from(`${h}.${p}`), { key: retired.key, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url')));
      assert.equal((await stored(store)).version, 2);
    });

    it('removes a retired key for good once retainMs has passed', async () => {
      const store = new MemoryKeyStore();
      const km = manager(store);
      await km.start();
      const oldKid = km.signer().kid;
      const oldToken = km.signer().sign(samplePayload());
      await km.rotate();
      const removeAfter = km.list().find((k) => k.kid === oldKid)!.removeAfter!;

      clock.set(removeAfter - 1);
      await km.runMaintenance();
      assert.ok(km.resolver.get(oldKid), 'still published one ms before removeAfter');
      assert.ok((await stored(store)).keys.some((k) => k.kid === oldKid));

      let changes = 0;
      km.onChange(() => changes++);
      clock.set(removeAfter);
      await km.runMaintenance();
      assert.equal(changes, 1);
      assert.equal(km.resolver.get(oldKid), undefined);
      assert.ok(!km.jwks().keys.some((k) => k.kid === oldKid));
      assert.ok(!km.list().some((k) => k.kid === oldKid));
      assert.ok(!(await stored(store)).keys.some((k) => k.kid === oldKid), 'removed from the store');
      await assert.rejects(verifyWith(km, oldToken), { code: 'ERR_JWKS_NO_MATCHING_KEY' });
      assert.deepEqual(km.list().map((k) => k.state), ['active', 'next']);
    });

    it('serialises concurrent rotations within one process', async () => {
      const store = new GatedStore(new MemoryKeyStore(), new SaveGate());
      const km = manager(store);
      await km.start();
      const savesBefore = store.saves;
      const [first, second] = await Promise.all([km.rotate(), km.rotate()]);
      assert.notEqual(first.kid, second.kid);
      assert.equal(store.saves - savesBefore, 2, 'no compare-and-set conflict with itself');
      assert.deepEqual(km.list().map((k) => k.state), ['active', 'next', 'retired', 'retired']);
      assert.equal((await stored(store)).version, 3);
    });

    it('repairs a stored set that lacks a next key', async () => {
      const store = new MemoryKeyStore();
      const km1 = manager(store);
      await km1.start();
      const doc = await stored(store);
      await store.save({ version: 2, keys: doc.keys.filter((k) => k.state === 'active') }, 1);
      const km2 = manager(store);
      await km2.start();
      assert.deepEqual(km2.list().map((k) => k.state), ['active', 'next']);
      assert.equal(km2.signer().kid, km1.signer().kid);
      assert.equal((await stored(store)).keys.length, 2);
    });

    for (const alg of SIGNING_ALGORITHMS) {
      it(`publishes no private member in the JWKS (${alg})`, async () => {
        const km = manager(new MemoryKeyStore(), { algorithm: alg });
        await km.start();
        await km.rotate();
        const jwks = JSON.parse(km.jwksJson()) as { keys: Record<string, unknown>[] };
        assert.equal(jwks.keys.length, 3);
        for (const jwk of [...jwks.keys, ...km.jwks().keys]) {
          for (const member of PRIVATE_JWK_MEMBERS) assert.ok(!(member in jwk), `JWKS key has "${member}"`);
          assert.equal(jwk.alg, alg);
          assert.equal(jwk.use, 'sig');
          assert.equal(km.resolver.get(String(jwk.kid))?.key.type, 'public');
        }
        for (const info of km.list()) assert.deepEqual(Object.keys(info).filter((k) => /jwk/i.test(k)), []);
        const token = km.signer().sign(samplePayload());
        assert.equal((await verifyWith(km, token)).protectedHeader.alg, alg);
      });
    }

    it('never logs private key material', async () => {
      const { logger, lines } = capturingLogger();
      const store = new MemoryKeyStore();
      const km = manager(store, { logger, rotationIntervalMs: HOUR });
      await km.start();
      const secrets = new Set<string>();
      const collect = async () => (await stored(store)).keys.forEach((k) => secrets.add(k.privateJwk.d));
      await collect();
      await km.rotate();
      await collect();
      clock.advance(HOUR + RETAIN);
      await km.runMaintenance();
      await collect();
      assert.ok(lines.length >= 3, 'expected lifecycle log lines');
      const logged = JSON.stringify(lines);
      for (const d of secrets) assert.ok(!logged.includes(d), 'a private key reached the log');
      assert.doesNotMatch(logged, /privateJwk|"d":/);
    });
  });

  describe('scheduled rotation', () => {
    it('rotates on its timer when the injected clock passes the interval, with an unref\'d timer', async function () {
      this.timeout(5000);
      const km = manager(new MemoryKeyStore(), { rotationIntervalMs: HOUR, reloadIntervalMs: 5 });
      await km.start();
      const timer = (km as unknown as { timer: NodeJS.Timeout | undefined }).timer;
      assert.ok(timer, 'a timer is scheduled');
      assert.equal(timer.hasRef(), false, 'the timer must not keep the process alive');
      const [active, next] = km.list();
      const rotated = new Promise<void>((resolve) => {
        const off = km.onChange(() => {
          if (km.signer().kid !== active!.kid) {
            off();
            resolve();
          }
        });
      });
      clock.advance(HOUR);
      await rotated;
      assert.equal(km.signer().kid, next!.kid);
      assert.equal(km.list().find((k) => k.kid === active!.kid)?.state, 'retired');
    });

    it('is driven by the stored activatedAt, so a restart neither resets nor repeats it', async () => {
      const store = new FileKeyStore(join(await tempDir(), 'keys'));
      const km1 = manager(store, { rotationIntervalMs: HOUR });
      await km1.start();
      const start = clock.nowMs();
      const firstKid = km1.signer().kid;
      clock.advance(40 * MINUTE);
      await km1.stop();

      const km2 = manager(new FileKeyStore(store.dir), { rotationIntervalMs: HOUR });
      await km2.start();
      assert.equal(km2.signer().kid, firstKid);
      clock.set(start + HOUR - 1);
      await km2.runMaintenance();
      assert.equal(km2.signer().kid, firstKid, 'not due yet');
      clock.set(start + HOUR);
      await km2.runMaintenance();
      assert.notEqual(km2.signer().kid, firstKid, 'due one interval after the original activation');
      assert.equal(km2.list()[0]!.activatedAt, start + HOUR);
      await km2.runMaintenance();
      assert.equal(km2.list().filter((k) => k.state === 'retired').length, 1, 'rotated once');
    });

    it('does not rotate with rotationIntervalMs = 0', async () => {
      const km = manager(new MemoryKeyStore(), { rotationIntervalMs: 0 });
      await km.start();
      const kid = km.signer().kid;
      clock.advance(365 * 24 * HOUR);
      await km.runMaintenance();
      assert.equal(km.signer().kid, kid);
    });
  });

  describe('several processes on one store', () => {
    it('makes two managers rotating concurrently perform exactly one rotation', async () => {
      const dir = join(await tempDir(), 'keys');
      const gate = new SaveGate();
      const storeA = new GatedStore(new FileKeyStore(dir), gate);
      const storeB = new GatedStore(new FileKeyStore(dir), gate);
      const a = manager(storeA);
      const b = manager(storeB);
      await a.start();
      await b.start();
      const before = await stored(storeA);
      const next = before.keys.find((k) => k.state === 'next')!;
      const savesBefore = storeA.saves + storeB.saves;

      gate.arm(2);
      const [ra, rb] = await Promise.all([a.rotate(), b.rotate()]);

      assert.equal(ra.kid, next.kid);
      assert.equal(rb.kid, next.kid);
      assert.equal(storeA.saves + storeB.saves - savesBefore, 2, 'both tried, neither retried');
      const after = await stored(storeA);
      assert.equal(after.version, before.version + 1, 'exactly one write won');
      assert.equal(after.keys.filter((k) => k.state === 'retired').length, 1);
      assert.equal(after.keys.length, 3);
      assert.equal(a.signer().kid, next.kid);
      assert.equal(b.signer().kid, next.kid);
      assert.deepEqual(a.jwks(), b.jwks());
    });

    it('makes two scheduled managers rotate exactly once when both find rotation due', async () => {
      const dir = join(await tempDir(), 'keys');
      const gate = new SaveGate();
      const storeA = new GatedStore(new FileKeyStore(dir), gate);
      const storeB = new GatedStore(new FileKeyStore(dir), gate);
      const a = manager(storeA, { rotationIntervalMs: HOUR });
      const b = manager(storeB, { rotationIntervalMs: HOUR });
      await a.start();
      await b.start();
      const version = (await stored(storeA)).version;

      clock.advance(HOUR);
      gate.arm(2);
      await Promise.all([a.runMaintenance(), b.runMaintenance()]);

      const after = await stored(storeA);
      assert.equal(after.version, version + 1);
      assert.equal(after.keys.filter((k) => k.state === 'retired').length, 1, 'the loser must not rotate again');
      assert.equal(a.signer().kid, b.signer().kid);
    });

    it('lets two managers starting on an empty store agree on one key set', async () => {
      const gate = new SaveGate();
      const inner = new MemoryKeyStore();
      const a = manager(new GatedStore(inner, gate));
      const b = manager(new GatedStore(inner, gate));
      gate.arm(2);
      await Promise.all([a.start(), b.start()]);
      assert.deepEqual(a.list(), b.list());
      assert.equal((await stored(inner)).version, 1);
    });

    it('picks up another process\'s rotation on reload and notifies listeners', async () => {
      const store = new MemoryKeyStore();
      const a = manager(store);
      const b = manager(store);
      await a.start();
      await b.start();
      assert.equal(await a.reload(), false);
      let changes = 0;
      a.onChange(() => changes++);
      const rotated = await b.rotate();
      assert.equal(await a.reload(), true);
      assert.equal(changes, 1);
      assert.equal(a.signer().kid, rotated.kid);
      assert.deepEqual(a.jwks(), b.jwks());
    });

    it('reloads on an unknown kid, at most once per cooldown', async () => {
      const store = new GatedStore(new MemoryKeyStore(), new SaveGate());
      const a = manager(store);
      await a.start();
      const other = manager(store);
      await other.start();
      await other.rotate();
      const newest = await other.rotate();
      assert.equal(a.resolver.get(newest.kid), undefined);

      const loads = store.loads;
      const [k1, k2] = await Promise.all([a.resolver.resolveUnknown!(newest.kid), a.resolver.resolveUnknown!(newest.kid)]);
      assert.equal(k1?.kid, newest.kid);
      assert.equal(k2?.kid, newest.kid);
      assert.equal(store.loads - loads, 1, 'concurrent lookups share one reload');
      assert.equal(await a.resolver.resolveUnknown!('made-up-kid'), undefined);
      assert.equal(store.loads - loads, 1, 'within the cooldown, no further store read');
      clock.advance(1000);
      assert.equal(await a.resolver.resolveUnknown!('made-up-kid'), undefined);
      assert.equal(store.loads - loads, 2);
    });
  });

  describe('algorithm change', () => {
    it('does not switch silently: the next rotation generates a key of the new algorithm', async () => {
      const store = new MemoryKeyStore();
      const es = manager(store, { algorithm: 'ES256' });
      await es.start();
      await es.stop();

      const { logger, lines } = capturingLogger();
      const ed = manager(store, { algorithm: 'EdDSA', logger });
      await ed.start();
      assert.equal(ed.signer().alg, 'ES256', 'the active key keeps signing');
      assert.ok(lines.some((l) => l.level === 'warn' && /another algorithm than configured/.test(l.msg ?? '')));
      assert.deepEqual(ed.list().map((k) => k.alg), ['ES256', 'ES256'], 'start does not rewrite the set');

      const oldToken = ed.signer().sign(samplePayload());
      await ed.rotate();
      assert.equal(ed.signer().alg, 'ES256', 'the published next key signs first');
      assert.deepEqual(ed.list().map((k) => `${k.state}:${k.alg}`), ['active:ES256', 'next:EdDSA', 'retired:ES256']);
      await ed.rotate();
      assert.equal(ed.signer().alg, 'EdDSA');
      assert.equal((await verifyWith(ed, ed.signer().sign(samplePayload()))).protectedHeader.alg, 'EdDSA');
      assert.equal((await verifyWith(ed, oldToken)).protectedHeader.alg, 'ES256');
    });
  });

  describe('with a FileKeyStore', () => {
    it('keeps the same kids across a restart, with a 0700 directory and a 0600 file', async () => {
      const dir = join(await tempDir(), 'state', 'keys');
      const km1 = manager(new FileKeyStore(dir));
      await km1.start();
      await km1.rotate();
      const token = km1.signer().sign(samplePayload());
      const list = km1.list();
      await km1.stop();

      assert.equal((await stat(dir)).mode & 0o777, 0o700);
      assert.equal((await stat(join(dir, 'keys.json'))).mode & 0o777, 0o600);

      const km2 = manager(new FileKeyStore(dir));
      await km2.start();
      assert.deepEqual(km2.list(), list);
      assert.equal(km2.signer().kid, km1.signer().kid);
      assert.equal(km2.jwksJson(), km1.jwksJson());
      assert.equal((await verifyWith(km2, token)).protectedHeader.kid, list[0]!.kid);
    });

    it('refuses to start on a group-readable keys.json', async () => {
      const dir = await tempDir();
      await manager(new FileKeyStore(dir)).start();
      await chmod(join(dir, 'keys.json'), 0o644);
      await assert.rejects(manager(new FileKeyStore(dir)).start(), (err) => {
        assert.ok(codeIs(ErrorCodes.KEY)(err));
        assert.ok((err as Error).message.includes(`chmod 600 ${join(dir, 'keys.json')}`));
        return true;
      });
    });

    it('refuses to start on a corrupt keys.json with a clear error', async () => {
      const dir = await tempDir();
      await writeFile(join(dir, 'keys.json'), 'not json at all', { mode: 0o600 });
      const km = manager(new FileKeyStore(dir));
      await assert.rejects(km.start(), (err) => codeIs(ErrorCodes.KEY)(err) && (err as Error).message.includes(`${join(dir, 'keys.json')} is corrupt`));
      assert.throws(() => km.signer(), codeIs(ErrorCodes.FAILED_PRECONDITION));
    });
  });
});
