/**
 * OpenTelemetry tracing, end to end: a real authority and a real sidecar (Redis behind both) run the
 * real OTLP/HTTP exporter against a receiver this test starts; calls carry a W3C `traceparent` in
 * gRPC metadata and HTTP headers. Checked: one span per call with its name, kind, attributes and
 * status; its parent is the caller's span and its trace the caller's trace; the store's Redis calls
 * are child spans of the call's span; no token is anywhere in what is exported; and nothing is
 * exported while tracing is off, even with an endpoint configured.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { credentials, Metadata } from '@grpc/grpc-js';
import { loadConfig } from '../../../src/config/config.js';
import { AuthorizationClient, CheckRequest, type CheckResponse } from '../../../src/gen/envoy/service/auth/v3/external_auth.js';
import { startSidecar } from '../../../src/sidecar/sidecar-server.js';
import { createMetrics } from '../../../src/telemetry/metrics.js';
import { silentLogger } from '../../../src/shared/logger.js';
import { startTestAuthority, TEST_ISSUER, type TestAuthority } from '../../helpers/authority.js';
import { authorityClient, expectStatus } from '../../helpers/grpc-client.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../../helpers/otlp-receiver.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';
import { recordingLogger } from '../../helpers/recording-logger.js';

const AUD = 'orders';
const SERVER = 2;
const CLIENT = 3;
const SERVICE = 'tokenauthority.v1.TokenAuthorityService';
const REFUSED_REFRESH = 16; // UNAUTHENTICATED: a client error

/** A caller's span: a fresh trace id and span id, as `traceparent` (sampled unless told). */
function callerSpan(sampled = true) {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-${sampled ? '01' : '00'}` };
}

function metadataWith(traceparent: string): Metadata {
  const md = new Metadata();
  md.set('traceparent', traceparent);
  return md;
}

/** The one span of the caller's trace whose parent is the caller's span. */
function serverSpanOf(spans: ReceivedSpan[], caller: { traceId: string; spanId: string }, name: string): ReceivedSpan {
  const found = spans.filter((s) => s.traceId === caller.traceId && s.parentSpanId === caller.spanId);
  assert.equal(found.length, 1, `one span below the caller's span for ${name}, got ${JSON.stringify(found.map((s) => s.name))} (all: ${JSON.stringify(spans.map((s) => s.name))})`);
  const span = found[0]!;
  assert.equal(span.name, name);
  assert.equal(span.kind, SERVER, `${name} is a SERVER span`);
  return span;
}

const childrenOf = (spans: ReceivedSpan[], parent: ReceivedSpan) => spans.filter((s) => s.parentSpanId === parent.spanId);

function assertRedisChildren(spans: ReceivedSpan[], parent: ReceivedSpan, ops: string[]): void {
  const children = childrenOf(spans, parent);
  assert.deepEqual(children.map((s) => s.name).sort(), ops.map((op) => `redis ${op}`).sort(), `Redis child spans of ${parent.name}`);
  for (const c of children) {
    assert.equal(c.traceId, parent.traceId);
    assert.equal(c.kind, CLIENT);
    // Exactly these: no key, no argument (refresh keys are HMACs of tokens).
    assert.deepEqual(Object.keys(c.attributes).sort(), ['db.operation.name', 'db.system', 'db.system.name']);
    assert.equal(c.attributes['db.system.name'], 'redis');
  }
}

