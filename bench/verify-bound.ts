/**
 * Benchmark rows of sender-constrained tokens, measured in-process against baselines in the same
 * rounds (each round runs every side once, in an order that rotates round by round):
 *
 *   verify.bound.mtls  verifySync of a cached `x5t#S256`-bound token with its client certificate
 *                      (the DER is hashed on every call) vs the same verifier on a cached unbound
 *                      token; also as a ratio of raw crypto.verify.
 *   verify.bound.dpop  verifySync of a cached `jkt`-bound token with a fresh ES256 DPoP proof on
 *                      every call (new jti, so each proof is also claimed in the replay cache) vs
 *                      raw crypto.verify of those proofs; also as ratios of the unbound cached path
 *                      and of the floor: unbound cached verify + crypto.verify of the proof +
 *                      SHA-256 of the token (the proof's `ath`), the least work a DPoP check can do.
 *
 * Tokens and proofs are made outside the timed loops; tokens reach the verifier as fresh strings
 * (as in micro.ts), proofs are new strings anyway.
 */
import { createHash, generateKeyPairSync, randomBytes, randomUUID, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { createVerifier, type Verifier } from '../src/verifier/create-verifier.js';
import { jwkThumbprint } from '../src/verifier/jwk-thumbprint.js';
import { BENCH_AUDIENCE, BENCH_ISSUER, tokenPayload, type BenchKey } from './fixtures.js';
import { judge, type Figure } from './figures.js';
import { clockOf, median, round } from './measure.js';
import type { MicroOptions } from './micro.js';

const METHOD = 'GET';
const URI = 'https://orders.bench.example/orders/42';

/** A client's ES256 DPoP key and the header text of its proofs. */
interface DpopClient {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly jkt: string;
  readonly header: string;
}

function dpopClient(): DpopClient {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' }) as Record<string, string>;
  const header = Buffer.from(JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } })).toString('base64url');
  return { privateKey, publicKey, jkt: jwkThumbprint(jwk), header };
}

