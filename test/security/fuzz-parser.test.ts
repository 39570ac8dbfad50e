/**
 * Property-based fuzzing of the token parser (verifySignatureAndParse + checkTimeAudienceScopes).
 *
 * The central property compares the verifier with an oracle written here from the rules as
 * documented (README "Verify reasons", RFC 7515/7519/8725/9068), not from the implementation: a
 * token re-signed with random header and claim values is valid iff the oracle finds no violation,
 * and when it is not, the reason given is one of the violations of the *earliest* stage that has
 * any (structure → header → key and signature → claims → time, audience, scopes). That ordering is
 * itself a security property: nothing in an unauthenticated payload can decide the answer.
 *
 * Runs are bounded (a few seconds in all); on failure fast-check prints the seed and path to
 * replay the counterexample.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from '../../src/verifier/jose-rules.js';
import { VerifyReasons, type VerifyReason } from '../../src/shared/claims.js';
import type { KeyResolver } from '../../src/verifier/key-resolver.js';
import { createStaticKeyResolver } from '../../src/verifier/key-resolvers.js';
import { checkTimeAudienceScopes, verifySignatureAndParse, type TokenCheckOptions } from '../../src/verifier/verify-token.js';
import { b64url, generateTestKey, signRaw, type TestKey } from '../helpers/token-forge.js';

// Replay a reported failure with FC_SEED=<seed> (fast-check prints the seed and path).
if (process.env.FC_SEED) fc.configureGlobal({ seed: Number(process.env.FC_SEED) });

const ISSUER = 'https://issuer.test';
const NOW = 1_900_000_000;
const SKEW = 30;
const MAX_TOKEN = 8192;
/** The documented upper bound of a NumericDate: 9999-12-31T23:59:59Z. */
const YEAR_9999 = 253_402_300_799;
const OPTS: TokenCheckOptions = { issuer: ISSUER, algorithms: SIGNING_ALGORITHMS, clockSkewSec: SKEW, maxTokenBytes: MAX_TOKEN };
const REGISTERED = new Set(['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'sid', 'gen', 'scope']);
const FORBIDDEN = ['jku', 'x5u', 'jwk', 'x5c', 'x5t', 'x5t#S256', 'crit', 'b64', 'zip', 'enc'];
const ALGS: readonly SigningAlgorithm[] = SIGNING_ALGORITHMS;

let trusted: Record<SigningAlgorithm, TestKey>;
let attacker: TestKey;
let keys: KeyResolver;
const runs = { total: 0, valid: 0, reasons: new Map<string, number>() };

function setup(): void {
  if (keys) return;
  trusted = { ES256: generateTestKey('ES256', 'fz-es'), EdDSA: generateTestKey('EdDSA', 'fz-ed'), RS256: generateTestKey('RS256', 'fz-rs') };
  attacker = generateTestKey('ES256', 'fz-attacker');
  keys = createStaticKeyResolver(ALGS.map((a) => trusted[a].verificationKey));
}

/** Sign arbitrary header/payload JSON texts with `signer` (its own algorithm). */
function signTexts(headerText: string, payloadText: string, signer: TestKey): string {
  const input = `${b64url(headerText)}.${b64url(payloadText)}`;
  return `${input}.${b64url(signRaw(signer.alg, signer.privateKey, input))}`;
}

/** The full pipeline, as the library runs it for a call. Must never throw. */
function verdict(token: unknown, req: { audience?: string; requiredScopes?: readonly string[] } = {}): { ok: true; claims: import('../../src/shared/claims.js').VerifiedClaims } | { ok: false; reason: VerifyReason } {
  const parsed = verifySignatureAndParse(token, keys, OPTS);
  if (!parsed.ok) {
    assert.ok((VerifyReasons as readonly string[]).includes(parsed.reason), `unknown reason ${parsed.reason}`);
    assert.equal(typeof parsed.detail, 'string');
    return { ok: false, reason: parsed.reason };
  }
  const r = checkTimeAudienceScopes(parsed.claims, req, OPTS, NOW);
  return r.valid ? { ok: true, claims: r.claims } : { ok: false, reason: r.reason };
}

// ---------------------------------------------------------------------------------------------
// The oracle

type Stage = 'structure' | 'header' | 'signature' | 'claims' | 'request';
const STAGES: readonly Stage[] = ['structure', 'header', 'signature', 'claims', 'request'];
type Violations = Map<Stage, Set<VerifyReason>>;

function violate(v: Violations, stage: Stage, reason: VerifyReason): void {
  let s = v.get(stage);
  if (!s) v.set(stage, (s = new Set()));
  s.add(reason);
}

const isPlainObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const nonEmptyString = (x: unknown): x is string => typeof x === 'string' && x.length > 0;
const isNumericDate = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= YEAR_9999;

/**
 * Member names at the top level of a JSON object text, in order, duplicates kept. A walk over the
 * text that skips strings by their escapes (a different technique from the verifier's, on purpose).
 */
function topLevelNames(text: string): string[] {
  const names: string[] = [];
  let depth = 0;
  let expectName = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectName) names.push(JSON.parse(text.slice(i, j + 1)) as string);
      expectName = false;
      i = j;
    } else if (c === '{' || c === '[') {
      depth++;
      expectName = depth === 1 && c === '{';
    } else if (c === '}' || c === ']') depth--;
    else if (c === ',' && depth === 1) expectName = true;
  }
  return names;
}

