import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import { createRemoteKeyResolver } from '../../../src/verifier/key-resolvers.js';
import { ManualClock } from '../../../src/shared/clock.js';

/** A real HTTP JWKS endpoint that counts requests and can fail on demand. */
async function jwksServer() {
  const jwk = (kid: string) => ({ ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' });
  const state = { keys: [jwk('k1')], requests: 0, fail: false, maxAge: 300 };
  const server: Server = createServer((_req, res) => {
    state.requests++;
    if (state.fail) {
      res.writeHead(500).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': `public, max-age=${state.maxAge}` }).end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  return { state, url, jwk, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('RemoteKeyResolver (JWKS cache)', () => {
  it('a flood of garbage kids causes at most one fetch per cooldown', async () => {
    const srv = await jwksServer();
    const clock = new ManualClock(Date.now());
    const r = createRemoteKeyResolver({ jwksUrl: srv.url, cooldownMs: 10_000, negativeCacheMs: 60_000, clock });
    try {
      assert.equal(await r.start(), true);
      assert.equal(srv.state.requests, 1);
      await Promise.all(Array.from({ length: 1000 }, (_, i) => r.resolveUnknown(`garbage-${i}`)));
      assert.equal(srv.state.requests, 2, 'one refetch for the whole flood (single-flight)');
      await Promise.all(Array.from({ length: 1000 }, (_, i) => r.resolveUnknown(`more-garbage-${i}`)));
      assert.equal(srv.state.requests, 2, 'no refetch within the cooldown');
      clock.advance(10_001);
      await Promise.all(Array.from({ length: 1000 }, (_, i) => r.resolveUnknown(`garbage-${i}`)));
      assert.equal(srv.state.requests, 2, 'negative cache: the same garbage kids are not looked for again');
      await r.resolveUnknown('fresh-garbage');
      assert.equal(srv.state.requests, 3, 'after the cooldown, one more fetch');
    } finally {
      r.stop();
      await srv.close();
    }
  });

  it('finds a newly published key on an unknown kid, and keeps the last good set when a fetch fails', async () => {
    const srv = await jwksServer();
    const clock = new ManualClock(Date.now());
    const r = createRemoteKeyResolver({ jwksUrl: srv.url, cooldownMs: 1000, clock });
    try {
      await r.start();
      srv.state.keys.push(srv.jwk('k2'));
      assert.equal(r.get('k2'), undefined);
      clock.advance(1001);
      assert.equal((await r.resolveUnknown('k2'))?.kid, 'k2');
      srv.state.fail = true;
      clock.advance(1001);
      assert.equal(await r.resolveUnknown('k3'), undefined);
      assert.ok(r.get('k1') && r.get('k2'), 'last good set kept after a failed fetch');
      assert.ok(r.stats().failures >= 1);
    } finally {
      r.stop();
      await srv.close();
    }
  });

  it('refuses a JWKS carrying private key material or no usable key', async () => {
    const srv = await jwksServer();
    const priv = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
    srv.state.keys = [{ ...priv, kid: 'leaky', alg: 'ES256' } as never];
    const r = createRemoteKeyResolver({ jwksUrl: srv.url });
    try {
      assert.equal(await r.start(), false, 'a set whose only key is private is not usable');
      assert.equal(r.get('leaky'), undefined);
    } finally {
      r.stop();
      await srv.close();
    }
  });

  describe('hostile JWKS responses (M6)', () => {
    const goodJwks = JSON.stringify({ keys: [{ ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'ES256', use: 'sig' }] });
    /** A real server whose handler the test writes; counts requests and body bytes it got out. */
    async function hostile(handler: (res: import('node:http').ServerResponse, sent: { bytes: number }) => void) {
      const sent = { bytes: 0, requests: 0 };
      const server = createServer((_req, res) => {
        sent.requests++;
        handler(res, sent);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
      return { sent, url, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
    }
    /** Writes 64 KiB chunks as fast as the client takes them, until it goes away or `limit` is reached. */
    function pump(res: import('node:http').ServerResponse, sent: { bytes: number }, limit: number): void {
      const chunk = Buffer.alloc(65_536, 0x20);
      const go = () => {
        while (sent.bytes < limit && !res.destroyed) {
          sent.bytes += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', go);
        }
        if (!res.destroyed) res.end();
      };
      res.on('close', () => undefined);
      go();
    }

    it('a one-year max-age neither overflows the refresh timer nor refetches: refresh within an hour', async () => {
      const srv = await hostile((res) => res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=31536000' }).end(goodJwks));
      const clock = new ManualClock(Date.now());
      const r = createRemoteKeyResolver({ jwksUrl: srv.url, clock });
      try {
        assert.equal(await r.start(), true);
        const inMs = (r.stats().nextRefreshAt ?? 0) - clock.nowMs();
        assert.ok(inMs > 0 && inMs <= 3_600_000, `next refresh in ${inMs} ms`);
        await new Promise((done) => setTimeout(done, 200)); // an overflowed timer would have fired ~200 times by now
        assert.equal(srv.sent.requests, 1);
      } finally {
        r.stop();
        await srv.close();
      }
    });

    it('Cache-Control is parsed as directives: x-max-age and s-maxage are not max-age, case does not matter', async () => {
      const headers = ['private, x-max-age=1, MAX-AGE=600', 's-maxage=1, max-age=600', 'max-age="600"'];
      for (const cc of headers) {
        const srv = await hostile((res) => res.writeHead(200, { 'content-type': 'application/json', 'cache-control': cc }).end(goodJwks));
        const clock = new ManualClock(Date.now());
        const r = createRemoteKeyResolver({ jwksUrl: srv.url, clock });
        try {
          assert.equal(await r.start(), true);
          assert.equal((r.stats().nextRefreshAt ?? 0) - clock.nowMs(), 480_000, `0.8 × 600 s for "${cc}"`);
        } finally {
          r.stop();
          await srv.close();
        }
      }
    });

    it('a declared content-length above the limit is refused before the body is read', async () => {
      const srv = await hostile((res, sent) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(300 * 1024 * 1024) });
        pump(res, sent, 300 * 1024 * 1024);
      });
      const r = createRemoteKeyResolver({ jwksUrl: srv.url, timeoutMs: 20_000 });
      try {
        assert.equal(await r.start(), false);
        assert.ok(srv.sent.bytes < 32 * 1024 * 1024, `the server got only ${srv.sent.bytes} bytes out before the verifier hung up`);
      } finally {
        r.stop();
        await srv.close();
      }
    });

    it('an endless chunked body is cut at the limit while streaming', async () => {
      const srv = await hostile((res, sent) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        pump(res, sent, 300 * 1024 * 1024);
      });
      const r = createRemoteKeyResolver({ jwksUrl: srv.url, timeoutMs: 20_000 });
      const heapBefore = process.memoryUsage().arrayBuffers;
      try {
        assert.equal(await r.start(), false);
        assert.ok(srv.sent.bytes < 32 * 1024 * 1024, `the server got only ${srv.sent.bytes} bytes out before the verifier hung up`);
        assert.ok(process.memoryUsage().arrayBuffers - heapBefore < 64 * 1024 * 1024, 'nothing like the whole body was buffered');
      } finally {
        r.stop();
        await srv.close();
      }
    });
  });
});
