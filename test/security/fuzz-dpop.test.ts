/**
 * Property-based fuzzing of the DPoP proof check (checkDpopProof), against an oracle written here
 * from RFC 9449 §4.3 as the library documents it (docs/verifier.md "Sender-constrained tokens"):
 * a proof built from a random choice, per member, between a right value and a wrong one, signed by
 * its own jwk's key (or not), is accepted iff every choice was right (a valid proof of another
 * client's key: BINDING_MISMATCH); and no input, including
 * random bytes and mutated proofs, makes it throw or accept.
 *
 * Seed printed; replay with FC_SEED=<seed>.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkDpopProof, type DpopProofCheckOptions } from '../../src/verifier/dpop-proof.js';
import { MemoryDpopReplayCache } from '../../src/verifier/dpop-replay-cache.js';
import { SIGNING_ALGORITHMS } from '../../src/verifier/jose-rules.js';
import { ath, forgeDpopProof, generateDpopKey, type DpopKey } from '../helpers/dpop-forge.js';
import { b64url, signRaw } from '../helpers/token-forge.js';

const SEED = process.env.FC_SEED ? Number(process.env.FC_SEED) : Math.floor(Math.random() * 2 ** 31);
const NOW = Math.floor(Date.now() / 1000);
const URI = 'https://api.test/orders';
const TOKEN = 'access.token.text';

describe(`DPoP proof fuzzing (seed ${SEED}; replay with FC_SEED=${SEED})`, function () {
  this.timeout(60_000);
  let key: DpopKey;
  let other: DpopKey;
  before(async () => {
    key = await generateDpopKey('ES256');
    other = await generateDpopKey('ES256');
    console.log(`      fuzz-dpop seed ${SEED}`);
  });
  const opts = (): DpopProofCheckOptions & { replay: MemoryDpopReplayCache } => ({
    method: 'GET', uri: URI, accessToken: TOKEN, nowSec: NOW, windowSec: 60, clockSkewSec: 30, algorithms: SIGNING_ALGORITHMS, replay: new MemoryDpopReplayCache(),
  });

  it('accepts a proof iff every member is right (oracle from RFC 9449 §4.3)', () => {
    // Each member: [right value, wrong values...]; `undefined` omits it.
    const choices = {
      typ: ['dpop+jwt', 'application/dpop+jwt', 'DPoP+JWT', undefined, 'JWT', 'at+jwt', 'dpop+jwt ', 42],
      alg: ['ES256', 'none', 'HS256', 'ES384', 'es256', undefined],
      jwk: ['PUBLIC', 'PRIVATE', 'OTHER', undefined, 'STRING'],
      extraHeader: [undefined, 'kid', 'jku', 'x5c', 'crit'],
      jti: ['j-1', '', undefined, 7, 'x'.repeat(257), 'x'.repeat(256)],
      htm: ['GET', 'get', 'POST', undefined],
      htu: [URI, 'https://API.test:443/orders?q=1#f', 'https://api.test/orders/', 'http://api.test/orders', undefined, '/orders'],
      iat: [NOW, NOW - 60, NOW + 30, NOW - 61, NOW + 31, undefined, String(NOW), -1],
      ath: [ath(TOKEN), ath(`${TOKEN}x`), undefined, 1],
      signer: ['OWN', 'OTHER'],
    } as const;
    const good: Record<keyof typeof choices, (v: unknown) => boolean> = {
      typ: (v) => v === 'dpop+jwt' || v === 'application/dpop+jwt' || v === 'DPoP+JWT',
      alg: (v) => v === 'ES256',
      jwk: (v) => v === 'PUBLIC',
      extraHeader: (v) => v === undefined || v === 'kid',
      jti: (v) => typeof v === 'string' && v.length > 0 && v.length <= 256,
      htm: (v) => v === 'GET',
      htu: (v) => v === URI || v === 'https://API.test:443/orders?q=1#f',
      iat: (v) => typeof v === 'number' && v >= NOW - 60 && v <= NOW + 30,
      ath: (v) => v === ath(TOKEN),
      signer: (v) => v === 'OWN',
    };
    const names = Object.keys(choices) as Array<keyof typeof choices>;
    // Right values are drawn far more often than wrong ones, so that about a fifth of the proofs are valid.
    const member = (n: keyof typeof choices): fc.Arbitrary<unknown> => {
      const all = choices[n] as readonly unknown[];
      const right = all.filter((v) => good[n](v));
      const wrong = all.filter((v) => !good[n](v));
      return fc.oneof({ arbitrary: fc.constantFrom(...right), weight: 6 * wrong.length }, { arbitrary: fc.constantFrom(...wrong), weight: wrong.length });
    };
    const arb = fc.record(Object.fromEntries(names.map((n) => [n, member(n)])) as Record<keyof typeof choices, fc.Arbitrary<unknown>>);
    let accepted = 0;
    fc.assert(fc.property(arb, (c) => {
      const jwk = c.jwk === 'PUBLIC' ? key.publicJwk : c.jwk === 'PRIVATE' ? key.privateJwk : c.jwk === 'OTHER' ? other.publicJwk : c.jwk === 'STRING' ? 'jwk' : undefined;
      const header: Record<string, unknown> = { typ: c.typ, alg: c.alg, jwk };
      if (c.extraHeader === 'kid') header.kid = 'k1';
      else if (c.extraHeader === 'jku') header.jku = 'https://x.test/jwks';
      else if (c.extraHeader === 'x5c') header.x5c = ['MIIB'];
      else if (c.extraHeader === 'crit') header.crit = ['x'];
      const payload = { jti: c.jti, htm: c.htm, htu: c.htu, iat: c.iat, ath: c.ath };
      const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
      const signer = c.signer === 'OWN' ? key.privateKey : other.privateKey;
      const proof = `${input}.${b64url(signRaw('ES256', signer, input))}`;
      // The other client's proof, signed by its own key, is a valid proof by the wrong key: BINDING_MISMATCH.
      const othersOwn = c.jwk === 'OTHER' && c.signer === 'OTHER';
      const allRight = names.every((n) => good[n](c[n]) || ((n === 'jwk' || n === 'signer') && othersOwn));
      const expected = !allRight ? 'INVALID_DPOP_PROOF' : othersOwn ? 'BINDING_MISMATCH' : 'ok';
      const r = checkDpopProof(proof, { ...opts(), jkt: key.jkt });
      if (r.ok) accepted++;
      assert.equal(r.ok ? 'ok' : r.reason, expected, `${JSON.stringify(c)} → ${r.ok ? 'accepted' : r.detail}`);
    }), { seed: SEED, numRuns: 400 });
    console.log(`      ${accepted} of 400 random proofs were valid and accepted`);
    assert.ok(accepted >= 20, 'the generator reaches valid proofs (otherwise the property says little)');
  });

  it('never throws and never accepts on random text, bytes, or a valid proof with one character changed', () => {
    const valid = forgeDpopProof({ key, method: 'GET', uri: URI, accessToken: TOKEN, iatSec: NOW, jti: 'fixed' });
    assert.equal(checkDpopProof(valid, opts()).ok, true, 'fixture: the unmutated proof is accepted');
    fc.assert(fc.property(
      fc.oneof(
        fc.string({ maxLength: 300 }),
        fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
        fc.tuple(fc.nat(valid.length - 1), fc.constantFrom(...'ABCabc012-_.=+/ ')).map(([i, ch]) => valid.slice(0, i) + ch + valid.slice(i + 1)).filter((p) => p !== valid),
        fc.anything(),
      ),
      (input) => {
        const r = checkDpopProof(input, opts());
        assert.equal(r.ok, false, `accepted ${JSON.stringify(input)}`);
        assert.equal(typeof (r.ok ? '' : r.detail), 'string');
      },
    ), { seed: SEED, numRuns: 1500 });
  });
});
