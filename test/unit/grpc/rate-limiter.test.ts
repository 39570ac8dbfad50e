import assert from 'node:assert/strict';
import { parseRateLimit, type RateLimitSpec } from '../../../src/config/rate-limit-spec.js';
import { createRateLimiter, rateLimitKey, TokenBuckets } from '../../../src/grpc/rate-limiter.js';
import type { Caller } from '../../../src/grpc/caller.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { ErrorCodes, TokenAuthorityError } from '../../../src/shared/errors.js';
import { grpcStatusOf } from '../../../src/grpc/status-map.js';
import { status } from '@grpc/grpc-js';

const spec = (text: string): RateLimitSpec => {
  const r = parseRateLimit(text);
  if (!r.ok || !r.spec) throw new Error(`bad spec ${text}`);
  return r.spec;
};
const ipCaller = (peer: string): Caller => ({ peer, loopback: false, identities: [] });
const certCaller = (id: string, peer = '10.0.0.9:4000'): Caller => ({ peer, loopback: false, identities: [id] });

describe('parseRateLimit', () => {
  it('reads count per unit, with the burst defaulting to the count', () => {
    assert.deepEqual(parseRateLimit('200/s'), { ok: true, spec: { perSecond: 200, burst: 200, text: '200/s' } });
    assert.deepEqual(parseRateLimit('120/m:5'), { ok: true, spec: { perSecond: 2, burst: 5, text: '120/m:5' } });
    assert.deepEqual(parseRateLimit(' 36/H '), { ok: true, spec: { perSecond: 0.01, burst: 36, text: '36/H' } });
  });
  it('"off" and "0" disable', () => {
    assert.deepEqual(parseRateLimit('off'), { ok: true, spec: null });
    assert.deepEqual(parseRateLimit('0'), { ok: true, spec: null });
  });
  for (const bad of ['200', '200/d', '-1/s', '1.5/s', '0/s', '10/s:0', 'fast', '']) {
    it(`rejects "${bad}" with examples`, () => {
      const r = parseRateLimit(bad);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.message, /examples|positive integers/);
    });
  }
});

describe('TokenBuckets', () => {
  it('lets a burst through, then refuses with the wait until the next token', () => {
    const clock = new ManualClock();
    const b = new TokenBuckets(spec('10/s:3'), clock, 100);
    for (let i = 0; i < 3; i++) assert.deepEqual(b.take('a'), { ok: true });
    assert.deepEqual(b.take('a'), { ok: false, retryAfterMs: 100 });
    clock.advance(40);
    assert.deepEqual(b.take('a'), { ok: false, retryAfterMs: 60 });
    clock.advance(60);
    assert.deepEqual(b.take('a'), { ok: true });
    assert.equal(b.take('a').ok, false);
  });

  it('refills at the configured rate and never above the burst', () => {
    const clock = new ManualClock();
    const b = new TokenBuckets(spec('2/s:4'), clock, 100);
    for (let i = 0; i < 4; i++) assert.equal(b.take('a').ok, true);
    clock.advance(3_600_000);
    let allowed = 0;
    while (b.take('a').ok) allowed++;
    assert.equal(allowed, 4, 'an hour idle refills to the burst, not beyond');
    clock.advance(1000);
    allowed = 0;
    while (b.take('a').ok) allowed++;
    assert.equal(allowed, 2, 'one second refills two tokens');
  });

  it('keeps callers apart', () => {
    const clock = new ManualClock();
    const b = new TokenBuckets(spec('1/h:1'), clock, 100);
    assert.equal(b.take('a').ok, true);
    assert.equal(b.take('a').ok, false);
    assert.equal(b.take('b').ok, true);
  });

  it('never tracks more callers than the cap, forgetting the least recently seen first', () => {
    const clock = new ManualClock();
    const b = new TokenBuckets(spec('1/h:1'), clock, 3);
    for (const k of ['a', 'b', 'c']) assert.equal(b.take(k).ok, true);
    assert.equal(b.take('a').ok, false, 'a is now the most recently seen');
    assert.equal(b.take('d').ok, true);
    assert.equal(b.size, 3);
    assert.equal(b.take('a').ok, false, 'a was kept: b, the least recently seen, was forgotten');
    assert.equal(b.take('c').ok, false, 'c was kept too');
    for (let i = 0; i < 10_000; i++) b.take(`flood-${i}`);
    assert.equal(b.size, 3, 'a flood of new callers cannot grow the map');
  });

  it('drops buckets that have refilled completely, so idle callers cost no memory', () => {
    const clock = new ManualClock();
    const b = new TokenBuckets(spec('10/s:10'), clock, 1000);
    for (let i = 0; i < 500; i++) b.take(`caller-${i}`);
    assert.equal(b.size, 500);
    clock.advance(2000);
    for (let i = 0; i < 300; i++) b.take('active');
    assert.equal(b.size, 1, 'every refilled bucket was swept by the following calls');
  });
});

