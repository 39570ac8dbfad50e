/**
 * Property-based fuzzing of every RPC's request decoding at a real authority: arbitrary bytes as
 * the request message (through grpc-js with a pass-through serializer), well-formed protobuf
 * messages with random field values, protobuf-shaped garbage (random field numbers and wire
 * types), and arbitrary gRPC framing over raw HTTP/2. Every call must end with a gRPC status from a
 * short allowed list, the server must never crash, and a normal Issue + Verify must still work.
 *
 * A message the generated decoder cannot decode is INVALID_ARGUMENT ("<method> request is not a
 * valid protobuf message: …"), answered by the unary wrapper and counted in the RPC metrics. INTERNAL
 * is allowed in exactly one form, and only on the standard health service (not ours, not wrapped):
 * grpc-js's own "Error deserializing request". Any other INTERNAL means an unhandled path.
 */
import assert from 'node:assert/strict';
import { connect, type ClientHttp2Session } from 'node:http2';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { Client, credentials, Metadata, status } from '@grpc/grpc-js';
import fc from 'fast-check';
import {
  GetJwksResponse,
  GetPropagationRequest,
  GetPropagationResponse,
  IssueRequest,
  IssueResponse,
  RefreshRequest,
  RefreshResponse,
  RevokeRequest,
  RevokeResponse,
  VerifyRequest,
  VerifyResponse,
} from '../../src/gen/tokenauthority/v1/token_authority.js';
import { startTestAuthority, type TestAuthority } from '../helpers/authority.js';
import { b64url } from '../helpers/token-forge.js';
import { captureLogs } from './corpus-harness.js';

// Replay a reported failure with FC_SEED=<seed> (fast-check prints the seed and path).
if (process.env.FC_SEED) fc.configureGlobal({ seed: Number(process.env.FC_SEED) });

const SERVICE = '/tokenauthority.v1.TokenAuthorityService';
/** grpc-js's status details for a request message its deserializer threw on (health service only). */
const DESERIALIZE_FAILURE = 'Error deserializing request';
/** Our answer to a request message the generated decoder cannot decode. */
const UNDECODABLE = /^\w+ request is not a valid protobuf message: /;

type Outcome = { code: status; details: string; response?: Buffer };

/** What each method may answer (INVALID_ARGUMENT for an undecodable message on every one of ours). */
const ALLOWED: Record<string, readonly status[]> = {
  Issue: [status.OK, status.INVALID_ARGUMENT, status.PERMISSION_DENIED, status.RESOURCE_EXHAUSTED],
  Verify: [status.OK, status.INVALID_ARGUMENT, status.RESOURCE_EXHAUSTED],
  Refresh: [status.UNAUTHENTICATED, status.INVALID_ARGUMENT, status.RESOURCE_EXHAUSTED],
  Revoke: [status.OK, status.INVALID_ARGUMENT, status.NOT_FOUND, status.PERMISSION_DENIED, status.RESOURCE_EXHAUSTED],
  GetJwks: [status.OK, status.INVALID_ARGUMENT, status.RESOURCE_EXHAUSTED],
  // A long poll: a decoded wait_ms may outlast the client deadline, or too many may be waiting.
  GetPropagation: [status.OK, status.INVALID_ARGUMENT, status.RESOURCE_EXHAUSTED, status.DEADLINE_EXCEEDED],
  Health: [status.OK, status.NOT_FOUND],
};
const PATHS: Record<string, string> = {
  Issue: `${SERVICE}/Issue`,
  Verify: `${SERVICE}/Verify`,
  Refresh: `${SERVICE}/Refresh`,
  Revoke: `${SERVICE}/Revoke`,
  GetJwks: `${SERVICE}/GetJwks`,
  GetPropagation: `${SERVICE}/GetPropagation`,
  Health: '/grpc.health.v1.Health/Check',
};
const DECODERS: Record<string, ((b: Uint8Array) => unknown) | undefined> = {
  Issue: (b) => IssueResponse.decode(b),
  Verify: (b) => VerifyResponse.decode(b),
  Refresh: (b) => RefreshResponse.decode(b),
  Revoke: (b) => RevokeResponse.decode(b),
  GetJwks: (b) => GetJwksResponse.decode(b),
  GetPropagation: (b) => GetPropagationResponse.decode(b),
  Health: undefined,
};
const METHODS = Object.keys(PATHS);

