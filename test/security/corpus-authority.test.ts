import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import { FileKeyStore } from '../../src/keys/file-key-store.js';
import { startTestAuthority, TEST_ISSUER, type TestAuthority } from '../helpers/authority.js';
import { expectStatus } from '../helpers/grpc-client.js';
import { RPC_CORPUS, type CorpusContext } from './attack-corpus.js';
import { BINDING_CORPUS, makeBindingFixtures, runBindingCorpus, type BindingContext, type BindingFixtures } from './binding-corpus.js';
import { answerOf, assertNoTokenLogged, captureLogs, CORPUS_AUDIENCE, makeCorpusKeys, reportTimings, revokedIds, runCorpus, seedKeyDir } from './corpus-harness.js';

/** Reasons decided before a token is known to be ours: Revoke must refuse the same tokens. */
const SIGNATURE_STAGE = new Set(['MALFORMED', 'BAD_SIGNATURE', 'UNKNOWN_KEY', 'UNSUPPORTED_ALGORITHM', 'WRONG_TYPE', 'FORBIDDEN_HEADER', 'WRONG_ISSUER']);

describe('attack corpus → authority (Verify RPC over gRPC)', function () {
  this.timeout(60_000);
  let ta: TestAuthority;
  let keyDir: string;
  let ctx: CorpusContext;
  let removedKid: string;
  const logs = captureLogs();
  /** Every token sent, to prove afterwards that none reached a log line. */
  const sent: string[] = [];

  before(async () => {
    const { keys, generated } = await makeCorpusKeys();
    keyDir = await mkdtemp(join(tmpdir(), 'ta-corpus-keys-'));
    await seedKeyDir(keyDir, generated);
    removedKid = keys.removed.kid;
    ta = await startTestAuthority({
      TA_KEY_DIR: keyDir,
      // Let 1 MiB tokens reach the verifier (the default message limit refuses them earlier,
      // which the abuse-limit tests cover); the verifier must still judge them by length alone.
      TA_MAX_MESSAGE_BYTES: '4MiB',
      TA_RATE_LIMIT_ISSUE: 'off',
      TA_RATE_LIMIT_REFRESH: 'off',
      TA_RATE_LIMIT_REVOKE: 'off',
    }, {}, logs.logger);
    const revoked = revokedIds();
    await ta.client.revoke({ target: { $case: 'tokenId', tokenId: revoked.jti } });
    await ta.client.revoke({ target: { $case: 'sessionId', sessionId: revoked.sid } });
    await ta.client.revoke({ target: { $case: 'subject', subject: revoked.sub } });
    const issued = await ta.client.issue({ subject: 'corpus', audience: [CORPUS_AUDIENCE] });
    ctx = {
      issuer: TEST_ISSUER,
      audience: CORPUS_AUDIENCE,
      nowSec: () => Math.floor(Date.now() / 1000),
      keys: keys.trusted,
      removed: keys.removed,
      attacker: keys.attacker,
      refreshToken: issued.refreshToken,
      revoked,
    };
  });
  after(async () => {
    await ta?.close();
    if (keyDir) await rm(keyDir, { recursive: true, force: true });
  });

  it('publishes exactly the corpus key set: active, next and retired keys; the expired one removed', async () => {
    const kids = JSON.parse((await ta.client.getJwks()).jwksJson).keys.map((k: { kid: string }) => k.kid).sort();
    assert.deepEqual(kids, [ctx.keys.ES256.kid, ctx.keys.EdDSA.kid, ctx.keys.RS256.kid].sort());
    const stored = await new FileKeyStore(keyDir).load();
    assert.ok(stored && stored.version > 1 && !stored.keys.some((k) => k.kid === removedKid), 'the key manager removed the expired key at start');
    assert.equal((await ta.client.issue({ subject: 'x', audience: [CORPUS_AUDIENCE] })).keyId, ctx.keys.ES256.kid, 'the ES256 key signs');
  });

  const run = runCorpus(RPC_CORPUS, () => ctx, async (token, c) => {
    sent.push(token as string);
    return answerOf(await ta.client.verify({ token: token as string, audience: CORPUS_AUDIENCE, requiredScopes: [...(c.requiredScopes ?? [])] }));
  });

  it('Refresh refuses every corpus token as "not a refresh token" (UNAUTHENTICATED)', async () => {
    let n = 0;
    for (const c of RPC_CORPUS) {
      const token = c.make(ctx) as string;
      if (token === ctx.refreshToken) continue;
      sent.push(token);
      const err = await expectStatus(ta.client.refresh({ refreshToken: token }), status.UNAUTHENTICATED, 'not a refresh token');
      assert.equal(err.metadata.get('ta-error-code')[0], 'ERR_REFRESH_INVALID', c.name);
      n++;
    }
    assert.ok(n > 250);
  });

  it('Refresh refuses a genuine access token presented as a refresh token', async () => {
    const issued = await ta.client.issue({ subject: 'corpus-refresh', audience: [CORPUS_AUDIENCE] });
    await expectStatus(ta.client.refresh({ refreshToken: issued.accessToken }), status.UNAUTHENTICATED, 'not a refresh token');
    // …and the session it belongs to is untouched: its real refresh token still works.
    const next = await ta.client.refresh({ refreshToken: issued.refreshToken });
    assert.equal(next.sessionId, issued.sessionId);
  });

  it('Revoke{token} refuses every corpus token a verifier rejects before trusting it (INVALID_ARGUMENT, same reason)', async () => {
    let n = 0;
    for (const c of RPC_CORPUS) {
      if (!SIGNATURE_STAGE.has(c.expect)) continue;
      const token = c.make(ctx) as string;
      if (token === ctx.refreshToken) continue; // a refresh token revokes its own session: tested elsewhere
      sent.push(token);
      const err: ServiceError = await expectStatus(ta.client.revoke({ target: { $case: 'token', token } }), status.INVALID_ARGUMENT);
      if (token.length > 0) assert.match(err.details, new RegExp(`\\(${c.expect}:`), `${c.name}: ${err.details}`);
      assert.ok(token.length < 16 || !err.details.includes(token), 'the message must not echo the token');
      n++;
    }
    assert.ok(n > 200, `${n} tokens tried`);
  });

  it('stays responsive: Issue and Verify still work after the corpus', async () => {
    const issued = await ta.client.issue({ subject: 'after-corpus', audience: [CORPUS_AUDIENCE], scopes: ['read'] });
    const v = await ta.client.verify({ token: issued.accessToken, audience: CORPUS_AUDIENCE, requiredScopes: ['read'] });
    assert.equal(v.valid, true, v.detail);
    assert.equal(v.claims?.subject, 'after-corpus');
  });

  it('logged no token and hit no unexpected error on the way', () => {
    assert.ok(logs.find('info', /"msg":"rpc"/).length > 800, 'the access lines were captured');
    assertNoTokenLogged(logs, [...sent, ctx.refreshToken]);
    assert.deepEqual(logs.find('error', /unexpected error in handler/), []);
  });

  it('ran every case within a generous time bound', () => {
    reportTimings('authority Verify', run, { totalMs: 15_000, caseMs: 2_000 });
  });

  describe('binding corpus (Verify RPC: client_certificate as DER, dpop_proof, http_method, http_uri)', () => {
    let fixtures: BindingFixtures;
    let bctx: BindingContext;
    const proofs: string[] = [];
    before(async () => {
      fixtures = await makeBindingFixtures();
      bctx = { ...ctx, request: { method: 'GET', uri: 'https://orders.test:8443/orders/42' }, certificates: fixtures.certificates, dpopKeys: fixtures.dpopKeys, thief: fixtures.thief };
    });
    after(() => fixtures?.cleanup());

    runBindingCorpus(BINDING_CORPUS, () => bctx, async (p) => {
      sent.push(p.token);
      if (p.proof && p.proof.length >= 16) proofs.push(p.proof);
      return answerOf(await ta.client.verify({
        token: p.token,
        audience: CORPUS_AUDIENCE,
        ...(p.certificate ? { clientCertificate: p.certificate.der } : {}),
        ...(p.proof !== undefined ? { dpopProof: p.proof, httpMethod: bctx.request.method, httpUri: bctx.request.uri } : {}),
      }));
    }, (c) => c.viaRpc ?? c.expect);

    it('logged no token and no proof', () => {
      assertNoTokenLogged(logs, [...sent, ...proofs]);
      assert.deepEqual(logs.find('error', /unexpected error in handler/), []);
    });
  });
});