describe('createRateLimiter', () => {
  const clock = new ManualClock();
  const limiter = createRateLimiter({
    clock,
    maxCallers: 100,
    limits: {
      Issue: { spec: spec('1/h:2'), setting: 'TA_RATE_LIMIT_ISSUE' },
      Refresh: { spec: spec('1/h:1'), setting: 'TA_RATE_LIMIT_REFRESH' },
      Revoke: { spec: null, setting: 'TA_RATE_LIMIT_REVOKE' },
    },
  });

  it('throws ERR_RATE_LIMITED (RESOURCE_EXHAUSTED) naming the method, the caller, the setting and the wait', () => {
    const c = certCaller('spiffe://corp/login');
    limiter.check('Issue', c);
    limiter.check('Issue', c);
    let err: unknown;
    try {
      limiter.check('Issue', c);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof TokenAuthorityError);
    assert.equal(err.code, ErrorCodes.RATE_LIMITED);
    assert.equal(grpcStatusOf(err.code), status.RESOURCE_EXHAUSTED);
    assert.match(err.message, /^Issue rate limit exceeded for caller spiffe:\/\/corp\/login \(TA_RATE_LIMIT_ISSUE=1\/h:2: 1\/h, burst 2\); retry in 3600000 ms$/);
  });

  it('keeps a separate budget per method', () => {
    const c = ipCaller('10.1.1.1:5000');
    limiter.check('Refresh', c);
    assert.throws(() => limiter.check('Refresh', c), /Refresh rate limit exceeded for caller 10\.1\.1\.1 /);
    limiter.check('Issue', c);
  });

  it('never limits a method whose limit is off, nor one without a limit (Verify)', () => {
    const c = ipCaller('10.2.2.2:5000');
    for (let i = 0; i < 1000; i++) {
      limiter.check('Revoke', c);
      limiter.check('Verify', c);
    }
  });

  it('counts an IP caller across its connections (the port is not part of the key)', () => {
    const first = ipCaller('10.3.3.3:1111');
    limiter.check('Refresh', first);
    assert.throws(() => limiter.check('Refresh', ipCaller('10.3.3.3:2222')), /rate limit exceeded/);
    assert.throws(() => limiter.check('Refresh', ipCaller('ipv4:10.3.3.3:3333')), /rate limit exceeded/);
  });
});

describe('rateLimitKey', () => {
  it('is the certificate identity when there is one, else the IP without port', () => {
    assert.equal(rateLimitKey(certCaller('spiffe://corp/login', '10.0.0.1:99')), 'uri:spiffe://corp/login');
    assert.equal(rateLimitKey(ipCaller('10.0.0.1:99')), 'ip:10.0.0.1');
    assert.equal(rateLimitKey(ipCaller('ipv6:[::1]:5000')), 'ip:::1');
  });
  it('drops the port of an IPv6 peer as grpc-js reports it (no brackets), and maps ::ffff:a.b.c.d to IPv4', () => {
    assert.equal(rateLimitKey(ipCaller('::1:45678')), 'ip:::1');
    assert.equal(rateLimitKey(ipCaller('::1:45679')), 'ip:::1');
    assert.equal(rateLimitKey(ipCaller('2001:db8::7:443')), 'ip:2001:db8::7');
    assert.equal(rateLimitKey(ipCaller('::ffff:10.0.0.1:5000')), 'ip:10.0.0.1');
    assert.equal(rateLimitKey({ peer: 'whatever', address: '::ffff:10.0.0.2', loopback: false, identities: [] }), 'ip:::ffff:10.0.0.2', 'a given address is used as it is');
  });
  it('types certificate identities: a CN never shares the bucket of the URI it spells; DNS names ignore case', () => {
    const cn: Caller = { peer: '10.0.0.1:1', loopback: false, identities: ['spiffe://corp/login'], certificateIdentities: [{ kind: 'cn', value: 'spiffe://corp/login' }] };
    assert.notEqual(rateLimitKey(cn), rateLimitKey(certCaller('spiffe://corp/login')));
    const dns = (value: string): Caller => ({ peer: '10.0.0.1:1', loopback: false, identities: [value], certificateIdentities: [{ kind: 'dns', value }] });
    assert.equal(rateLimitKey(dns('Ops.Corp.Internal')), rateLimitKey(dns('ops.corp.internal')));
  });
  it('cannot be confused between an identity and an address', () => {
    assert.notEqual(rateLimitKey(certCaller('10.0.0.1')), rateLimitKey(ipCaller('10.0.0.1:1')));
  });
});
