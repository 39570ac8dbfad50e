import assert from 'node:assert/strict';
import { newRefreshToken } from '../../src/authority/session-records.js';
import type { VerifyResult } from '../../src/shared/claims.js';
import type { RevocationEvent } from '../../src/shared/revocation-event.js';
import { createInternalVerifier, type InternalVerifier } from '../../src/verifier/create-verifier.js';
import { createStaticKeyResolver } from '../../src/verifier/key-resolvers.js';
import { TEST_ISSUER } from '../helpers/authority.js';
import { ATTACK_CORPUS, signedBy, type CorpusContext } from './attack-corpus.js';
import { CORPUS_AUDIENCE, makeCorpusKeys, reportTimings, revokedIds, runCorpus, type Answer } from './corpus-harness.js';

const outcomeOf = (r: VerifyResult): Answer => (r.valid ? { outcome: 'VALID', detail: '' } : { outcome: r.reason, detail: r.detail });

describe('attack corpus → library (createVerifier, in process)', function () {
  this.timeout(30_000);
  let ctx: CorpusContext;
  let verifier: InternalVerifier;

  before(async () => {
    const { keys } = await makeCorpusKeys();
    const revoked = revokedIds();
    // The same trust as the authority's published key set: the removed key is simply absent.
    verifier = createInternalVerifier({
      issuer: TEST_ISSUER,
      keys: createStaticKeyResolver(Object.values(keys.trusted).map((k) => k.verificationKey)),
      clockSkewMs: 30_000,
    });
    await verifier.start();
    const now = Date.now();
    const event = (seq: number, kind: RevocationEvent['kind'], id: string, gen?: number): RevocationEvent =>
      ({ v: 1, type: 'rev', seq, kind, id, until: now + 3_600_000, at: now, ...(gen === undefined ? {} : { gen }) });
    verifier.applyRevocation(event(1, 'jti', revoked.jti));
    verifier.applyRevocation(event(2, 'sid', revoked.sid));
    verifier.applyRevocation(event(3, 'sub', revoked.sub, 1));
    ctx = {
      issuer: TEST_ISSUER,
      audience: CORPUS_AUDIENCE,
      nowSec: () => Math.floor(Date.now() / 1000),
      keys: keys.trusted,
      removed: keys.removed,
      attacker: keys.attacker,
      refreshToken: newRefreshToken(),
      revoked,
    };
  });
  after(() => verifier?.stop());

  const run = runCorpus(ATTACK_CORPUS, () => ctx, async (token, c) => {
    const req = { audience: CORPUS_AUDIENCE, requiredScopes: c.requiredScopes ?? [] };
    const viaAsync = outcomeOf(await verifier.verify(token, req));
    // The synchronous entry point and a second (possibly cached) evaluation must agree.
    const viaSync = outcomeOf(verifier.verifySync(token, req));
    assert.equal(viaSync.outcome, viaAsync.outcome, 'verifySync agrees with verify');
    return viaAsync;
  });

  it('stays responsive: a valid token of every key still verifies after the corpus', async () => {
    for (const alg of ['ES256', 'EdDSA', 'RS256'] as const) {
      const r = await verifier.verify(signedBy(ctx, alg), { audience: CORPUS_AUDIENCE });
      assert.equal(r.valid ? 'VALID' : r.reason, 'VALID');
    }
    const outcomes = verifier.status().outcomes;
    assert.ok((outcomes.MALFORMED ?? 0) > 50 && (outcomes.UNSUPPORTED_ALGORITHM ?? 0) > 50, 'the outcomes were counted');
  });

  it('ran every case within a generous time bound', () => {
    reportTimings('library', run, { totalMs: 5_000, caseMs: 500 });
  });
});