/** Parse a JSON object text the way RFC 7515/7519 want it: an object, member names unique. */
function strictObject(text: string): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isPlainObject(value)) return undefined;
  const names = topLevelNames(text);
  return new Set(names).size === names.length ? value : undefined;
}

interface Signed {
  token: string;
  headerText: string;
  payloadText: string;
  /** The key that actually produced the signature. */
  signer: TestKey;
  req: { audience?: string; requiredScopes: string[] };
}

/** Every rule this verifier documents, applied to what was signed. */
function expectations(s: Signed): Violations {
  const v: Violations = new Map();
  if (s.token.length > MAX_TOKEN) violate(v, 'structure', 'MALFORMED');

  // Texts travel as UTF-8: what the verifier reads is the text after a UTF-8 round trip.
  const header = strictObject(Buffer.from(s.headerText, 'utf8').toString('utf8'));
  if (!header) {
    violate(v, 'header', 'MALFORMED');
    return v;
  }
  const alg = header.alg;
  if (typeof alg !== 'string') violate(v, 'header', 'MALFORMED');
  else if (!(ALGS as readonly string[]).includes(alg)) violate(v, 'header', 'UNSUPPORTED_ALGORITHM');
  if (FORBIDDEN.some((name) => Object.hasOwn(header, name))) violate(v, 'header', 'FORBIDDEN_HEADER');
  const typ = header.typ;
  if (typeof typ !== 'string' || !['at+jwt', 'application/at+jwt'].includes(typ.toLowerCase())) violate(v, 'header', 'WRONG_TYPE');
  const kid = header.kid;
  if (typeof kid !== 'string' || kid.length === 0 || kid.length > 128) violate(v, 'header', 'MALFORMED');

  const key = typeof kid === 'string' ? ALGS.map((a) => trusted[a]).find((k) => k.kid === kid) : undefined;
  if (!key) violate(v, 'signature', 'UNKNOWN_KEY');
  else if (alg !== key.alg) violate(v, 'signature', 'UNSUPPORTED_ALGORITHM');
  else if (s.signer !== key) violate(v, 'signature', 'BAD_SIGNATURE');

  const p = strictObject(Buffer.from(s.payloadText, 'utf8').toString('utf8'));
  if (!p) {
    violate(v, 'claims', 'MALFORMED');
    return v;
  }
  if (typeof p.iss !== 'string') violate(v, 'claims', 'MALFORMED');
  else if (p.iss !== ISSUER) violate(v, 'claims', 'WRONG_ISSUER');
  for (const name of ['sub', 'jti', 'sid']) if (!nonEmptyString(p[name])) violate(v, 'claims', 'MALFORMED');
  for (const name of ['exp', 'nbf', 'iat']) if (!isNumericDate(p[name])) violate(v, 'claims', 'MALFORMED');
  if (!(Number.isSafeInteger(p.gen) && (p.gen as number) >= 0)) violate(v, 'claims', 'MALFORMED');
  const aud = typeof p.aud === 'string' ? [p.aud] : p.aud;
  if (!Array.isArray(aud) || aud.length === 0 || !aud.every(nonEmptyString)) violate(v, 'claims', 'MALFORMED');
  if (p.scope !== undefined && typeof p.scope !== 'string') violate(v, 'claims', 'MALFORMED');
  if (v.has('claims')) return v;

  if ((p.exp as number) <= NOW - SKEW) violate(v, 'request', 'EXPIRED');
  if ((p.nbf as number) > NOW + SKEW || (p.iat as number) > NOW + SKEW) violate(v, 'request', 'NOT_YET_VALID');
  if (s.req.audience !== undefined && !(aud as string[]).includes(s.req.audience)) violate(v, 'request', 'WRONG_AUDIENCE');
  const granted = typeof p.scope === 'string' ? p.scope.split(' ').filter((x) => x.length > 0) : [];
  if (s.req.requiredScopes.some((x) => !granted.includes(x))) violate(v, 'request', 'MISSING_SCOPE');
  return v;
}

