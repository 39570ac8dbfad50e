/**
 * The sender-constraint corpus (RFC 8705 mTLS-bound and RFC 9449 DPoP-bound tokens): hostile
 * presentations of bound tokens, and controls, each with the verdict every verification path must
 * reach. Like attack-corpus.ts it is transport-neutral: a case builds a `BindingPresentation`
 * (the token, the Authorization scheme, the client certificate, the DPoP proof) from a
 * `BindingContext`, and each target sends that presentation its own way:
 *
 *   - the library: `verify(token, { clientCertificate, dpop: { proof, method, uri }, scheme })`;
 *   - a Verify RPC: `client_certificate`, `dpop_proof`, `http_method`, `http_uri` (no scheme: the
 *     RPC infers DPoP from a proof, so `viaRpc` gives the verdict where that differs);
 *   - ext_authz / forward-auth: `authorization: <scheme> <token>`, `DPoP: <proof>`, the certificate
 *     as the proxy forwards it, and a request whose method and URI are `ctx.request`.
 *
 * A case never asks a target to send a request other than `ctx.request`: what differs is the
 * proof (built for another method, URI or token), the certificate, or the scheme. So each target
 * fills `ctx.request` with the method and absolute URI its transport will present (for
 * forward-auth, the one rebuilt from X-Forwarded-*; for Check, from the HTTP attributes).
 *
 * `replay: true` cases are presented twice: the first presentation must be accepted and the
 * second gets the case's verdict (`runBindingCorpus` does this).
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomUUID, X509Certificate } from 'node:crypto';
import type { SigningAlgorithm } from '../../src/verifier/jose-rules.js';
import { forgeDpopProof, generateDpopKey, swapProofHeader, type DpopKey, type ProofOptions } from '../helpers/dpop-forge.js';
import { createPki, type Pki } from '../helpers/pki.js';
import { b64url, forgeNoneToken } from '../helpers/token-forge.js';
import { claimsFor, signedBy, type CorpusContext, type Expectation } from './attack-corpus.js';
import type { Answer } from './corpus-harness.js';

/** A client certificate in the encodings the transports use. */
export interface CorpusCertificate {
  readonly der: Buffer;
  readonly pem: string;
  /** base64url SHA-256 of the DER (computed with node's X509Certificate parser, not ours). */
  readonly x5t: string;
}

/** What a binding case may use beyond the attack corpus' context. Filled by each target. */
export interface BindingContext extends CorpusContext {
  /** The request every presentation is for: the method and the absolute URI this target presents. */
  readonly request: { readonly method: string; readonly uri: string };
  /** The client's certificate and another client's (same CA). */
  readonly certificates: { readonly client: CorpusCertificate; readonly other: CorpusCertificate };
  /** The client's DPoP keys, one of each algorithm, and a thief's. */
  readonly dpopKeys: Readonly<Record<SigningAlgorithm, DpopKey>>;
  readonly thief: DpopKey;
}

/** One presentation of a token, transport-neutral. */
export interface BindingPresentation {
  readonly token: string;
  /** The Authorization scheme an HTTP client uses. */
  readonly scheme: 'Bearer' | 'DPoP';
  readonly certificate?: CorpusCertificate;
  /** The `DPoP` header value, for `ctx.request`. */
  readonly proof?: string;
}

export interface BindingCase {
  readonly name: string;
  readonly ref: string;
  present(ctx: BindingContext): BindingPresentation;
  readonly expect: Expectation;
  /** Pins why the reason was given (as AttackCase.detail). */
  readonly detail?: RegExp;
  /** The verdict over a Verify RPC, where it differs (the RPC carries no scheme: a proof means DPoP). */
  readonly viaRpc?: Expectation;
  /** Present twice: the first must be VALID, the second gets `expect`. Each run builds a fresh proof. */
  readonly replay?: boolean;
}

const REF = {
  dpop: 'RFC 9449 §4.3',
  alg: 'RFC 9449 §4.3 check 5; RFC 8725 §3.1',
  key: 'RFC 9449 §4.3 check 6 (jwk is a public key)',
  sig: 'RFC 9449 §4.3 check 7',
  htm: 'RFC 9449 §4.3 check 8',
  htu: 'RFC 9449 §4.3 check 9',
  iat: 'RFC 9449 §4.3 check 10; §11.1',
  ath: 'RFC 9449 §4.3 check 11; §7',
  jkt: 'RFC 9449 §4.3 check 12; §6.1',
  replay: 'RFC 9449 §11.1 (jti single use)',
  typ: 'RFC 9449 §4.3 check 4',
  scheme: 'RFC 9449 §7.1, §7.2',
  mtls: 'RFC 8705 §3, §3.1',
  cnf: 'RFC 7800 §3; RFC 8705 §3.1; RFC 9449 §6',
  control: 'control: must be accepted',
} as const;

