import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import { RemoteKeyResolver } from '../../src/verifier/remote-key-resolver.js';
import { ManualClock } from '../../src/shared/clock.js';

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
    const r = new RemoteKeyResolver({ jwksUrl: srv.url, cooldownMs: 10_000, negativeCacheMs: 60_000, clock });
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
    const r = new RemoteKeyResolver({ jwksUrl: srv.url, cooldownMs: 1000, clock });
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
    const r = new RemoteKeyResolver({ jwksUrl: srv.url });
    try {
      assert.equal(await r.start(), false, 'a set whose only key is private is not usable');
      assert.equal(r.get('leaky'), undefined);
    } finally {
      r.stop();
      await srv.close();
    }
  });
});