/** Check the verifier against the oracle for one signed token. */
function checkAgainstOracle(s: Signed): void {
  const v = expectations(s);
  const out = verdict(s.token, s.req);
  runs.total++;
  const first = STAGES.find((stage) => v.has(stage));
  const key = first === undefined ? 'valid' : `${first}:${[...v.get(first)!].join('|')}`;
  runs.reasons.set(key, (runs.reasons.get(key) ?? 0) + 1);
  if (first === undefined) {
    assert.ok(out.ok, `oracle: valid; verifier: ${out.ok ? '' : out.reason}\nheader ${s.headerText}\npayload ${s.payloadText}`);
    runs.valid++;
    // And the claims handed out are the ones that were signed, normalised.
    const p = JSON.parse(s.payloadText) as Record<string, unknown>;
    assert.equal(out.claims.subject, p.sub);
    assert.deepEqual([...out.claims.audience], typeof p.aud === 'string' ? [p.aud] : p.aud);
    assert.deepEqual([...out.claims.scopes], typeof p.scope === 'string' ? p.scope.split(' ').filter((x) => x) : []);
    assert.equal(out.claims.expiresAt, p.exp);
    assert.equal(out.claims.generation, p.gen);
    const extra = Object.fromEntries(Object.entries(p).filter(([k, x]) => !REGISTERED.has(k) && typeof x === 'string'));
    assert.deepEqual({ ...out.claims.extra }, extra);
    return;
  }
  assert.ok(!out.ok, `oracle: ${first} ${[...v.get(first)!].join('|')}; verifier: valid\nheader ${s.headerText}\npayload ${s.payloadText}`);
  assert.ok(
    v.get(first)!.has(out.reason),
    `verifier said ${out.reason}; the earliest failing stage (${first}) allows ${[...v.get(first)!].join('|')}\nheader ${s.headerText}\npayload ${s.payloadText}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Arbitraries: mostly-good values with a minority of every kind of bad one, so that both valid and
// invalid tokens are common.

const mostly = <T>(good: fc.Arbitrary<T>, ...bad: Array<fc.Arbitrary<unknown>>) =>
  fc.oneof({ arbitrary: good as fc.Arbitrary<unknown>, weight: 20 * bad.length }, ...bad.map((b) => ({ arbitrary: b, weight: 1 })));
const junk = fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.string({ maxLength: 8 }), fc.array(fc.string({ maxLength: 4 }), { maxLength: 2 }), fc.constant({}));
/** undefined = the member is left out. */
const absent = fc.constant(undefined);
const boundary = (...xs: number[]) => fc.constantFrom(...xs);

/** Times: mostly valid, often exactly at a leeway boundary, sometimes anything. */
const timeArb = (good: fc.Arbitrary<number>) =>
  fc.oneof(
    { arbitrary: good as fc.Arbitrary<unknown>, weight: 40 },
    { arbitrary: boundary(NOW - SKEW, NOW - SKEW + 1, NOW - SKEW + 0.5, NOW + SKEW, NOW + SKEW + 1, NOW + SKEW + 0.5), weight: 6 },
    { arbitrary: boundary(0, YEAR_9999, YEAR_9999 + 1, -1, 1e20, 0.5), weight: 1 },
    { arbitrary: fc.integer({ min: NOW - 7200, max: NOW + 7200 }), weight: 1 },
    { arbitrary: absent, weight: 1 },
    { arbitrary: junk, weight: 1 },
  );

const claimsArb = fc.record({
  iss: mostly(fc.constant(ISSUER), fc.constantFrom(`${ISSUER}/`, 'https://evil.test', ''), absent, junk),
  sub: mostly(fc.string({ minLength: 1, maxLength: 12 }), fc.constant(''), absent, junk),
  jti: mostly(fc.uuid(), fc.constant(''), absent, junk),
  sid: mostly(fc.uuid(), fc.constant(''), absent, junk),
  exp: timeArb(fc.integer({ min: NOW - SKEW + 1, max: NOW + 3600 })),
  nbf: timeArb(fc.integer({ min: NOW - 3600, max: NOW + SKEW })),
  iat: timeArb(fc.integer({ min: NOW - 3600, max: NOW + SKEW })),
  gen: mostly(fc.nat({ max: 1000 }), boundary(-1, 1.5, 2 ** 53, Number.MAX_SAFE_INTEGER), absent, junk),
  aud: mostly(fc.constantFrom('orders', ['orders'], ['billing', 'orders']), fc.constantFrom('billing', [], '', [''], ['orders', 1]), absent, junk),
  scope: mostly(fc.constantFrom('read', 'read write', 'write read admin', '  read  '), fc.constantFrom('', 'READ', 'readwrite'), absent, junk),
});
const extraArb = fc.dictionary(
  fc.string({ minLength: 1, maxLength: 8 }).filter((k) => !REGISTERED.has(k) && k !== '__proto__'),
  fc.oneof(fc.string({ maxLength: 12 }), fc.integer(), fc.constant(null), fc.array(fc.integer(), { maxLength: 2 })),
  { maxKeys: 3 },
);
const reqArb = fc.record({
  audience: mostly(fc.constantFrom('orders', undefined), fc.constantFrom('billing', '')) as fc.Arbitrary<string | undefined>,
  requiredScopes: mostly(fc.constantFrom([], ['read']), fc.array(fc.constantFrom('read', 'write', 'admin'), { maxLength: 2 })) as fc.Arbitrary<string[]>,
});

/** A header for `alg`'s trusted key, with occasional wrong alg/typ/kid and forbidden members. */
const headerArb = (keyAlg: SigningAlgorithm) =>
  fc.record({
    alg: mostly(fc.constant(keyAlg), fc.constantFrom(...ALGS.filter((a) => a !== keyAlg)), fc.constantFrom('none', 'None', 'HS256', 'RS512', 'ES384', 'es256'), absent, junk),
    typ: mostly(fc.constantFrom('at+jwt', 'application/at+jwt', 'AT+JWT'), fc.constantFrom('JWT', 'jwt', 'at+jwt ', 'application/jwt'), absent, junk),
    kid: mostly(fc.constant(trusted[keyAlg].kid), fc.constantFrom(...ALGS.filter((a) => a !== keyAlg).map((a) => trusted[a].kid), 'unknown', 'k'.repeat(129), ''), absent, junk),
    forbidden: mostly(absent, fc.tuple(fc.constantFrom(...FORBIDDEN), fc.oneof(fc.string({ maxLength: 6 }), fc.boolean(), fc.constant([])))) as fc.Arbitrary<[string, unknown] | undefined>,
    extra: fc.dictionary(fc.constantFrom('cty', 'x', 'note', 'ver'), fc.oneof(fc.string({ maxLength: 6 }), fc.integer()), { maxKeys: 2 }),
  });

function build(h: { alg: unknown; typ: unknown; kid: unknown; forbidden: [string, unknown] | undefined; extra: Record<string, unknown> }): Record<string, unknown> {
  const header: Record<string, unknown> = { ...h.extra };
  for (const [k, x] of [['alg', h.alg], ['typ', h.typ], ['kid', h.kid]] as const) if (x !== undefined) header[k] = x;
  if (h.forbidden) header[h.forbidden[0]] = h.forbidden[1];
  return header;
}

function withoutAbsent(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined));
}

/** Which key signs: usually the key the header names, sometimes another trusted or an attacker key. */
const signerArb = (keyAlg: SigningAlgorithm) =>
  fc.oneof({ arbitrary: fc.constant(keyAlg as SigningAlgorithm | 'other' | 'attacker'), weight: 10 }, { arbitrary: fc.constantFrom<'other' | 'attacker'>('other', 'attacker'), weight: 1 });

const signedArb = fc
  .constantFrom(...ALGS)
  .chain((keyAlg) => fc.tuple(fc.constant(keyAlg), headerArb(keyAlg), claimsArb, extraArb, reqArb, signerArb(keyAlg)))
  .map(([keyAlg, h, claims, extra, req, who]): Signed => {
    const signer = who === 'attacker' ? attacker : who === 'other' ? trusted[ALGS.find((a) => a !== keyAlg)!] : trusted[keyAlg];
    const headerText = JSON.stringify(build(h));
    const payloadText = JSON.stringify(withoutAbsent({ ...extra, ...claims }));
    return { token: signTexts(headerText, payloadText, signer), headerText, payloadText, signer, req: { ...(req.audience === undefined ? {} : { audience: req.audience }), requiredScopes: req.requiredScopes } };
  });

/** A valid token for the first trusted key of `alg`, and its parts. */
function validSigned(alg: SigningAlgorithm = 'ES256', overrides: Record<string, unknown> = {}): Signed {
  const headerText = JSON.stringify({ alg, typ: 'at+jwt', kid: trusted[alg].kid });
  const payloadText = JSON.stringify({ iss: ISSUER, sub: 'u', aud: 'orders', exp: NOW + 300, nbf: NOW, iat: NOW, jti: 'j', sid: 's', gen: 0, scope: 'read', ...overrides });
  return { token: signTexts(headerText, payloadText, trusted[alg]), headerText, payloadText, signer: trusted[alg], req: { audience: 'orders', requiredScopes: ['read'] } };
}

// ---------------------------------------------------------------------------------------------

describe('fuzz: token parser (fast-check)', function () {
  this.timeout(60_000);
  before(setup);
  after(() => {
    const top = [...runs.reasons].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, n]) => `${k} ${n}`).join(', ');
    if (runs.total > 0) console.log(`      oracle comparisons: ${runs.total} tokens, ${runs.valid} valid; verdicts: ${top}`);
  });

  it('a re-signed token with random header and claim values is valid iff the oracle says so, and otherwise fails at the oracle’s earliest stage', () => {
    const before = { ...runs };
    fc.assert(fc.property(signedArb, checkAgainstOracle), { numRuns: 1500 });
    const valid = runs.valid - before.valid;
    const total = runs.total - before.total;
    // Both sides of "iff" must be exercised substantially, or the property proves little.
    assert.ok(valid > total * 0.05 && valid < total * 0.8, `${valid} of ${total} generated tokens were valid`);
  });

  it('JSON-level mutations of a valid header or payload, re-signed with the real key, agree with the oracle', () => {
    const mutation = fc.oneof(
      // duplicate a member with another value (raw), e.g. "alg" twice or an escaped spelling
      fc.record({ kind: fc.constant('dup' as const), name: fc.constantFrom('alg', 'typ', 'kid', 'iss', 'sub', 'exp', 'aud', 'scope', 'gen'), escaped: fc.boolean(), value: fc.jsonValue({ maxDepth: 1 }) }),
      // whitespace between tokens: same meaning
      fc.record({ kind: fc.constant('ws' as const), at: fc.nat(), ws: fc.constantFrom(' ', '\n', '\t', '\r\n  ') }),
      // any character inserted, deleted or replaced anywhere
      fc.record({ kind: fc.constant('char' as const), at: fc.nat(), del: fc.nat({ max: 3 }), ins: fc.string({ maxLength: 3, unit: 'binary-ascii' }) }),
    );
    fc.assert(
      fc.property(fc.constantFrom(...ALGS), fc.boolean(), mutation, (alg, inHeader, m) => {
        const base = validSigned(alg);
        let text = inHeader ? base.headerText : base.payloadText;
        if (m.kind === 'dup') {
          const name = m.escaped ? `\\u00${m.name.charCodeAt(0).toString(16)}${m.name.slice(1)}` : m.name;
          text = `${text.slice(0, -1)},"${name}":${JSON.stringify(m.value)}}`;
        } else if (m.kind === 'ws') {
          // Only between JSON tokens (after a structural character), so strings are untouched.
          const spots = [...text.matchAll(/[{},:[\]]/g)].map((x) => x.index! + 1);
          const at = spots[m.at % spots.length]!;
          text = text.slice(0, at) + m.ws + text.slice(at);
        } else {
          const at = m.at % (text.length + 1);
          text = text.slice(0, at) + m.ins + text.slice(at + m.del);
        }
        const headerText = inHeader ? text : base.headerText;
        const payloadText = inHeader ? base.payloadText : text;
        checkAgainstOracle({ ...base, headerText, payloadText, token: signTexts(headerText, payloadText, base.signer) });
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws and never accepts an arbitrary string or value', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 200 }), fc.string({ unit: 'grapheme', maxLength: 60 })), (s) => {
        const out = verdict(s);
        assert.ok(!out.ok);
      }),
      { numRuns: 1000 },
    );
    fc.assert(fc.property(fc.anything(), (x) => assert.ok(!verdict(x).ok)), { numRuns: 300 });
  });

  it('never accepts three random base64url segments, and never reads the payload of one', () => {
    const segment = fc.oneof(
      fc.uint8Array({ maxLength: 120 }).map(b64url),
      fc.jsonValue({ maxDepth: 2 }).map((x) => b64url(JSON.stringify(x))),
      // a plausible header: an allowed alg, the right typ, a real kid, and random extras
      fc.record({ alg: fc.constantFrom(...ALGS, 'none'), typ: fc.constantFrom('at+jwt', 'JWT'), kid: fc.constantFrom(...ALGS.map((a) => `fz-${a === 'ES256' ? 'es' : a === 'EdDSA' ? 'ed' : 'rs'}`), 'x'), x: fc.jsonValue({ maxDepth: 1 }) }).map((h) => b64url(JSON.stringify(h))),
    );
    const signature = fc.oneof(fc.uint8Array({ minLength: 0, maxLength: 300 }), fc.constantFrom(64, 256).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })));
    fc.assert(
      fc.property(segment, segment, signature, (h, p, s) => {
        const out = verdict(`${h}.${p}.${b64url(s)}`);
        assert.ok(!out.ok);
        // Without a valid signature the answer comes from the structure, header or signature stage.
        assert.ok(['MALFORMED', 'UNSUPPORTED_ALGORITHM', 'FORBIDDEN_HEADER', 'WRONG_TYPE', 'UNKNOWN_KEY', 'BAD_SIGNATURE'].includes(out.reason), out.reason);
        if (out.reason === 'MALFORMED') {
          const detail = (verifySignatureAndParse(`${h}.${p}.${b64url(s)}`, keys, OPTS) as { detail: string }).detail;
          assert.doesNotMatch(detail, /payload|claim/, 'a payload was read before its signature was checked');
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('never accepts a valid token after a bit flip, truncation, extension or segment swap', () => {
    const tokens = ALGS.flatMap((a) => [validSigned(a).token, validSigned(a, { sub: 'other' }).token]);
    const originals = new Set(tokens);
    const mutate = fc.oneof(
      // flip one bit of one decoded segment, re-encoded canonically
      fc.record({ kind: fc.constant('bit' as const), seg: fc.nat({ max: 2 }), at: fc.nat(), bit: fc.nat({ max: 7 }) }),
      // flip one bit of one character of the text
      fc.record({ kind: fc.constant('char' as const), at: fc.nat(), bit: fc.nat({ max: 6 }) }),
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('extend' as const), tail: fc.string({ minLength: 1, maxLength: 4 }) }),
      // any three segments drawn from two valid tokens, in any order
      fc.record({ kind: fc.constant('swap' as const), other: fc.nat(), pick: fc.tuple(fc.nat({ max: 5 }), fc.nat({ max: 5 }), fc.nat({ max: 5 })) }),
    );
    fc.assert(
      fc.property(fc.nat({ max: tokens.length - 1 }), mutate, (i, m) => {
        const token = tokens[i]!;
        const segs = token.split('.');
        let mutated: string;
        switch (m.kind) {
          case 'bit': {
            const bytes = Buffer.from(segs[m.seg]!, 'base64url');
            if (bytes.length === 0) return;
            bytes[m.at % bytes.length]! ^= 1 << m.bit;
            segs[m.seg] = b64url(bytes);
            mutated = segs.join('.');
            break;
          }
          case 'char': {
            const at = m.at % token.length;
            mutated = token.slice(0, at) + String.fromCharCode(token.charCodeAt(at) ^ (1 << m.bit)) + token.slice(at + 1);
            break;
          }
          case 'truncate':
            mutated = token.slice(0, m.at % token.length);
            break;
          case 'extend':
            mutated = token + m.tail;
            break;
          case 'swap': {
            const pool = [...segs, ...tokens[m.other % tokens.length]!.split('.')];
            mutated = m.pick.map((k) => pool[k]).join('.');
            break;
          }
        }
        const out = verdict(mutated, { audience: 'orders', requiredScopes: ['read'] });
        assert.equal(out.ok, originals.has(mutated), `mutated token ${out.ok ? 'accepted' : 'rejected'}: ${m.kind}`);
      }),
      { numRuns: 2000 },
    );
  });
});
