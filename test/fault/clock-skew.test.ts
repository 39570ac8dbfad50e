import assert from 'node:assert/strict';
import { ManualClock, type Clock } from '../../src/shared/clock.js';
import { createVerifier } from '../../src/verifier/index.js';
import { startTestAuthority, type TestAuthority } from '../helpers/authority.js';
import { outcomeOf, outcomeOfResult } from '../helpers/load.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { startSidecarProcess, type SidecarProcess } from '../helpers/sidecar.js';
import { seededSuite } from '../helpers/seeded-random.js';

const SECOND = 1000;

/** The signed `iat` of a token (seconds). */
function issuedAt(token: string): number {
  return (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { iat: number }).iat;
}

/** The real clock moved by a settable offset: an authority host whose clock is wrong. */
class OffsetClock implements Clock {
  offsetMs = 0;
  nowMs(): number {
    return Date.now() + this.offsetMs;
  }
}

describe('fault: clock skew between the authority and a verifier', function () {
  seededSuite('fault/clock-skew'); // no random choices here yet: the seed is printed all the same
  this.timeout(60_000);

  describe('an in-process verifier whose clock (ManualClock) is off', () => {
    let ta: TestAuthority;
    before(async () => {
      ta = await startTestAuthority();
    });
    after(() => ta?.close());

    for (const skewMs of [30 * SECOND, 5 * SECOND]) {
      it(`with clockSkewMs ${skewMs}: accepts up to the leeway either way, rejects beyond it with the reason`, async () => {
        const clock = new ManualClock();
        const verifier = createVerifier({ issuer: ta.config.issuer, keys: ta.running.keys.resolver, clock, clockSkewMs: skewMs, tokenCacheSize: 0 });
        // A 1-second token, so a verifier ahead of the issuer meets its expiry within the leeway.
        const { accessToken } = await ta.client.issue({ subject: 'skew', audience: ['orders'], accessTtlSeconds: 1 });
        const iatMs = issuedAt(accessToken) * SECOND;
        const expMs = iatMs + SECOND;
        const at = (ms: number) => {
          clock.set(ms);
          return verifier.verifySync(accessToken);
        };

        // Verifier behind the issuer: the token looks issued in its future.
        assert.equal(outcomeOfResult(at(iatMs - (skewMs - SECOND))), 'VALID', 'behind by less than the leeway');
        assert.equal(outcomeOfResult(at(iatMs - skewMs)), 'VALID', 'behind by exactly the leeway');
        const early = at(iatMs - skewMs - SECOND);
        assert.equal(outcomeOfResult(early), 'NOT_YET_VALID', 'behind by more than the leeway');
        assert.ok(!early.valid && /not valid yet \(nbf\)/.test(early.detail), `detail names the claim: ${!early.valid && early.detail}`);

        // Verifier ahead of the issuer: the token looks older; its exp is honoured with the leeway.
        assert.equal(outcomeOfResult(at(expMs + skewMs - SECOND)), 'VALID', 'ahead: expired by less than the leeway');
        const late = at(expMs + skewMs);
        assert.equal(outcomeOfResult(late), 'EXPIRED', 'ahead: expired by the full leeway');
        assert.ok(!late.valid && /expired \(exp\)/.test(late.detail), `detail names the claim: ${!late.valid && late.detail}`);
        assert.equal(outcomeOfResult(at(expMs + skewMs + 60 * SECOND)), 'EXPIRED');
        await verifier.stop();
      });
    }
  });

  describe('a real sidecar process (TA_CLOCK_SKEW 30s) and an authority whose clock is off', () => {
    let redis: RedisServer;
    let ta: TestAuthority;
    let sidecar: SidecarProcess;
    const clock = new OffsetClock();

    before(async () => {
      redis = await startRedis();
      ta = await startTestAuthority({ TA_REDIS_URL: redis.url }, { clock });
      sidecar = await startSidecarProcess({ authorityHttpPort: ta.running.httpPort, redisUrl: redis.url, instanceId: 'skew-sidecar', env: { TA_CLOCK_SKEW: '30s' } });
    });
    after(async () => {
      await sidecar?.stop();
      await ta?.close();
      await redis?.stop();
    });

    // 15 s either side of the 30 s leeway: robust to second rounding and to the time the calls take.
    const cases = [
      { offsetS: +15, ttl: 60, expected: 'VALID', what: 'authority 15 s ahead (the sidecar sees a token from its future, within the leeway)' },
      { offsetS: +45, ttl: 60, expected: 'NOT_YET_VALID', what: 'authority 45 s ahead (beyond the leeway)' },
      { offsetS: -15, ttl: 1, expected: 'VALID', what: 'authority 15 s behind, 1 s token (expired at the sidecar by less than the leeway)' },
      { offsetS: -45, ttl: 1, expected: 'EXPIRED', what: 'authority 45 s behind, 1 s token (expired beyond the leeway)' },
    ];
    for (const c of cases) {
      it(`${c.what}: ${c.expected}`, async () => {
        clock.offsetMs = c.offsetS * SECOND;
        const { accessToken } = await ta.client.issue({ subject: 'skew', audience: ['orders'], accessTtlSeconds: c.ttl });
        const res = await sidecar.client.verify({ token: accessToken });
        assert.equal(outcomeOf(res), c.expected, res.detail);
        if (c.expected !== 'VALID') assert.match(res.detail, c.expected === 'EXPIRED' ? /\(exp\)/ : /\(nbf\)/);
      });
    }
  });
});
