import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from '../../../src/verifier/jose-rules.js';
import { accessTokenHash, checkDpopProof, MAX_DPOP_PROOF_BYTES, type DpopProofCheckOptions, type DpopProofResult } from '../../../src/verifier/dpop-proof.js';
import { MemoryDpopReplayCache, type DpopReplayCache } from '../../../src/verifier/dpop-replay-cache.js';
import { ath, forgeDpopProof, generateDpopKey, swapProofHeader, type DpopKey } from '../../helpers/dpop-forge.js';
import { b64url, forgeNoneToken, forgeToken } from '../../helpers/token-forge.js';

const URI = 'https://api.test/orders/7';
const TOKEN = 'header.payload.signature-of-the-access-token';

describe('checkDpopProof (RFC 9449 §4.3)', () => {
  const keys = {} as { [A in SigningAlgorithm]: DpopKey };
  let other: DpopKey;
  const nowSec = Math.floor(Date.now() / 1000);
  before(async () => {
    for (const alg of SIGNING_ALGORITHMS) keys[alg] = await generateDpopKey(alg);
    other = await generateDpopKey('ES256');
  });
  const opts = (o: Partial<DpopProofCheckOptions> = {}) => ({
    method: 'GET', uri: URI, accessToken: TOKEN, nowSec, windowSec: 60, clockSkewSec: 5, algorithms: SIGNING_ALGORITHMS,
    replay: new MemoryDpopReplayCache(), ...o,
  }) as DpopProofCheckOptions & { replay: MemoryDpopReplayCache };
  const proof = (o: Partial<Parameters<typeof forgeDpopProof>[0]> = {}) =>
    forgeDpopProof({ key: keys.ES256, method: 'GET', uri: URI, accessToken: TOKEN, iatSec: nowSec, ...o });
  const detail = (r: DpopProofResult) => (r.ok ? 'ok' : `${r.reason}: ${r.detail}`);

  for (const alg of SIGNING_ALGORITHMS) {
    it(`accepts a proof signed with ${alg}, answering the key's RFC 7638 thumbprint (as jose computes it), jti and iat`, () => {
      const r = checkDpopProof(proof({ key: keys[alg], jti: 'j-1' }), opts({ jkt: keys[alg].jkt }));
      assert.deepEqual(r, { ok: true, jkt: keys[alg].jkt, jti: 'j-1', iat: nowSec });
    });
  }

  it('ath is the base64url SHA-256 of the access token (independent hash in the test helper)', () => {
    assert.equal(accessTokenHash(TOKEN), ath(TOKEN));
  });

  const refused: Array<[string, () => unknown, RegExp, Partial<DpopProofCheckOptions>?]> = [
    ['not a string', () => 42, /missing or not a string/],
    ['empty', () => '', /missing or not a string/],
    ['too long', () => 'a'.repeat(MAX_DPOP_PROOF_BYTES + 1), /longer than/],
    ['two segments', () => 'a.b', /3 segments/],
    ['four segments', () => 'a.b.c.d', /3 segments/],
    ['non-canonical base64url', () => `${proof()}=`, /canonical base64url/],
    ['alg none (any casing)', () => forgeNoneToken({ payload: { jti: 'x', htm: 'GET', htu: URI, iat: nowSec, ath: ath(TOKEN) }, alg: 'none', headerExtra: { typ: 'dpop+jwt', jwk: keys.ES256.publicJwk } }), /alg is not allowed/],
    ['alg NoNe', () => forgeNoneToken({ payload: {}, alg: 'NoNe', headerExtra: { typ: 'dpop+jwt', jwk: keys.ES256.publicJwk } }), /alg is not allowed/],
    ['HS256 keyed with the public JWK text', () => proof({ alg: 'HS256', signWith: JSON.stringify(keys.ES256.publicJwk) }), /alg is not allowed/],
    ['HS256 with an oct jwk', () => proof({ alg: 'HS256', signWith: 'secret', headerExtra: { jwk: { kty: 'oct', k: b64url('secret') } } }), /alg is not allowed/],
    ['alg outside this verifier\'s allow-list', () => proof(), /alg is not allowed/, { algorithms: ['EdDSA'] }],
    ['PS256 (not on the list)', () => proof({ key: keys.RS256, alg: 'PS256' }), /alg is not allowed/],
    ['typ missing', () => proof({ headerExtra: { typ: undefined } }), /typ is not dpop\+jwt/],
    ['typ at+jwt (an access token as a proof)', () => proof({ headerExtra: { typ: 'at+jwt' } }), /typ is not dpop\+jwt/],
    ['typ JWT', () => proof({ headerExtra: { typ: 'JWT' } }), /typ is not dpop\+jwt/],
    ['no jwk', () => proof({ headerExtra: { jwk: undefined } }), /jwk is missing/],
    ['jwk is a string', () => proof({ headerExtra: { jwk: JSON.stringify(keys.ES256.publicJwk) } }), /jwk is missing or not an object/],
    ['embedded private key (d)', () => proof({ headerExtra: { jwk: keys.ES256.privateJwk } }), /private key material/],
    ['embedded private RSA key', () => proof({ key: keys.RS256, headerExtra: { jwk: keys.RS256.privateJwk } }), /private key material/],
    ['jwk of another curve than alg', () => proof({ headerExtra: { jwk: keys.EdDSA.publicJwk } }), /does not fit its alg/],
    ['jwk with broken coordinates', () => proof({ headerExtra: { jwk: { ...keys.ES256.publicJwk, x: b64url('nope') } } }), /not a valid public key/],
    ['RSA jwk of 1024 bits', () => {
      const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
      return proof({ key: keys.RS256, signWith: weak.privateKey, headerExtra: { jwk: weak.publicKey.export({ format: 'jwk' }) } });
    }, /at least 2048 bits/],
    ['jku header', () => proof({ headerExtra: { jku: 'https://evil.test/jwks' } }), /jku is not accepted/],
    ['x5c header', () => proof({ headerExtra: { x5c: ['MIIB'] } }), /x5c is not accepted/],
    ['crit header', () => proof({ headerExtra: { crit: ['exp'] } }), /crit is not accepted/],
    ['duplicate header members', () => proof({ header: `{"typ":"dpop+jwt","alg":"ES256","alg":"ES256","jwk":${JSON.stringify(keys.ES256.publicJwk)}}` }), /duplicate member names/],
    ['jwk swapped after signing', () => swapProofHeader(proof(), { typ: 'dpop+jwt', alg: 'ES256', jwk: other.publicJwk }), /signature does not verify/],
    ['signed by another key than its jwk', () => proof({ signWith: other.privateKey }), /signature does not verify/],
    ['signature of the wrong length', () => `${proof().split('.').slice(0, 2).join('.')}.${b64url(Buffer.alloc(10))}`, /wrong length/],
    ['payload not JSON (signed)', () => forgeToken({ header: { typ: 'dpop+jwt', alg: 'ES256', jwk: keys.ES256.publicJwk }, payload: 'not json', key: keys.ES256.privateKey, alg: 'ES256' }), /proof payload is not valid UTF-8 JSON/],
    ['payload with duplicate members (signed)', () => forgeToken({ header: { typ: 'dpop+jwt', alg: 'ES256', jwk: keys.ES256.publicJwk }, payload: `{"jti":"a","jti":"b","htm":"GET","htu":"${URI}","iat":${nowSec}}`, key: keys.ES256.privateKey, alg: 'ES256' }), /duplicate member names/],
    ['jti missing', () => proof({ payloadExtra: { jti: undefined } }), /jti is missing/],
    ['jti too long', () => proof({ jti: 'j'.repeat(257) }), /jti is missing, not a string or longer/],
    ['htm missing', () => proof({ payloadExtra: { htm: undefined } }), /htm is missing/],
    ['htm of another method', () => proof({ method: 'POST' }), /htm is not the request method/],
    ['htm in lower case', () => proof({ method: 'get' }), /htm is not the request method/],
    ['htu missing', () => proof({ payloadExtra: { htu: undefined } }), /htu is missing/],
    ['htu of another path', () => proof({ uri: 'https://api.test/orders/8' }), /htu is not the request URI/],
    ['htu of another host', () => proof({ uri: 'https://evil.test/orders/7' }), /htu is not the request URI/],
    ['htu over http for an https request', () => proof({ uri: 'http://api.test/orders/7' }), /htu is not the request URI/],
    ['htu relative', () => proof({ uri: '/orders/7' }), /htu is not the request URI/],
    ['iat missing', () => proof({ payloadExtra: { iat: undefined } }), /iat is missing/],
    ['iat a string', () => proof({ payloadExtra: { iat: String(nowSec) } }), /iat is missing or not a time/],
    ['iat older than the window', () => proof({ iatSec: nowSec - 61 }), /older than the 60 s DPoP window/],
    ['iat ahead by more than the skew', () => proof({ iatSec: nowSec + 6 }), /in the future/],
    ['ath missing', () => proof({ accessToken: undefined }), /ath is missing/],
    ['ath of another token (a proof for another token)', () => proof({ accessToken: `${TOKEN}x` }), /ath is not the hash of the presented access token/],
  ];
  for (const [name, make, expected, o] of refused) {
    it(`INVALID_DPOP_PROOF: ${name}`, () => {
      const r = checkDpopProof(make(), opts(o));
      assert.equal(r.ok, false, detail(r));
      assert.equal(r.ok ? '' : r.reason, 'INVALID_DPOP_PROOF', detail(r));
      assert.match(r.ok ? '' : r.detail, expected);
    });
  }

  it('the window edges: iat exactly window seconds old and exactly skew ahead are accepted', () => {
    assert.equal(checkDpopProof(proof({ iatSec: nowSec - 60 }), opts()).ok, true);
    assert.equal(checkDpopProof(proof({ iatSec: nowSec + 5 }), opts()).ok, true);
  });

  it('typ is a media type: case-insensitive, "application/" optional', () => {
    assert.equal(checkDpopProof(proof({ headerExtra: { typ: 'application/DPoP+JWT' } }), opts()).ok, true);
  });

  it('without an access token (token endpoint), ath is not required', () => {
    const r = checkDpopProof(proof({ accessToken: undefined }), opts({ accessToken: undefined }));
    assert.equal(r.ok, true, detail(r));
  });

  it('a valid proof by another key than the bound one is BINDING_MISMATCH, and its jti is not consumed', () => {
    const replay = new MemoryDpopReplayCache();
    const p = proof({ jti: 'j-other' });
    const r = checkDpopProof(p, opts({ jkt: other.jkt, replay }));
    assert.equal(r.ok ? 'ok' : r.reason, 'BINDING_MISMATCH');
    assert.equal(replay.size, 0);
  });

  it('a proof is single-use: the same proof again is a replay; a fresh jti passes', () => {
    const o = opts();
    const p = proof({ jti: 'once' });
    assert.equal(checkDpopProof(p, o).ok, true);
    const again = checkDpopProof(p, o);
    assert.match(detail(again), /INVALID_DPOP_PROOF: proof jti was already used \(replay\)/);
    assert.equal(checkDpopProof(proof({ jti: 'twice' }), o).ok, true);
  });

  it('replay ids are per key: the same jti from two clients are two proofs', () => {
    const o = opts();
    assert.equal(checkDpopProof(proof({ jti: 'same' }), o).ok, true);
    assert.equal(checkDpopProof(proof({ key: other, jti: 'same' }), o).ok, true);
  });

  it('a rejected proof never reaches the replay cache (an attacker cannot burn a victim\'s jti with a bad signature)', () => {
    const o = opts();
    const good = proof({ jti: 'victim' });
    assert.equal(checkDpopProof(proof({ jti: 'victim', signWith: other.privateKey }), o).ok, false);
    assert.equal(o.replay.size, 0);
    assert.equal(checkDpopProof(good, o).ok, true);
  });

  it('a full replay cache refuses the proof', () => {
    const o = opts({ replay: new MemoryDpopReplayCache({ maxEntries: 1 }) });
    assert.equal(checkDpopProof(proof(), o).ok, true);
    assert.match(detail(checkDpopProof(proof(), o)), /replay cache is full/);
  });

  it('with an asynchronous (shared) replay cache: a promise; a cache that fails refuses the proof', async () => {
    const held = new Set<string>();
    const shared: DpopReplayCache = { claim: async (id) => (held.has(id) ? 'replayed' : (held.add(id), 'fresh')) };
    const p = proof();
    assert.equal((await checkDpopProof(p, opts({ replay: shared }))).ok, true);
    assert.match(detail(await checkDpopProof(p, opts({ replay: shared }))), /replay/);
    const broken: DpopReplayCache = { claim: async () => { throw new Error('redis down'); } };
    assert.match(detail(await checkDpopProof(proof(), opts({ replay: broken }))), /replay cache did not answer/);
    const throwing: DpopReplayCache = { claim: () => { throw new Error('sync throw'); } };
    const thrown = checkDpopProof(proof(), opts({ replay: throwing }));
    assert.equal(thrown instanceof Promise, false, 'a cache that throws is answered synchronously (verifySync relies on it)');
    assert.match(detail(thrown as DpopProofResult), /replay cache did not answer/);
    const nonsense = { claim: () => 'maybe' } as unknown as DpopReplayCache;
    assert.match(detail(checkDpopProof(proof(), opts({ replay: nonsense })) as DpopProofResult), /replay cache did not answer/, 'anything but a verdict refuses');
  });

  it('the replay id is held until the end of the window (iat + window), not longer', () => {
    const replay = new MemoryDpopReplayCache();
    let seen: number | undefined;
    const spy: DpopReplayCache = { claim: (id, untilMs, now) => { seen = untilMs; return replay.claim(id, untilMs, now); } };
    checkDpopProof(proof({ iatSec: nowSec - 10 }), opts({ replay: spy }));
    assert.equal(seen, (nowSec - 10 + 60 + 1) * 1000);
  });
});