function proof(client: DpopClient, ath: string): string {
  const payload = Buffer.from(JSON.stringify({ jti: randomUUID(), htm: METHOD, htu: URI, iat: Math.floor(Date.now() / 1000), ath })).toString('base64url');
  const input = `${client.header}.${payload}`;
  return `${input}.${cryptoSign('sha256', Buffer.from(input, 'latin1'), { key: client.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

/**
 * Calls of `use(i)` per second of CPU time, with `prepare(i)` run for a batch before it untimed.
 * (The clock is read once per batch.)
 */
function ratePrepared(ms: number, prepare: (i: number) => void, use: (i: number) => void, batch: number): number {
  const clock = clockOf('cpu');
  let n = 0;
  let timed = 0;
  while (timed < ms) {
    for (let k = 0; k < batch; k++) prepare(n + k);
    const t0 = clock();
    for (let k = 0; k < batch; k++) use(n + k);
    timed += clock() - t0;
    n += batch;
  }
  return n / (timed / 1000);
}

/** Measure named sides in rotating order for `rounds` rounds; returns per-side rates per round. */
function rotate(rounds: number, sides: ReadonlyArray<readonly [string, () => number]>): Record<string, number[]> {
  const out: Record<string, number[]> = Object.fromEntries(sides.map(([name]) => [name, []]));
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < sides.length; k++) {
      const [name, run] = sides[(r + k) % sides.length]!;
      out[name]!.push(run());
    }
  }
  return out;
}

const ratioOf = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]!));

function verifier(key: BenchKey): Verifier {
  return createVerifier({ issuer: BENCH_ISSUER, keys: key.resolver, stalenessBoundMs: 3_600_000 });
}

function expectValid(v: Verifier, token: string, req: Parameters<Verifier['verifySync']>[1]): void {
  const r = v.verifySync(token, req);
  if (!r.valid) throw new Error(`verifier rejected a bench token: ${r.reason} ${r.detail}`);
}

/** The bound-token rows, on the ES256 bench key. */
export async function benchVerifyBound(key: BenchKey, opts: MicroOptions, only: (id: string) => boolean): Promise<Figure[]> {
  const figures: Figure[] = [];
  const nowSec = Math.floor(Date.now() / 1000);
  const unboundBytes = Buffer.from(key.signer.sign(tokenPayload(nowSec)), 'latin1');
  const rawToken = (() => {
    const t = unboundBytes.toString('latin1');
    const dot = t.lastIndexOf('.');
    return { data: Buffer.from(t.slice(0, dot), 'latin1'), signature: Buffer.from(t.slice(dot + 1), 'base64url') };
  })();
  const rawVerify = () => {
    if (!cryptoVerify(key.digest, rawToken.data, key.verifyInput, rawToken.signature)) throw new Error('raw verify failed');
  };
  const unboundReq = { audience: BENCH_AUDIENCE };
  const batch = 256;
  const fresh = new Array<string>(batch);

  if (only('verify.bound.mtls')) {
    // The check hashes the DER and never parses it, so a certificate-sized byte string stands in.
    const der = randomBytes(700);
    const x5t = createHash('sha256').update(der).digest('base64url');
    const boundBytes = Buffer.from(key.signer.sign({ ...tokenPayload(nowSec), cnf: { 'x5t#S256': x5t } }), 'latin1');
    const v = verifier(key);
    const bound = { audience: BENCH_AUDIENCE, clientCertificate: der };
    expectValid(v, boundBytes.toString('latin1'), bound);
    expectValid(v, unboundBytes.toString('latin1'), unboundReq);
    const mtls = () => ratePrepared(opts.roundMs, (i) => void (fresh[i % batch] = boundBytes.toString('latin1')), (i) => expectValid(v, fresh[i % batch]!, bound), batch);
    const cached = () => ratePrepared(opts.roundMs, (i) => void (fresh[i % batch] = unboundBytes.toString('latin1')), (i) => expectValid(v, fresh[i % batch]!, unboundReq), batch);
    const raw = () => ratePrepared(opts.roundMs, () => undefined, rawVerify, 64);
    mtls(); cached(); raw(); // warm-up
    const r = rotate(opts.rounds, [['mtls', mtls], ['cached', cached], ['raw', raw]]);
    const vsCached = ratioOf(r.mtls!, r.cached!);
    const vsRaw = ratioOf(r.mtls!, r.raw!);
    figures.push(judge({
      id: 'verify.bound.mtls',
      title: 'Local verify, cached mTLS-bound token (x5t#S256) with its certificate (ES256, one core)',
      status: 'measured',
      measured: { value: median(r.mtls!), unit: 'verifies/s' },
      baseline: { name: 'the same verifier on a cached unbound token', value: median(r.cached!), unit: 'verifies/s' },
      ratio: vsCached,
      rounds: { measured: r.mtls!, baseline: r.cached!, ratios: r.mtls!.map((x, i) => x / r.cached![i]!) },
      notes: [
        `${round(vsRaw, 3)}× raw crypto.verify of the token (${round(median(r.raw!), 3).toLocaleString('en-US')}/s in the same rounds)`,
        'each call hashes the 700-byte certificate DER (SHA-256) and compares it with cnf; everything else is the cached path',
        'ratio timed in process CPU time, rounds rotate the order of the three sides',
      ],
      details: { vsRawCryptoVerify: round(vsRaw, 3), rawCryptoVerify: round(median(r.raw!), 4) },
    }));
  }

  if (only('verify.bound.dpop')) {
    const client = dpopClient();
    const boundText = key.signer.sign({ ...tokenPayload(nowSec), cnf: { jkt: client.jkt } });
    const boundBytes = Buffer.from(boundText, 'latin1');
    const ath = createHash('sha256').update(boundText, 'latin1').digest('base64url');
    const v = verifier(key);
    expectValid(v, boundBytes.toString('latin1'), { audience: BENCH_AUDIENCE, dpop: { proof: proof(client, ath), method: METHOD, uri: URI } });
    expectValid(v, unboundBytes.toString('latin1'), unboundReq);
    // Proofs are signed ahead in batches (untimed): one per call, each with its own jti.
    const proofs = new Array<string>(batch);
    const rawProofs = new Array<{ data: Buffer; signature: Buffer }>(batch);
    const clientKey = { key: client.publicKey, dsaEncoding: 'ieee-p1363' as const };
    const makeProof = (i: number) => {
      const p = proof(client, ath);
      proofs[i % batch] = p;
      fresh[i % batch] = boundBytes.toString('latin1');
      const dot = p.lastIndexOf('.');
      rawProofs[i % batch] = { data: Buffer.from(p.slice(0, dot), 'latin1'), signature: Buffer.from(p.slice(dot + 1), 'base64url') };
    };
    const dpop = () => ratePrepared(opts.roundMs, makeProof, (i) => expectValid(v, fresh[i % batch]!, { audience: BENCH_AUDIENCE, dpop: { proof: proofs[i % batch]!, method: METHOD, uri: URI } }), batch);
    const rawProof = () => ratePrepared(opts.roundMs, makeProof, (i) => {
      const p = rawProofs[i % batch]!;
      if (!cryptoVerify('sha256', p.data, clientKey, p.signature)) throw new Error('raw proof verify failed');
    }, batch);
    const cached = () => ratePrepared(opts.roundMs, (i) => void (fresh[i % batch] = unboundBytes.toString('latin1')), (i) => expectValid(v, fresh[i % batch]!, unboundReq), batch);
    const unboundFresh = new Array<string>(batch);
    const floorPrepared = () => ratePrepared(opts.roundMs, (i) => {
      makeProof(i);
      unboundFresh[i % batch] = unboundBytes.toString('latin1');
    }, (i) => {
      expectValid(v, unboundFresh[i % batch]!, unboundReq);
      const p = rawProofs[i % batch]!;
      if (!cryptoVerify('sha256', p.data, clientKey, p.signature)) throw new Error('raw proof verify failed');
      createHash('sha256').update(fresh[i % batch]!, 'latin1').digest('base64url');
    }, batch);
    dpop(); rawProof(); cached(); floorPrepared(); // warm-up
    const r = rotate(opts.rounds, [['dpop', dpop], ['raw', rawProof], ['cached', cached], ['floor', floorPrepared]]);
    const vsRaw = ratioOf(r.dpop!, r.raw!);
    const vsCached = ratioOf(r.dpop!, r.cached!);
    const vsFloor = ratioOf(r.dpop!, r.floor!);
    const replay = v.status().dpopReplay;
    figures.push(judge({
      id: 'verify.bound.dpop',
      title: 'Local verify, cached DPoP-bound token (jkt) with a fresh ES256 proof per call (one core)',
      status: 'measured',
      measured: { value: median(r.dpop!), unit: 'verifies/s' },
      baseline: { name: 'raw crypto.verify of the same proofs (ES256)', value: median(r.raw!), unit: 'verifies/s' },
      ratio: vsRaw,
      rounds: { measured: r.dpop!, baseline: r.raw!, ratios: r.dpop!.map((x, i) => x / r.raw![i]!) },
      notes: [
        `${round(vsFloor, 3)}× its floor (cached unbound verify + crypto.verify of the proof + SHA-256 of the token: ${round(median(r.floor!), 3).toLocaleString('en-US')}/s in the same rounds)`,
        `${round(vsCached, 4)}× the unbound cached path (${round(median(r.cached!), 3).toLocaleString('en-US')}/s): one ECDSA verification dominates`,
        `each proof is new (its own jti: parsed, signature-checked, htu compared, claimed in the replay cache, which held ${replay.size.toLocaleString('en-US')} ids at the end); the proof header (its jwk) is the same for every proof of a client and is imported once`,
        'ratio timed in process CPU time, rounds rotate the order of the four sides',
      ],
      details: { vsFloor: round(vsFloor, 3), floor: round(median(r.floor!), 4), vsUnboundCached: round(vsCached, 4), unboundCached: round(median(r.cached!), 4), replayCacheSize: replay.size },
    }));
  }
  return figures;
}
