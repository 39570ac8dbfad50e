import assert from 'node:assert/strict';
import { newRefreshToken } from '../../src/authority/session-records.js';
import type { VerifyRequirements, VerifyResult } from '../../src/shared/claims.js';
import { createInternalVerifier, type InternalVerifier } from '../../src/verifier/create-verifier.js';
import { createStaticKeyResolver } from '../../src/verifier/key-resolvers.js';
import { TEST_ISSUER } from '../helpers/authority.js';
import { BINDING_CORPUS, makeBindingFixtures, runBindingCorpus, type BindingContext, type BindingFixtures, type BindingPresentation } from './binding-corpus.js';
import { CORPUS_AUDIENCE, makeCorpusKeys, revokedIds, type Answer } from './corpus-harness.js';

const outcomeOf = (r: VerifyResult): Answer => (r.valid ? { outcome: 'VALID', detail: '' } : { outcome: r.reason, detail: r.detail });

/**
 * The binding corpus against the library, twice: as an HTTP path calls it (the scheme given, the
 * certificate as PEM) and as a Verify RPC does (no scheme, the certificate as DER). Every
 * presentation is also verified synchronously by a second verifier, which must agree.
 */
describe('binding corpus → library (createVerifier, in process)', function () {
  this.timeout(30_000);
  let ctx: BindingContext;
  let fixtures: BindingFixtures;
  const verifiers: InternalVerifier[] = [];

  before(async () => {
    const { keys } = await makeCorpusKeys();
    fixtures = await makeBindingFixtures();
    ctx = {
      issuer: TEST_ISSUER,
      audience: CORPUS_AUDIENCE,
      nowSec: () => Math.floor(Date.now() / 1000),
      keys: keys.trusted,
      removed: keys.removed,
      attacker: keys.attacker,
      refreshToken: newRefreshToken(),
      revoked: revokedIds(),
      request: { method: 'GET', uri: 'https://orders.test:8443/orders/42' },
      certificates: fixtures.certificates,
      dpopKeys: fixtures.dpopKeys,
      thief: fixtures.thief,
    };
    for (let i = 0; i < 4; i++) {
      verifiers.push(createInternalVerifier({ issuer: TEST_ISSUER, keys: createStaticKeyResolver(Object.values(keys.trusted).map((k) => k.verificationKey)), clockSkewMs: 30_000 }));
    }
  });
  after(() => fixtures?.cleanup());

  const requirements = (p: BindingPresentation, http: boolean): VerifyRequirements => ({
    audience: CORPUS_AUDIENCE,
    ...(p.certificate ? { clientCertificate: http ? p.certificate.pem : p.certificate.der } : {}),
    ...(p.proof !== undefined ? { dpop: { proof: p.proof, method: ctx.request.method, uri: ctx.request.uri } } : {}),
    ...(http ? { scheme: p.scheme } : {}),
  });

  /** verify() on one verifier, verifySync() on another (each has its own replay cache): they must agree. */
  const ask = (http: boolean, pair: 0 | 2) => async (p: BindingPresentation): Promise<Answer> => {
    const req = requirements(p, http);
    const viaAsync = outcomeOf(await verifiers[pair]!.verify(p.token, req));
    const viaSync = outcomeOf(verifiers[pair + 1]!.verifySync(p.token, req));
    assert.equal(viaSync.outcome, viaAsync.outcome, `verifySync agrees with verify (${viaSync.detail} / ${viaAsync.detail})`);
    return viaAsync;
  };

  describe('as an HTTP path presents it (scheme, PEM certificate)', () => {
    runBindingCorpus(BINDING_CORPUS, () => ctx, ask(true, 0));
  });
  describe('as a Verify RPC presents it (no scheme, DER certificate)', () => {
    runBindingCorpus(BINDING_CORPUS, () => ctx, ask(false, 2), (c) => c.viaRpc ?? c.expect);
  });

  describe('afterwards', () => {
    it('counted every outcome', () => {
      const o = verifiers[0]!.status().outcomes;
      assert.ok((o.INVALID_DPOP_PROOF ?? 0) >= 20 && (o.BINDING_MISMATCH ?? 0) >= 8 && o.valid >= 5, JSON.stringify(o));
    });
  });
});