/** A token bound with this cnf, signed by the trusted ES256 key. */
const boundToken = (ctx: BindingContext, cnf: unknown, alg: SigningAlgorithm = 'ES256') => signedBy(ctx, alg, { cnf });
const dpopToken = (ctx: BindingContext, key: DpopKey = ctx.dpopKeys.ES256) => boundToken(ctx, { jkt: key.jkt });
const mtlsToken = (ctx: BindingContext) => boundToken(ctx, { 'x5t#S256': ctx.certificates.client.x5t });

/** A proof for ctx.request and `token`, signed by `key`, with changes. */
function proofFor(ctx: BindingContext, token: string, o: Partial<ProofOptions> = {}): string {
  return forgeDpopProof({ key: ctx.dpopKeys.ES256, method: ctx.request.method, uri: ctx.request.uri, accessToken: token, iatSec: ctx.nowSec(), ...o });
}

/** A DPoP presentation of a DPoP-bound token whose proof is changed by `o`. */
function dpopWith(o: (ctx: BindingContext, token: string) => Partial<ProofOptions>): (ctx: BindingContext) => BindingPresentation {
  return (ctx) => {
    const token = dpopToken(ctx);
    return { token, scheme: 'DPoP', proof: proofFor(ctx, token, o(ctx, token)) };
  };
}

/** The request URI with its path changed (same scheme, host and port). */
function otherPath(uri: string): string {
  const u = new URL(uri);
  u.pathname = `${u.pathname.replace(/\/$/, '')}/other`;
  return u.toString();
}

const cases: BindingCase[] = [];
const add = (c: BindingCase) => cases.push(c);

// --- controls
for (const alg of ['ES256', 'EdDSA', 'RS256'] as const) {
  add({
    name: `control: a DPoP-bound token with a fresh ${alg} proof of its key`,
    ref: REF.control,
    expect: 'VALID',
    present: (ctx) => {
      const token = dpopToken(ctx, ctx.dpopKeys[alg]);
      return { token, scheme: 'DPoP', proof: proofFor(ctx, token, { key: ctx.dpopKeys[alg] }) };
    },
  });
}
add({ name: 'control: an mTLS-bound token with its certificate', ref: REF.control, expect: 'VALID', present: (ctx) => ({ token: mtlsToken(ctx), scheme: 'Bearer', certificate: ctx.certificates.client }) });
add({ name: 'control: an unbound token as Bearer, with a client certificate that plays no part', ref: REF.control, expect: 'VALID', present: (ctx) => ({ token: signedBy(ctx, 'ES256'), scheme: 'Bearer', certificate: ctx.certificates.other }) });
add({ name: 'control: the proof\'s htu may carry a query and a fragment', ref: REF.htu, expect: 'VALID', present: dpopWith((ctx) => ({ uri: `${ctx.request.uri}?page=2#top` })) });