describe('OpenTelemetry tracing (real OTLP/HTTP exporter, receiver started by the test)', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  const receivers: OtlpReceiver[] = [];
  const receiver = async () => {
    const r = await startOtlpReceiver();
    receivers.push(r);
    return r;
  };

  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    for (const r of receivers) await r.stop();
    await redis?.stop();
  });

  describe('the authority (OTLP http/protobuf, the default)', () => {
    let otlp: OtlpReceiver;
    let ta: TestAuthority;
    const tokens: string[] = [];
    const calls = {
      issue: callerSpan(),
      verifyValid: callerSpan(),
      verifyInvalid: callerSpan(),
      refresh: callerSpan(),
      refreshBad: callerSpan(),
      revoke: callerSpan(),
      unsampled: callerSpan(false),
      jwks: callerSpan(),
      oauthToken: callerSpan(),
      probes: callerSpan(),
    };
    let spans: ReceivedSpan[];
    let issued: { accessToken: string; refreshToken: string; tokenId: string; keyId: string; sessionId: string };

    before(async () => {
      otlp = await receiver();
      // The long schedule delay means every span below reaches the receiver only through stop()'s flush.
      ta = await startTestAuthority({ TA_REDIS_URL: redis.url, OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '600000' });
      assert.ok(ta.config.tracing, 'tracing on');
      assert.equal(ta.config.tracing.protocol, 'http/protobuf');

      issued = await ta.client.issue({ subject: 'alice', audience: [AUD], scopes: ['read'] }, metadataWith(calls.issue.traceparent));
      tokens.push(issued.accessToken, issued.refreshToken);
      assert.equal((await ta.client.verify({ token: issued.accessToken, audience: AUD }, metadataWith(calls.verifyValid.traceparent))).valid, true);
      assert.equal((await ta.client.verify({ token: issued.accessToken, audience: 'elsewhere' }, metadataWith(calls.verifyInvalid.traceparent))).valid, false);
      const refreshed = await ta.client.refresh({ refreshToken: issued.refreshToken }, metadataWith(calls.refresh.traceparent));
      tokens.push(refreshed.accessToken, refreshed.refreshToken);
      await expectStatus(ta.client.refresh({ refreshToken: 'not-a-refresh-token' }, metadataWith(calls.refreshBad.traceparent)), REFUSED_REFRESH);
      await ta.client.revoke({ target: { $case: 'token', token: refreshed.accessToken }, reason: 'test' }, metadataWith(calls.revoke.traceparent));
      assert.equal((await ta.client.verify({ token: issued.accessToken, audience: AUD }, metadataWith(calls.unsampled.traceparent))).valid, true);

      const jwks = await fetch(`${ta.httpBase}/.well-known/jwks.json`, { headers: { traceparent: calls.jwks.traceparent } });
      assert.equal(jwks.status, 200);
      for (const path of ['/healthz', '/metrics']) assert.equal((await fetch(`${ta.httpBase}${path}`, { headers: { traceparent: calls.probes.traceparent } })).status, 200);
      const oauth = await fetch(`${ta.httpBase}/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', traceparent: calls.oauthToken.traceparent },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshed.refreshToken }).toString(),
      });
      assert.equal(oauth.status, 200, await oauth.clone().text());
      const body = (await oauth.json()) as { access_token: string; refresh_token: string };
      tokens.push(body.access_token, body.refresh_token);

      assert.equal(otlp.exports.length, 0, 'nothing exported before the schedule delay or stop');
      await ta.close();
      spans = otlp.spans();
    });

    it('exports over OTLP/HTTP protobuf to <endpoint>/v1/traces, with the service name and the SDK resource', () => {
      assert.ok(otlp.exports.length > 0, 'stop() flushed the spans');
      for (const e of otlp.exports) {
        assert.equal(e.path, '/v1/traces');
        assert.equal(e.contentType, 'application/x-protobuf');
      }
      assert.deepEqual([...new Set(spans.map((s) => s.service))], ['token-authority']);
    });

    it('Issue: a SERVER span parented by the caller\'s traceparent, rpc attributes, kid/jti/sid, and its Redis call as a child', () => {
      const span = serverSpanOf(spans, calls.issue, `${SERVICE}/Issue`);
      assert.equal(span.attributes['rpc.system.name'], 'grpc');
      assert.equal(span.attributes['rpc.system'], 'grpc');
      assert.equal(span.attributes['rpc.service'], SERVICE);
      assert.equal(span.attributes['rpc.method'], `${SERVICE}/Issue`);
      assert.equal(span.attributes['rpc.grpc.status_code'], 0);
      assert.equal(span.attributes['rpc.status_code'], 'OK');
      assert.equal(span.attributes['token_authority.jti'], issued.tokenId);
      assert.equal(span.attributes['token_authority.kid'], issued.keyId);
      assert.equal(span.attributes['token_authority.sid'], issued.sessionId);
      assert.equal(span.attributes['sub'], undefined, 'no subject on spans');
      assert.equal(span.status.code, 0);
      assertRedisChildren(spans, span, ['createSession']);
    });

    it('Verify: the accepted token\'s kid and jti; a rejected one\'s reason; no Redis call', () => {
      const ok = serverSpanOf(spans, calls.verifyValid, `${SERVICE}/Verify`);
      assert.equal(ok.attributes['token_authority.kid'], issued.keyId);
      assert.equal(ok.attributes['token_authority.jti'], issued.tokenId);
      assert.equal(ok.attributes['token_authority.verify.reason'], undefined);
      const denied = serverSpanOf(spans, calls.verifyInvalid, `${SERVICE}/Verify`);
      assert.equal(denied.attributes['token_authority.verify.reason'], 'WRONG_AUDIENCE');
      assert.equal(denied.attributes['rpc.grpc.status_code'], 0, 'an invalid token is an answer');
      assert.equal(denied.status.code, 0);
      assert.deepEqual(childrenOf(spans, ok), []);
    });

    it('Refresh and Revoke: their store operations as Redis child spans; a refused refresh is not a server error', () => {
      const refresh = serverSpanOf(spans, calls.refresh, `${SERVICE}/Refresh`);
      assertRedisChildren(spans, refresh, ['rotateRefresh', 'rotateRefresh']); // load, then the compare-and-set rotation
      assert.ok(refresh.attributes['token_authority.jti']);
      const bad = serverSpanOf(spans, calls.refreshBad, `${SERVICE}/Refresh`);
      assert.notEqual(bad.attributes['rpc.grpc.status_code'], 0);
      assert.equal(bad.status.code, 0, 'a client error leaves the span status unset (OpenTelemetry gRPC conventions)');
      const revoke = serverSpanOf(spans, calls.revoke, `${SERVICE}/Revoke`);
      assert.ok(Number(revoke.attributes['token_authority.revocation.sequence']) > 0);
      assertRedisChildren(spans, revoke, ['revoke']);
    });

    it('follows the caller\'s sampled flag (parentbased_always_on): an unsampled traceparent exports nothing', () => {
      assert.deepEqual(spans.filter((s) => s.traceId === calls.unsampled.traceId), []);
    });

    it('HTTP: the JWKS and the OAuth token endpoint, parented by the traceparent header, with the token endpoint\'s Redis calls below it', () => {
      const jwks = serverSpanOf(spans, calls.jwks, 'GET /.well-known/jwks.json');
      assert.equal(jwks.attributes['http.request.method'], 'GET');
      assert.equal(jwks.attributes['http.route'], '/.well-known/jwks.json');
      assert.equal(jwks.attributes['url.path'], '/.well-known/jwks.json');
      assert.equal(jwks.attributes['http.response.status_code'], 200);
      const token = serverSpanOf(spans, calls.oauthToken, 'POST /oauth2/token');
      assert.equal(token.attributes['http.response.status_code'], 200);
      assert.equal(token.attributes['token_authority.oauth.grant_type'], 'refresh_token');
      assert.ok(token.attributes['token_authority.jti']);
      assertRedisChildren(spans, token, ['rotateRefresh', 'rotateRefresh']);
    });

    it('no spans for /healthz and /metrics (probes and scrapes), even with a traceparent', () => {
      assert.deepEqual(spans.filter((s) => s.traceId === calls.probes.traceId), []);
      assert.deepEqual(spans.filter((s) => s.name.includes('/healthz') || s.name.includes('/metrics')), []);
    });

    it('no access token, refresh token or Authorization header value anywhere in the exported bytes', () => {
      assert.equal(tokens.length, 6);
      for (const e of otlp.exports) {
        for (const t of tokens) {
          assert.equal(e.body.includes(t), false, 'a token was exported');
          // The signature part alone (the payload's base64 could recur in claims, the signature never).
          if (t.includes('.')) assert.equal(e.body.includes(t.split('.')[2]!), false, 'a token signature was exported');
        }
      }
    });
  });

  describe('the sidecar (OTLP http/json): Verify, Check and forward-auth', () => {
    it('one span per call, parented by the caller, with the verify outcome', async () => {
      const otlp = await receiver();
      const ta = await startTestAuthority({ TA_REDIS_URL: redis.url });
      assert.equal(ta.config.tracing, undefined, 'no OTEL_* variables: tracing off');
      const config = loadConfig('sidecar', {
        env: {
          TA_GRPC_ADDR: '127.0.0.1:0', TA_HTTP_ADDR: '127.0.0.1:0', TA_ISSUER: TEST_ISSUER, TA_AUTHORITY_URL: ta.httpBase, TA_REDIS_URL: redis.url, TA_AUDIENCE: AUD, TA_LOG_LEVEL: 'silent',
          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${otlp.url}/v1/traces`, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '600000',
        },
      });
      const sidecar = await startSidecar(config, silentLogger, { metrics: createMetrics({ defaultMetrics: false }) });
      const grpcClient = authorityClient(sidecar.grpcPort);
      const authz = new AuthorizationClient(`127.0.0.1:${sidecar.grpcPort}`, credentials.createInsecure());
      const check = (token: string, traceparent: string) =>
        new Promise<CheckResponse>((resolve, reject) =>
          authz.check(CheckRequest.fromPartial({ attributes: { request: { http: { headers: { authorization: `Bearer ${token}` }, path: '/', method: 'GET' } } } }), metadataWith(traceparent), (e, r) => (e ? reject(e) : resolve(r))),
        );
      const c = { verify: callerSpan(), check: callerSpan(), checkDenied: callerSpan(), authz: callerSpan(), authzDenied: callerSpan() };
      let issued: { accessToken: string; tokenId: string; keyId: string };
      try {
        issued = await ta.client.issue({ subject: 'carol', audience: [AUD], scopes: ['read'] });
        assert.equal((await grpcClient.verify({ token: issued.accessToken, audience: AUD }, metadataWith(c.verify.traceparent))).valid, true);
        assert.equal((await check(issued.accessToken, c.check.traceparent)).status?.code, 0);
        assert.equal((await check('garbage', c.checkDenied.traceparent)).httpResponse?.$case, 'deniedResponse');
        const fa = (traceparent: string, authorization?: string) => fetch(`http://127.0.0.1:${sidecar.httpPort}/authz/orders?required_scopes=read`, { headers: { traceparent, ...(authorization ? { authorization } : {}) } });
        assert.equal((await fa(c.authz.traceparent, `Bearer ${issued.accessToken}`)).status, 200);
        assert.equal((await fa(c.authzDenied.traceparent)).status, 401);
      } finally {
        grpcClient.close();
        authz.close();
        await sidecar.stop();
        await ta.close();
      }
      for (const e of otlp.exports) {
        assert.equal(e.contentType, 'application/json');
        assert.equal(e.body.includes(issued.accessToken), false, 'no token exported');
      }
      const spans = otlp.spans();
      assert.deepEqual([...new Set(spans.map((s) => s.service))], ['token-authority-sidecar']);
      const verify = serverSpanOf(spans, c.verify, `${SERVICE}/Verify`);
      assert.equal(verify.attributes['token_authority.jti'], issued.tokenId);
      assert.equal(verify.attributes['token_authority.kid'], issued.keyId);
      const ok = serverSpanOf(spans, c.check, 'envoy.service.auth.v3.Authorization/Check');
      assert.equal(ok.attributes['token_authority.jti'], issued.tokenId);
      assert.equal(ok.attributes['token_authority.kid'], issued.keyId);
      assert.equal(ok.attributes['rpc.service'], 'envoy.service.auth.v3.Authorization');
      const denied = serverSpanOf(spans, c.checkDenied, 'envoy.service.auth.v3.Authorization/Check');
      assert.equal(denied.attributes['token_authority.verify.reason'], 'MALFORMED');
      const allowed = serverSpanOf(spans, c.authz, 'GET /authz');
      assert.equal(allowed.attributes['url.path'], '/authz/orders');
      assert.equal(allowed.attributes['http.response.status_code'], 200);
      assert.equal(allowed.attributes['token_authority.jti'], issued.tokenId);
      const missing = serverSpanOf(spans, c.authzDenied, 'GET /authz');
      assert.equal(missing.attributes['http.response.status_code'], 401);
      assert.equal(missing.attributes['token_authority.verify.reason'], 'MISSING_TOKEN');
      // The sidecar's Redis traffic (feed, receipts) belongs to no request: no span of its own.
      assert.deepEqual(spans.filter((s) => s.name.startsWith('redis ')), []);
    });
  });

  it('a collector that refuses the export fails no call: the dropped spans are a logged warning', async () => {
    const logger = recordingLogger();
    const refusing = await startOtlpReceiver({ refuseWith: 400 });
    receivers.push(refusing);
    const ta = await startTestAuthority({ TA_REDIS_URL: redis.url, OTEL_EXPORTER_OTLP_ENDPOINT: refusing.url, OTEL_BSP_SCHEDULE_DELAY: '20' }, {}, logger);
    try {
      const { accessToken } = await ta.client.issue({ subject: 'erin', audience: [AUD], scopes: [] }, metadataWith(callerSpan().traceparent));
      assert.equal((await ta.client.verify({ token: accessToken, audience: AUD })).valid, true);
      const line = await logger.waitFor((l) => l.level === 'warn' && l.fields.component === 'tracing', 10_000);
      assert.equal(line.msg, 'tracing: could not export spans to the OTLP endpoint; they were dropped');
      assert.ok(!JSON.stringify(logger.lines).includes(accessToken), 'no token in any line');
    } finally {
      await ta.close();
    }
  });

  it('a server error (Redis not answering: UNAVAILABLE) is an error span, and so is its Redis call', async () => {
    const own = await startRedis();
    const otlp = await receiver();
    const ta = await startTestAuthority({ TA_REDIS_URL: own.url, TA_REDIS_COMMAND_TIMEOUT: '200ms', OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '600000' });
    const caller = callerSpan();
    try {
      own.pause();
      await expectStatus(ta.client.issue({ subject: 'frank', audience: [AUD], scopes: [] }, metadataWith(caller.traceparent)), 14 /* UNAVAILABLE */);
    } finally {
      own.resume();
      await ta.close();
      await own.stop();
    }
    const spans = otlp.spans();
    const issue = serverSpanOf(spans, caller, `${SERVICE}/Issue`);
    assert.equal(issue.attributes['rpc.grpc.status_code'], 14);
    assert.equal(issue.status.code, 2, 'ERROR');
    assert.match(issue.status.message, /Redis createSession failed/);
    const [redisCall, ...more] = childrenOf(spans, issue);
    assert.deepEqual(more, []);
    assert.equal(redisCall?.name, 'redis createSession');
    assert.equal(redisCall?.status.code, 2, 'ERROR');
  });

  describe('off', () => {
    for (const [what, env] of [
      ['OTEL_SDK_DISABLED=true wins over an endpoint', { OTEL_SDK_DISABLED: 'true' }],
      ['OTEL_TRACES_EXPORTER=none wins over an endpoint', { OTEL_TRACES_EXPORTER: 'none' }],
    ] as const) {
      it(`${what}: calls with a traceparent export nothing`, async () => {
        const otlp = await receiver();
        const ta = await startTestAuthority({ TA_REDIS_URL: redis.url, OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '1', ...env });
        assert.equal(ta.config.tracing, undefined);
        const caller = callerSpan();
        const { accessToken } = await ta.client.issue({ subject: 'dave', audience: [AUD], scopes: [] }, metadataWith(caller.traceparent));
        assert.equal((await ta.client.verify({ token: accessToken, audience: AUD }, metadataWith(caller.traceparent))).valid, true);
        assert.equal((await fetch(`${ta.httpBase}/.well-known/jwks.json`, { headers: { traceparent: caller.traceparent } })).status, 200);
        await ta.close();
        assert.equal(otlp.exports.length, 0);
      });
    }
  });
});