describe('fuzz: RPC request decoding at the authority (fast-check)', function () {
  this.timeout(120_000);
  let ta: TestAuthority;
  let raw: Client;
  const tally = new Map<string, number>();
  const logs = captureLogs();

  before(async () => {
    ta = await startTestAuthority({ TA_RATE_LIMIT_ISSUE: 'off', TA_RATE_LIMIT_REFRESH: 'off', TA_RATE_LIMIT_REVOKE: 'off' }, {}, logs.logger);
    raw = new Client(`127.0.0.1:${ta.running.grpcPort}`, credentials.createInsecure());
  });
  after(async () => {
    raw?.close();
    await ta?.close();
    const summary = [...tally].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
    console.log(`      statuses: ${summary}`);
  });

  /** One unary call with `bytes` as the serialized request, whatever they are. */
  const call = (method: string, bytes: Uint8Array): Promise<Outcome> =>
    new Promise((resolve) => {
      raw.makeUnaryRequest(
        PATHS[method]!,
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from(bytes),
        new Metadata(),
        { deadline: new Date(Date.now() + (method === 'GetPropagation' ? 300 : 5000)) },
        (err, res) => resolve(err ? { code: err.code as status, details: err.details } : { code: status.OK, details: '', response: res }),
      );
    });

  /** The one rule every answer obeys. */
  function judge(method: string, out: Outcome): void {
    const key = `${method}:${status[out.code]}${out.code === status.INTERNAL ? `(${out.details})` : ''}`;
    tally.set(key, (tally.get(key) ?? 0) + 1);
    if (out.code === status.INTERNAL) {
      assert.equal(method, 'Health', `${method}: INTERNAL (${out.details}) means an unhandled path; an undecodable message is INVALID_ARGUMENT`);
      assert.equal(out.details, DESERIALIZE_FAILURE, `${method}: an INTERNAL that is not a decoding failure means an unhandled path`);
      return;
    }
    assert.ok(ALLOWED[method]!.includes(out.code), `${method}: unexpected status ${status[out.code]}: ${out.details}`);
    if (out.code === status.OK && DECODERS[method]) assert.doesNotThrow(() => DECODERS[method]!(out.response!), `${method}: the answer decodes`);
  }

  it('answers arbitrary request bytes on every RPC with an allowed status', async () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.uint8Array({ minLength: 200, maxLength: 4096 }),
      // a valid prefix (a string field) followed by junk, which decoders must not over-read
      fc.tuple(fc.string({ maxLength: 20 }), fc.uint8Array({ maxLength: 16 })).map(([s, j]) => Buffer.concat([Buffer.from([0x0a, Buffer.byteLength(s)]), Buffer.from(s), j])),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...METHODS), bytes, async (method, b) => judge(method, await call(method, b))),
      { numRuns: 600 },
    );
  });

  it('answers protobuf-shaped garbage (random field numbers and wire types) with an allowed status', async () => {
    const field = fc.oneof(
      fc.record({ no: fc.integer({ min: 1, max: 12 }), v: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) }).map((f) => (w: BinaryWriter) => w.tag(f.no, 0).uint64(f.v)),
      fc.record({ no: fc.integer({ min: 1, max: 12 }), v: fc.uint8Array({ maxLength: 40 }) }).map((f) => (w: BinaryWriter) => w.tag(f.no, 2).bytes(f.v)),
      fc.record({ no: fc.integer({ min: 1, max: 12 }), v: fc.string({ maxLength: 40, unit: 'binary' }) }).map((f) => (w: BinaryWriter) => w.tag(f.no, 2).string(f.v)),
      fc.record({ no: fc.integer({ min: 1, max: 12 }), v: fc.integer() }).map((f) => (w: BinaryWriter) => w.tag(f.no, 5).fixed32(f.v >>> 0)),
      fc.record({ no: fc.integer({ min: 1, max: 12 }), v: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) }).map((f) => (w: BinaryWriter) => w.tag(f.no, 1).fixed64(f.v)),
      // a nested message in a length-delimited field (the oneof target, map entries, timestamps)
      fc.record({ no: fc.integer({ min: 1, max: 12 }), inner: fc.array(fc.tuple(fc.integer({ min: 1, max: 3 }), fc.string({ maxLength: 10 })), { maxLength: 3 }) }).map(
        (f) => (w: BinaryWriter) => {
          w.tag(f.no, 2).fork();
          for (const [n, s] of f.inner) w.tag(n, 2).string(s);
          w.join();
        },
      ),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...METHODS), fc.array(field, { maxLength: 8 }), async (method, fields) => {
        const w = new BinaryWriter();
        for (const f of fields) f(w);
        judge(method, await call(method, w.finish()));
      }),
      { numRuns: 500 },
    );
  });

  it('answers well-formed messages with random field values with an allowed status', async () => {
    const text = fc.oneof(fc.string({ maxLength: 30 }), fc.string({ maxLength: 300, unit: 'binary' }), fc.constantFrom('', 'orders', 'read', 'alice', 'tart_', '.', '..'));
    const ttl = fc.oneof(fc.constant(0), fc.nat({ max: 7200 }), fc.constant(0xffffffff));
    const token = fc.oneof(text, fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => `tart_${b64url(b)}`), fc.tuple(text, text, text).map((p) => p.map(b64url).join('.')));
    const messages: Record<string, fc.Arbitrary<Uint8Array>> = {
      Issue: fc
        .oneof(
          fc.record({ subject: text, audience: fc.array(text, { maxLength: 20 }), scopes: fc.array(text, { maxLength: 70 }), extraClaims: fc.dictionary(text, text, { maxKeys: 40 }), accessTtlSeconds: ttl, clientId: text }),
          // plausible requests, so that the whole Issue path (store, signing) runs too
          fc.record({
            subject: fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/),
            audience: fc.array(fc.constantFrom('orders', 'billing'), { minLength: 1, maxLength: 2 }),
            scopes: fc.array(fc.constantFrom('read', 'write', 'orders:read'), { maxLength: 3 }),
            extraClaims: fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9_]{0,8}$/).filter((k) => !['sub', 'aud', 'iss', 'exp', 'iat', 'nbf', 'jti', 'sid', 'gen', 'scope', 'acr', 'amr', 'azp', 'cnf', 'act', 'kid', 'alg', 'typ', 'roles', 'groups', 'nonce'].includes(k)), text, { maxKeys: 3 }),
            accessTtlSeconds: ttl,
            clientId: fc.constantFrom('', 'web'),
          }),
        )
        .map((m) => IssueRequest.encode(IssueRequest.fromPartial(m)).finish()),
      Verify: fc.record({ token, audience: text, requiredScopes: fc.array(text, { maxLength: 5 }) }).map((m) => VerifyRequest.encode(VerifyRequest.fromPartial(m)).finish()),
      Refresh: fc.record({ refreshToken: token, accessTtlSeconds: ttl }).map((m) => RefreshRequest.encode(RefreshRequest.fromPartial(m)).finish()),
      Revoke: fc
        .record({
          target: fc.oneof(
            fc.constant(undefined),
            token.map((t) => ({ $case: 'token' as const, token: t })),
            text.map((s) => ({ $case: 'sessionId' as const, sessionId: s })),
            text.map((s) => ({ $case: 'subject' as const, subject: s })),
            text.map((s) => ({ $case: 'tokenId' as const, tokenId: s })),
          ),
          reason: text,
        })
        .map((m) => RevokeRequest.encode(RevokeRequest.fromPartial(m)).finish()),
      GetJwks: fc.constant(new Uint8Array(0)),
      GetPropagation: fc
        .record({ sequence: fc.oneof(fc.constant(0), fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER)), minVerifiers: fc.nat({ max: 3 }), waitMs: fc.oneof(fc.constant(0), fc.nat({ max: 20 }), fc.integer({ min: 30_001, max: 0xffffffff })) })
        .map((m) => GetPropagationRequest.encode(GetPropagationRequest.fromPartial(m)).finish()),
      Health: fc.oneof(fc.constant(''), fc.constantFrom('tokenauthority.v1.TokenAuthorityService'), text).map((s) => new BinaryWriter().tag(1, 2).string(s).finish()),
    };
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...METHODS).chain((m) => fc.tuple(fc.constant(m), messages[m]!)), async ([method, bytes]) => {
        const out = await call(method, bytes);
        // Every one of these decodes, so not even the deserialization INTERNAL is acceptable.
        assert.notEqual(out.code, status.INTERNAL, `${method}: INTERNAL for a well-formed request: ${out.details}`);
        judge(method, out);
        if (method === 'Verify' && out.code === status.OK) assert.equal(VerifyResponse.decode(out.response!).valid, false, 'a random token is never valid');
      }),
      { numRuns: 600 },
    );
  });

  it('answers a uint64 above 2^53 and malformed protobuf with INVALID_ARGUMENT naming the problem, and counts them', async () => {
    // ts-proto maps uint64 to number (forceLong=number) and throws beyond Number.MAX_SAFE_INTEGER.
    const counted = async () => {
      const text = await (await fetch(`${ta.httpBase}/metrics`)).text();
      const line = (m: string) => Number(new RegExp(`^ta_grpc_requests_total\\{method="${m}",code="INVALID_ARGUMENT"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
      return { prop: line('GetPropagation'), verify: line('Verify') };
    };
    const before = await counted();
    const huge = await call('GetPropagation', new BinaryWriter().tag(1, 0).uint64(2n ** 63n).finish());
    assert.equal(huge.code, status.INVALID_ARGUMENT, huge.details);
    assert.match(huge.details, /^GetPropagation request is not a valid protobuf message: an integer field is outside ±\(2\^53 - 1\)/);
    // A length-delimited field whose length runs past the end of the message.
    const truncated = await call('Verify', Buffer.from([0x0a, 0x40, 0x61]));
    assert.equal(truncated.code, status.INVALID_ARGUMENT, truncated.details);
    assert.match(truncated.details, UNDECODABLE);
    const after = await counted();
    assert.equal(after.prop - before.prop, 1, 'the undecodable GetPropagation is counted');
    assert.equal(after.verify - before.verify, 1, 'the undecodable Verify is counted');
    assert.ok(logs.find('info', /"msg":"rpc"/).some((l) => /"code":"INVALID_ARGUMENT"/.test(l) && /not a valid protobuf message/.test(l)), 'and has an access line');
  });

  it('answers arbitrary gRPC framing over raw HTTP/2 without crashing (length prefixes, compression flags, truncation)', async () => {
    const session: ClientHttp2Session = connect(`http://127.0.0.1:${ta.running.grpcPort}`);
    session.on('error', () => undefined);
    const http2Call = (path: string, body: Buffer, extraHeaders: Record<string, string>): Promise<{ http: number; grpc: number | undefined; message: string }> =>
      new Promise((resolve, reject) => {
        const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...extraHeaders });
        let http = 0;
        let grpc: number | undefined;
        let message = '';
        const read = (h: Record<string, unknown>) => {
          if (h['grpc-status'] !== undefined) grpc = Number(h['grpc-status']);
          if (h['grpc-message'] !== undefined) message = decodeURIComponent(String(h['grpc-message']));
        };
        req.on('response', (h) => {
          http = Number(h[':status']);
          read(h);
        });
        req.on('trailers', read);
        req.on('data', () => undefined);
        req.on('end', () => resolve({ http, grpc, message }));
        req.on('error', reject);
        req.setTimeout(5000, () => {
          req.close();
          reject(new Error(`no answer within 5 s on ${path}`));
        });
        req.end(body);
      });
    const frame = fc.oneof(
      // a correct prefix around random bytes, with a random compressed flag
      fc.tuple(fc.constantFrom(0, 1, 2, 255), fc.uint8Array({ maxLength: 64 })).map(([flag, b]) => {
        const head = Buffer.alloc(5);
        head[0] = flag;
        head.writeUInt32BE(b.length, 1);
        return Buffer.concat([head, b]);
      }),
      // a lying length prefix (longer or shorter than the body), including absurd lengths
      fc.tuple(fc.oneof(fc.nat({ max: 200 }), fc.constantFrom(0xffffffff, 0x7fffffff, 4 * 1024 * 1024 + 1)), fc.uint8Array({ maxLength: 64 })).map(([len, b]) => {
        const head = Buffer.alloc(5);
        head.writeUInt32BE(len >>> 0, 1);
        return Buffer.concat([head, b]);
      }),
      // a truncated prefix, two messages in a unary call, or nothing at all
      fc.uint8Array({ maxLength: 4 }).map((b) => Buffer.from(b)),
      fc.tuple(fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ maxLength: 8 })).map(([a, b]) => {
        const one = (x: Uint8Array) => Buffer.concat([Buffer.from([0, 0, 0, 0, x.length]), x]);
        return Buffer.concat([one(a), one(b)]);
      }),
    );
    const encoding = fc.constantFrom<Record<string, string>>({}, { 'grpc-encoding': 'gzip' }, { 'grpc-encoding': 'identity' }, { 'grpc-encoding': 'bogus' });
    const seen = new Map<string, number>();
    try {
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...METHODS), frame, encoding, async (method, body, headers) => {
          const r = await http2Call(PATHS[method]!, body, headers);
          const key = `${r.http}/${r.grpc === undefined ? '-' : status[r.grpc]}${r.grpc === status.INTERNAL ? `(${r.message.slice(0, 40)})` : ''}`;
          seen.set(key, (seen.get(key) ?? 0) + 1);
          assert.equal(r.http, 200, 'gRPC answers over HTTP 200');
          assert.notEqual(r.grpc, undefined, 'every call ends with a grpc-status');
          // Framing errors are the transport's to report; a handler must never answer INTERNAL.
          assert.notEqual(r.message, 'internal error (logged on the server)', `${method}: a handler failed on framed garbage`);
        }),
        { numRuns: 300 },
      );
    } finally {
      session.close();
      console.log(`      raw HTTP/2 framing answers: ${[...seen].map(([k, n]) => `${k} ${n}`).join(', ')}`);
    }
  });

  it('stays healthy: Issue, Verify, Refresh and Revoke still work after the fuzzing', async () => {
    const issued = await ta.client.issue({ subject: 'after-fuzz', audience: ['orders'], scopes: ['read'] });
    const v = await ta.client.verify({ token: issued.accessToken, audience: 'orders', requiredScopes: ['read'] });
    assert.equal(v.valid, true, v.detail);
    const next = await ta.client.refresh({ refreshToken: issued.refreshToken });
    assert.equal(next.sessionId, issued.sessionId);
    assert.ok((await ta.client.revoke({ target: { $case: 'token', token: next.accessToken } })).sequence > 0);
    assert.equal((await fetch(`${ta.httpBase}/healthz`)).status, 200);
    // No handler met an input it did not handle (those are logged as unexpected errors).
    assert.deepEqual(logs.find('error', /unexpected error in handler/), []);
    assert.ok(logs.find('info', /"msg":"rpc"/).length > 1000, 'the calls reached the handlers and were logged');
  });
});