// --- DPoP proof: algorithm and key
add({
  name: 'DPoP proof with alg none',
  ref: REF.alg,
  expect: 'INVALID_DPOP_PROOF',
  detail: /proof alg is not allowed/,
  present: (ctx) => {
    const token = dpopToken(ctx);
    const proof = forgeNoneToken({ payload: { jti: randomUUID(), htm: ctx.request.method, htu: ctx.request.uri, iat: ctx.nowSec(), ath: createHash('sha256').update(token).digest('base64url') }, headerExtra: { typ: 'dpop+jwt', jwk: ctx.dpopKeys.ES256.publicJwk } });
    return { token, scheme: 'DPoP', proof };
  },
});
add({ name: 'DPoP proof with HS256 keyed with the public JWK (algorithm confusion)', ref: REF.alg, expect: 'INVALID_DPOP_PROOF', detail: /proof alg is not allowed/, present: dpopWith((ctx) => ({ alg: 'HS256', signWith: JSON.stringify(ctx.dpopKeys.ES256.publicJwk) })) });
add({ name: 'DPoP proof with HS256 and an oct jwk', ref: REF.alg, expect: 'INVALID_DPOP_PROOF', detail: /proof alg is not allowed/, present: dpopWith(() => ({ alg: 'HS256', signWith: 'k', headerExtra: { jwk: { kty: 'oct', k: b64url('k') } } })) });
add({ name: 'DPoP proof with PS256 (not on the allow-list)', ref: REF.alg, expect: 'INVALID_DPOP_PROOF', detail: /proof alg is not allowed/, present: dpopWith((ctx) => ({ key: ctx.dpopKeys.RS256, alg: 'PS256' })) });
add({ name: 'DPoP proof with the private key embedded in its jwk', ref: REF.key, expect: 'INVALID_DPOP_PROOF', detail: /private key material/, present: dpopWith((ctx) => ({ headerExtra: { jwk: ctx.dpopKeys.ES256.privateJwk } })) });
add({ name: 'DPoP proof with a 1024-bit RSA jwk', ref: REF.key, expect: 'INVALID_DPOP_PROOF', detail: /at least 2048 bits/, present: dpopWith(() => ({ key: WEAK_RSA_DPOP, alg: 'RS256' })) });
add({ name: 'DPoP proof whose jwk is of another curve than its alg', ref: REF.key, expect: 'INVALID_DPOP_PROOF', detail: /does not fit its alg/, present: dpopWith((ctx) => ({ headerExtra: { jwk: ctx.dpopKeys.EdDSA.publicJwk } })) });
add({ name: 'DPoP proof naming its key by jku instead of jwk', ref: REF.key, expect: 'INVALID_DPOP_PROOF', detail: /jku is not accepted/, present: dpopWith(() => ({ headerExtra: { jku: 'https://attacker.test/jwks.json' } })) });
add({ name: 'DPoP proof with an x5c header', ref: REF.key, expect: 'INVALID_DPOP_PROOF', detail: /x5c is not accepted/, present: dpopWith(() => ({ headerExtra: { x5c: ['MIIB'] } })) });
add({ name: 'DPoP proof without a jwk', ref: REF.key, expect: 'INVALID_DPOP_PROOF', detail: /jwk is missing/, present: dpopWith(() => ({ headerExtra: { jwk: undefined } })) });

// --- DPoP proof: signature and shape
add({
  name: 'DPoP proof whose jwk was swapped for the bound key after signing (the thief signs, claims the victim\'s key)',
  ref: REF.sig,
  expect: 'INVALID_DPOP_PROOF',
  detail: /signature does not verify/,
  present: (ctx) => {
    const token = dpopToken(ctx);
    const signed = proofFor(ctx, token, { key: ctx.thief });
    return { token, scheme: 'DPoP', proof: swapProofHeader(signed, { typ: 'dpop+jwt', alg: 'ES256', jwk: ctx.dpopKeys.ES256.publicJwk }) };
  },
});
add({ name: 'DPoP proof signed by another key than its jwk', ref: REF.sig, expect: 'INVALID_DPOP_PROOF', detail: /signature does not verify/, present: dpopWith((ctx) => ({ signWith: ctx.thief.privateKey })) });
add({ name: 'DPoP proof that is not a JWS', ref: REF.dpop, expect: 'INVALID_DPOP_PROOF', detail: /3 segments/, present: (ctx) => ({ token: dpopToken(ctx), scheme: 'DPoP', proof: 'not-a-proof' }) });
add({ name: 'DPoP proof with typ JWT', ref: REF.typ, expect: 'INVALID_DPOP_PROOF', detail: /typ is not dpop\+jwt/, present: dpopWith(() => ({ headerExtra: { typ: 'JWT' } })) });
add({ name: 'DPoP proof with typ at+jwt (an access token offered as its own proof)', ref: REF.typ, expect: 'INVALID_DPOP_PROOF', detail: /typ is not dpop\+jwt/, present: dpopWith(() => ({ headerExtra: { typ: 'at+jwt' } })) });
add({ name: 'DPoP proof without typ', ref: REF.typ, expect: 'INVALID_DPOP_PROOF', detail: /typ is not dpop\+jwt/, present: dpopWith(() => ({ headerExtra: { typ: undefined } })) });

// --- DPoP proof: the request, the time, the token
add({ name: 'DPoP proof for another method (htm)', ref: REF.htm, expect: 'INVALID_DPOP_PROOF', detail: /htm is not the request method/, present: dpopWith((ctx) => ({ method: ctx.request.method === 'DELETE' ? 'GET' : 'DELETE' })) });
add({ name: 'DPoP proof for another path (htu)', ref: REF.htu, expect: 'INVALID_DPOP_PROOF', detail: /htu is not the request URI/, present: dpopWith((ctx) => ({ uri: otherPath(ctx.request.uri) })) });
add({ name: 'DPoP proof for another host (htu)', ref: REF.htu, expect: 'INVALID_DPOP_PROOF', detail: /htu is not the request URI/, present: dpopWith((ctx) => ({ uri: ctx.request.uri.replace(/\/\/[^/]+/, '//attacker.test') })) });
add({ name: 'DPoP proof for the other scheme (htu http vs https)', ref: REF.htu, expect: 'INVALID_DPOP_PROOF', detail: /htu is not the request URI/, present: dpopWith((ctx) => ({ uri: ctx.request.uri.startsWith('https:') ? ctx.request.uri.replace(/^https:/, 'http:') : ctx.request.uri.replace(/^http:/, 'https:') })) });
add({ name: 'DPoP proof issued before the window (stale iat)', ref: REF.iat, expect: 'INVALID_DPOP_PROOF', detail: /older than the \d+ s DPoP window/, present: dpopWith((ctx) => ({ iatSec: ctx.nowSec() - 3600 })) });
add({ name: 'DPoP proof from the future (iat beyond the clock skew)', ref: REF.iat, expect: 'INVALID_DPOP_PROOF', detail: /in the future/, present: dpopWith((ctx) => ({ iatSec: ctx.nowSec() + 3600 })) });
add({ name: 'DPoP proof without ath', ref: REF.ath, expect: 'INVALID_DPOP_PROOF', detail: /ath is missing/, present: dpopWith(() => ({ accessToken: undefined })) });
add({
  name: 'DPoP proof made for another token of the same key (ath)',
  ref: REF.ath,
  expect: 'INVALID_DPOP_PROOF',
  detail: /ath is not the hash of the presented access token/,
  present: (ctx) => {
    const token = dpopToken(ctx);
    return { token, scheme: 'DPoP', proof: proofFor(ctx, dpopToken(ctx)) };
  },
});
add({ name: 'a replayed DPoP proof (same jti again)', ref: REF.replay, expect: 'INVALID_DPOP_PROOF', detail: /already used \(replay\)/, replay: true, present: dpopWith(() => ({})) });

// --- binding: key, certificate, scheme
add({ name: 'a DPoP-bound token without a proof', ref: REF.jkt, expect: 'BINDING_MISMATCH', detail: /no DPoP proof was presented/, present: (ctx) => ({ token: dpopToken(ctx), scheme: 'DPoP' }) });
add({ name: 'a stolen DPoP-bound token with a valid proof of the thief\'s own key', ref: REF.jkt, expect: 'BINDING_MISMATCH', detail: /signed by a key other than/, present: dpopWith((ctx) => ({ key: ctx.thief })) });
add({
  name: 'a DPoP-bound token presented as Bearer (with a valid proof)',
  ref: REF.scheme,
  expect: 'BINDING_MISMATCH',
  detail: /presented with the Bearer scheme/,
  viaRpc: 'VALID',
  present: (ctx) => {
    const token = dpopToken(ctx);
    return { token, scheme: 'Bearer', proof: proofFor(ctx, token) };
  },
});
add({ name: 'a DPoP-bound token presented as Bearer without a proof', ref: REF.scheme, expect: 'BINDING_MISMATCH', present: (ctx) => ({ token: dpopToken(ctx), scheme: 'Bearer' }) });
add({
  name: 'the DPoP scheme with an unbound token (and a valid proof)',
  ref: REF.scheme,
  expect: 'BINDING_MISMATCH',
  detail: /not bound to a DPoP key/,
  present: (ctx) => {
    const token = signedBy(ctx, 'ES256');
    return { token, scheme: 'DPoP', proof: proofFor(ctx, token) };
  },
});
add({ name: 'an mTLS-bound token without a certificate', ref: REF.mtls, expect: 'BINDING_MISMATCH', detail: /none was presented/, present: (ctx) => ({ token: mtlsToken(ctx), scheme: 'Bearer' }) });
add({ name: 'an mTLS-bound token with another client\'s certificate', ref: REF.mtls, expect: 'BINDING_MISMATCH', detail: /another client certificate/, present: (ctx) => ({ token: mtlsToken(ctx), scheme: 'Bearer', certificate: ctx.certificates.other }) });
add({
  name: 'an mTLS-bound token presented with the DPoP scheme and a proof',
  ref: REF.scheme,
  expect: 'BINDING_MISMATCH',
  detail: /certificate-bound token/,
  present: (ctx) => {
    const token = mtlsToken(ctx);
    return { token, scheme: 'DPoP', certificate: ctx.certificates.client, proof: proofFor(ctx, token) };
  },
});

// --- the cnf claim itself (signed by the trusted key: the authority never issues these)
for (const [label, cnf] of [
  ['both x5t#S256 and jkt', 'BOTH'],
  ['an unknown confirmation method (jwk)', { jwk: { kty: 'EC', crv: 'P-256', x: 'x', y: 'y' } }],
  ['x5t (SHA-1) rather than x5t#S256', { x5t: 'A'.repeat(27) }],
  ['a jkt that is not a SHA-256 thumbprint', { jkt: 'short' }],
  ['a string', 'jkt'],
] as const) {
  add({
    name: `cnf with ${label}`,
    ref: REF.cnf,
    expect: 'MALFORMED',
    detail: /claim cnf/,
    present: (ctx) => ({
      token: signedBy(ctx, 'ES256', { cnf: cnf === 'BOTH' ? { 'x5t#S256': ctx.certificates.client.x5t, jkt: ctx.dpopKeys.ES256.jkt } : cnf }),
      scheme: 'Bearer',
      certificate: ctx.certificates.client,
    }),
  });
}

/** A 1024-bit RSA DPoP key (too weak): generated once. */
const WEAK_RSA_DPOP: DpopKey = (() => {
  const pair = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const publicJwk = pair.publicKey.export({ format: 'jwk' }) as Record<string, string>;
  return { alg: 'RS256', privateKey: pair.privateKey, publicKey: pair.publicKey, publicJwk, privateJwk: pair.privateKey.export({ format: 'jwk' }) as Record<string, string>, jkt: 'unused' };
})();

export const BINDING_CORPUS: readonly BindingCase[] = Object.freeze(cases);
{
  const seen = new Set<string>();
  for (const c of cases) {
    if (seen.has(c.name)) throw new Error(`binding corpus: duplicate case name "${c.name}"`);
    seen.add(c.name);
  }
}

/** The binding fixtures a target adds to its CorpusContext: certificates (openssl) and DPoP keys. */
export interface BindingFixtures {
  readonly certificates: BindingContext['certificates'];
  readonly dpopKeys: BindingContext['dpopKeys'];
  readonly thief: DpopKey;
  /** The client certificates' private keys as PEM (for a target that makes real mTLS connections). */
  readonly certificateKeys: { readonly client: Buffer; readonly other: Buffer };
  readonly pki: Pki;
  cleanup(): void;
}

export async function makeBindingFixtures(): Promise<BindingFixtures> {
  const pki = createPki();
  const ca = pki.createCa('binding-ca');
  const cert = (name: string) => {
    const files = ca.issue(name, { cn: name });
    const pem = files.certPem.toString('utf8');
    const der = new X509Certificate(pem).raw;
    return { cert: { der, pem, x5t: createHash('sha256').update(der).digest('base64url') }, key: files.keyPem };
  };
  const client = cert('binding-client');
  const other = cert('binding-other');
  const [ES256, EdDSA, RS256, thief] = await Promise.all([generateDpopKey('ES256'), generateDpopKey('EdDSA'), generateDpopKey('RS256'), generateDpopKey('ES256')]);
  return {
    certificates: { client: client.cert, other: other.cert },
    certificateKeys: { client: client.key, other: other.key },
    dpopKeys: { ES256, EdDSA, RS256 },
    thief,
    pki,
    cleanup: () => pki.cleanup(),
  };
}

/**
 * One mocha test per case: the target's answer to the presentation must be the expected verdict
 * (`expected(c)`, default `c.expect`), with the detail pinned when it is the case's own verdict,
 * and never echo the token or the proof. Replay cases are presented twice (first VALID).
 */
export function runBindingCorpus(
  list: readonly BindingCase[],
  ctx: () => BindingContext,
  ask: (p: BindingPresentation, c: BindingCase) => Promise<Answer>,
  expected: (c: BindingCase) => Expectation | 'MISSING_TOKEN' = (c) => c.expect,
): void {
  for (const c of list) {
    const want = expected(c);
    it(`${want}: ${c.name}`, async () => {
      const p = c.present(ctx());
      if (c.replay) {
        const first = await ask(p, c);
        assert.equal(first.outcome, 'VALID', `${c.name}: the first presentation must be accepted (${first.detail})`);
      }
      const answer = await ask(p, c);
      assert.equal(answer.outcome, want, `${c.name} [${c.ref}]: expected ${want}, got ${answer.outcome} (${answer.detail})`);
      if (c.detail && want === c.expect && want !== 'VALID') assert.match(answer.detail, c.detail, `${c.name}: rejected for another cause`);
      assert.ok(!answer.detail.includes(p.token), 'the detail must not echo the token');
      if (p.proof && p.proof.length >= 16) assert.ok(!answer.detail.includes(p.proof), 'the detail must not echo the proof');
    });
  }
}

export { claimsFor };
