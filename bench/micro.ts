/**
 * In-process micro-benchmarks of the verifier and the signer, each measured in alternating rounds
 * against its baseline in the same process:
 *
 *   verify.uncached   createVerifier().verifySync on tokens it has never seen (the default 10 000
 *                     entry cache is on, and the token pool is 2.5× its size, so every call misses)
 *                     vs raw crypto.verify of the same tokens' signing input, same key.
 *   verify.cached     the same verifier on tokens already in its cache (time, audience, scope,
 *                     revocation and staleness still checked on every call) vs raw crypto.verify.
 *   verify.mixed      a stream in which each token is used 100× (shuffled, so a first sight is
 *                     interleaved with repeats of others) vs "the blacklist design": jose's
 *                     jwtVerify plus one Redis GET per request, against a real redis-server.
 *   sign              the Issue signer (createSigner().sign) vs raw crypto.sign on the same key.
 *
 * Tokens reach the verifier as strings V8 has never hashed (a fresh copy per call, made outside the
 * timed loop), as a token decoded from a request is: a reused string object would let the cache
 * lookup skip hashing and comparing ~600 characters, which flatters the cached path.
 */
import { sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { jwtVerify } from 'jose';
import { Redis } from 'ioredis';
import type { SigningAlgorithm } from '../src/verifier/jose-rules.js';
import type { AccessTokenPayload } from '../src/shared/claims.js';
import { MemoryTokenStore } from '../src/store/memory-token-store.js';
import { newId } from '../src/authority/session-records.js';
import { createVerifier, type Verifier } from '../src/verifier/create-verifier.js';
import { BENCH_AUDIENCE, BENCH_ISSUER, benchKey, signPool, splitToken, tokenPayload, type BenchKey, type RawToken } from './fixtures.js';
import { judge, TARGETS, type Figure } from './figures.js';
import { alternate, clockOf, median, medianRatio, rate, rateAsync, round, type TimeSource } from './measure.js';

/** How long and how often to measure. */
export interface MicroOptions {
  /** Length of one round of one side, ms. */
  roundMs: number;
  /** Rounds per side (alternating). */
  rounds: number;
}

/** Keys, tokens and a verifier shared by the micro-benchmarks of one algorithm. */
export interface MicroContext {
  readonly key: BenchKey;
  /** Distinct tokens, ≥ 2.5× the verifier's cache capacity. */
  readonly tokens: readonly string[];
  /** The tokens' bytes, from which fresh strings are made. */
  readonly tokenBytes: readonly Buffer[];
  readonly raw: readonly RawToken[];
  readonly cacheCapacity: number;
  /** Revocation entries present in the verifier's state while it is measured. */
  readonly revocations: number;
  /** A new started verifier with the production defaults, fed from an in-process store. */
  newVerifier(cacheCapacity?: number): Promise<Verifier>;
  close(): Promise<void>;
}

export interface MicroContextOptions {
  alg?: SigningAlgorithm;
  /** Verifier cache capacity; the default is the production default. */
  cacheCapacity?: number;
  /** Live revocations in the state (lookups hit a populated map). Default 10 000. */
  revocations?: number;
}

export async function createMicroContext(options: MicroContextOptions = {}): Promise<MicroContext> {
  const alg = options.alg ?? 'ES256';
  const cacheCapacity = options.cacheCapacity ?? 10_000;
  const revocations = options.revocations ?? 10_000;
  const key = await benchKey(alg);
  const tokens = signPool(key, Math.ceil(cacheCapacity * 2.5));
  const store = new MemoryTokenStore({ retentionMs: 3_600_000 });
  const until = Date.now() + 3_600_000;
  for (let i = 0; i < revocations; i++) await store.revoke({ kind: 'jti', id: newId(), until });
  const verifiers: Verifier[] = [];
  return {
    key,
    tokens,
    tokenBytes: tokens.map((t) => Buffer.from(t, 'latin1')),
    raw: tokens.map(splitToken),
    cacheCapacity,
    revocations,
    async newVerifier(capacity = cacheCapacity) {
      const v = createVerifier({
        issuer: BENCH_ISSUER,
        keys: key.resolver,
        revocations: store,
        tokenCacheSize: capacity,
        // No heartbeats reach an in-process loop: a long bound keeps the (still executed) staleness
        // check from answering STALE mid-benchmark.
        stalenessBoundMs: 3_600_000,
      });
      await v.start();
      if (v.status().revocation.entries.jti !== revocations) throw new Error('verifier did not load the revocation log');
      verifiers.push(v);
      return v;
    },
    async close() {
      await Promise.all(verifiers.map((v) => v.stop()));
      await store.close();
    },
  };
}

/**
 * Runs `use` over fresh strings, timing only `use`: strings are made in untimed batches of
 * `batch` by `make(i)`. Returns calls per second of timed work.
 */
export function rateFresh(
  ms: number,
  make: (i: number) => string,
  use: (token: string, i: number) => void,
  batch = 4096,
  source: TimeSource = 'cpu',
  wallRates?: number[],
): number {
  const clock = clockOf(source);
  const strings = new Array<string>(batch);
  let n = 0;
  let timed = 0;
  let wall = 0;
  while (timed < ms) {
    for (let k = 0; k < batch; k++) strings[k] = make(n + k);
    const w0 = performance.now();
    const t0 = clock();
    for (let k = 0; k < batch; k++) use(strings[k] as string, n + k);
    timed += clock() - t0;
    wall += performance.now() - w0;
    n += batch;
  }
  wallRates?.push(n / (wall / 1000));
  return n / (timed / 1000);
}

/** Wall-clock rates of both sides, collected alongside the CPU-time rounds. */
interface WallRounds {
  a: number[];
  b: number[];
}

function wallNote(w: WallRounds): string {
  return `ratio timed in process CPU time (GC helper threads count against the verifier); by the wall clock it is ${medianRatio(w.a, w.b).toFixed(3)}`;
}

function wallDetails(w: WallRounds): Record<string, number> {
  return { wallClockRatio: round(medianRatio(w.a, w.b), 3), wallClockMeasured: round(median(w.a), 4), wallClockBaseline: round(median(w.b), 4) };
}

function rawVerifier(ctx: MicroContext, count: number): (i: number) => void {
  const { digest, verifyInput } = ctx.key;
  return (i) => {
    const r = ctx.raw[i % count] as RawToken;
    if (!cryptoVerify(digest, r.data, verifyInput, r.signature)) throw new Error('raw crypto.verify failed');
  };
}

const requirements = { audience: BENCH_AUDIENCE };

function expectValid(v: Verifier, token: string): void {
  const r = v.verifySync(token, requirements);
  if (!r.valid) throw new Error(`verifier rejected a bench token: ${r.reason} ${r.detail}`);
}

/**
 * verify.uncached: every call a cache miss. With `cacheOff` the verifier runs with its cache
 * disabled (tokenCacheSize 0): no lookup, no insert, nothing retained.
 */
export async function benchVerifyUncached(ctx: MicroContext, opts: MicroOptions & { cacheOff?: boolean }): Promise<Figure> {
  const v = await ctx.newVerifier(opts.cacheOff ? 0 : ctx.cacheCapacity);
  const n = ctx.tokens.length;
  let offset = 0;
  let calls = 0;
  const wall: WallRounds = { a: [], b: [] };
  const ours = (ms: number, wallRates?: number[]) => {
    const start = offset;
    return rateFresh(ms, (i) => (ctx.tokenBytes[(start + i) % n] as Buffer).toString('latin1'), (t, i) => {
      expectValid(v, t);
      offset = start + i + 1;
      calls++;
    }, 128, 'cpu', wallRates);
  };
  // Warm-up: JIT both sides.
  ours(Math.min(200, opts.roundMs));
  rate(rawVerifier(ctx, n), Math.min(200, opts.roundMs));
  const before = v.status().cache;
  calls = 0;
  const rounds = await alternate(opts.rounds, () => ours(opts.roundMs, wall.a), () => rate(rawVerifier(ctx, n), opts.roundMs, 16, 'cpu', wall.b));
  const after = v.status().cache;
  const hits = after.hits - before.hits;
  const headline = ctx.key.alg === 'ES256' && !opts.cacheOff;
  return judge({
    id: `verify.uncached${ctx.key.alg === 'ES256' ? '' : `.${ctx.key.alg.toLowerCase()}`}${opts.cacheOff ? '.cache-off' : ''}`,
    title: `Local verify, token not seen before (${ctx.key.alg}${opts.cacheOff ? ', cache off' : ''}, one core)`,
    status: 'measured',
    measured: { value: rounds.aMedian, unit: 'verifies/s' },
    baseline: { name: `raw crypto.verify (${ctx.key.alg}, same key and tokens)`, value: rounds.bMedian, unit: 'verifies/s' },
    ratio: rounds.ratioMedian,
    ...(headline ? { target: TARGETS.verifyUncached } : {}),
    rounds: { measured: rounds.a, baseline: rounds.b, ratios: rounds.ratios },
    notes: [
      opts.cacheOff
        ? `verifySync with the token cache off (tokenCacheSize 0), over ${n.toLocaleString('en-US')} distinct tokens`
        : `verifySync with the default ${ctx.cacheCapacity.toLocaleString('en-US')}-entry cache on, over ${n.toLocaleString('en-US')} distinct tokens: ${hits} cache hits in ${calls.toLocaleString('en-US')} calls`,
      `each call also checks time, audience, revocation (a state with ${ctx.revocations.toLocaleString('en-US')} entries) and staleness${opts.cacheOff ? '' : ', and looks up and inserts into the cache'}`,
      'raw crypto.verify is given pre-decoded signing input and signature: the floor, not a JWT verifier',
      wallNote(wall),
    ],
    details: { cacheHits: hits, calls, tokenChars: ctx.tokens[0]?.length, ...wallDetails(wall) },
  });
}

/** verify.cached: every call a cache hit; the per-call checks still run. */
export async function benchVerifyCached(ctx: MicroContext, opts: MicroOptions & { hotTokens?: number }): Promise<Figure> {
  const v = await ctx.newVerifier();
  // Well inside the cache (its two generations hold capacity/2 each), so every call is a hit.
  const hot = Math.min(opts.hotTokens ?? 1000, Math.floor(ctx.cacheCapacity / 4));
  for (let i = 0; i < hot; i++) expectValid(v, ctx.tokens[i] as string);
  const make = (i: number) => (ctx.tokenBytes[i % hot] as Buffer).toString('latin1');
  const use = (t: string) => expectValid(v, t);
  rateFresh(Math.min(200, opts.roundMs), make, use);
  rate(rawVerifier(ctx, hot), Math.min(200, opts.roundMs));
  const before = v.status().cache;
  const wall: WallRounds = { a: [], b: [] };
  const rounds = await alternate(opts.rounds, () => rateFresh(opts.roundMs, make, use, 4096, 'cpu', wall.a), () => rate(rawVerifier(ctx, hot), opts.roundMs, 64, 'cpu', wall.b));
  const after = v.status().cache;
  // For the record: the same, with one string object reused (V8 caches its hash).
  const reused = ctx.tokens.slice(0, hot);
  const sameObject = rate((i) => expectValid(v, reused[i % hot] as string), Math.min(500, opts.roundMs));
  return judge({
    id: 'verify.cached',
    title: `Local verify, cached token, revocation still checked (${ctx.key.alg}, one core)`,
    status: 'measured',
    measured: { value: rounds.aMedian, unit: 'verifies/s' },
    baseline: { name: `raw crypto.verify (${ctx.key.alg}, same key and tokens)`, value: rounds.bMedian, unit: 'verifies/s' },
    ratio: rounds.ratioMedian,
    target: TARGETS.verifyCached,
    rounds: { measured: rounds.a, baseline: rounds.b, ratios: rounds.ratios },
    notes: [
      `verifySync over ${hot.toLocaleString('en-US')} cached tokens, each call on a freshly decoded string (hashing and comparing the whole token, as for a token read from a request)`,
      `with a reused string object (hash cached by V8) it runs at ${round(sameObject, 3).toLocaleString('en-US')}/s`,
      wallNote(wall),
    ],
    details: { cacheMisses: after.misses - before.misses, hotTokens: hot, sameStringObjectRate: round(sameObject, 4), ...wallDetails(wall) },
  });
}

/** sign: the Issue signer vs raw crypto.sign. */
export async function benchSign(ctx: MicroContext, opts: MicroOptions): Promise<Figure> {
  const now = Math.floor(Date.now() / 1000);
  const payloads: AccessTokenPayload[] = Array.from({ length: 1000 }, () => tokenPayload(now));
  const inputs = payloads.map((p) => splitToken(ctx.key.signer.sign(p)).data);
  const signKey = ctx.key.alg === 'ES256' ? { key: ctx.key.privateKey, dsaEncoding: 'ieee-p1363' as const } : ctx.key.privateKey;
  const signer = ctx.key.signer;
  const ours = (i: number) => signer.sign(payloads[i % 1000] as AccessTokenPayload);
  const raw = (i: number) => cryptoSign(ctx.key.digest, inputs[i % 1000] as Buffer, signKey);
  rate(ours, Math.min(200, opts.roundMs));
  rate(raw, Math.min(200, opts.roundMs));
  const wall: WallRounds = { a: [], b: [] };
  const rounds = await alternate(opts.rounds, () => rate(ours, opts.roundMs, 16, 'cpu', wall.a), () => rate(raw, opts.roundMs, 16, 'cpu', wall.b));
  return judge({
    id: 'sign',
    title: `Sign an access token, the Issue signer (${ctx.key.alg}, one core)`,
    status: 'measured',
    measured: { value: rounds.aMedian, unit: 'signs/s' },
    baseline: { name: `raw crypto.sign (${ctx.key.alg}, same key, same-size input)`, value: rounds.bMedian, unit: 'signs/s' },
    ratio: rounds.ratioMedian,
    rounds: { measured: rounds.a, baseline: rounds.b, ratios: rounds.ratios },
    notes: ['the signer serialises and base64url-encodes the claims, then signs; raw crypto.sign gets the finished signing input', 'no target in the issue: recorded so a regression in the Issue hot path shows'],
    details: wallDetails(wall),
  });
}

export interface MixedOptions extends MicroOptions {
  /** A running Redis for the blacklist baseline. */
  redisUrl: string;
  /** Requests in flight for the blacklist design (it is asynchronous). Default 32. */
  concurrency?: number;
  /** Uses per token. Default 100. */
  usesPerToken?: number;
  /** Distinct tokens per block of the stream. Default 1000. */
  blockTokens?: number;
}

/**
 * verify.mixed: our verifier on a stream where each token is used `usesPerToken` times vs the
 * blacklist design on the same stream.
 */
export async function benchMixed(ctx: MicroContext, opts: MixedOptions): Promise<Figure> {
  const uses = opts.usesPerToken ?? 100;
  const blockTokens = Math.min(opts.blockTokens ?? 1000, Math.floor(ctx.cacheCapacity / 4));
  const concurrency = opts.concurrency ?? 32;
  const blockLen = blockTokens * uses;
  // One shuffled block layout (Fisher–Yates, fixed seed), reused with the next tokens each block.
  const order = new Uint32Array(blockLen);
  for (let i = 0; i < blockLen; i++) order[i] = i % blockTokens;
  let seed = 0x2545f491;
  for (let i = blockLen - 1; i > 0; i--) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const j = seed % (i + 1);
    const t = order[i] as number;
    order[i] = order[j] as number;
    order[j] = t;
  }
  const n = ctx.tokens.length;
  const tokenAt = (k: number) => (Math.floor(k / blockLen) * blockTokens + (order[k % blockLen] as number)) % n;

  const v = await ctx.newVerifier();
  let position = 0;
  const ours = () => {
    const start = position;
    const r = rateFresh(opts.roundMs, (i) => (ctx.tokenBytes[tokenAt(start + i)] as Buffer).toString('latin1'), (t, i) => {
      expectValid(v, t);
      position = start + i + 1;
    });
    return r;
  };

  const redis = new Redis(opts.redisUrl, { lazyConnect: true });
  await redis.connect();
  try {
    // A realistic blacklist: as many entries as our state holds, with their expiry.
    const pipeline = redis.pipeline();
    for (let i = 0; i < ctx.revocations; i++) pipeline.set(`bl:${newId()}`, '1', 'EX', 3600);
    await pipeline.exec();
    const joseOptions = { issuer: BENCH_ISSUER, audience: BENCH_AUDIENCE, algorithms: [ctx.key.alg], typ: 'at+jwt', clockTolerance: 30 };
    const publicKey = ctx.key.publicKey;
    let bPosition = 0;
    const blacklistOne = async (token: string) => {
      const { payload } = await jwtVerify(token, publicKey, joseOptions);
      if ((await redis.get(`bl:${String(payload.jti)}`)) !== null) throw new Error('bench token is blacklisted');
    };
    const blacklist = async () => {
      const start = bPosition;
      const r = await rateAsync((i) => blacklistOne(ctx.tokens[tokenAt(start + i)] as string).then(() => void (bPosition = Math.max(bPosition, start + i + 1))), opts.roundMs, concurrency);
      return r;
    };
    ours();
    await blacklist();
    const hitsBefore = v.status().cache;
    const rounds = await alternate(opts.rounds, ours, blacklist);
    const hitsAfter = v.status().cache;
    const calls = hitsAfter.hits + hitsAfter.misses - (hitsBefore.hits + hitsBefore.misses);
    const missRate = calls > 0 ? (hitsAfter.misses - hitsBefore.misses) / calls : NaN;
    return judge({
      id: 'verify.mixed',
      title: `Mixed workload, each token used ${uses}× (${ctx.key.alg}) vs the blacklist design`,
      status: 'measured',
      measured: { value: rounds.aMedian, unit: 'verifies/s' },
      baseline: { name: `jose jwtVerify + one Redis GET per request (${concurrency} in flight)`, value: rounds.bMedian, unit: 'verifies/s' },
      ratio: rounds.ratioMedian,
      target: TARGETS.mixed,
      rounds: { measured: rounds.a, baseline: rounds.b, ratios: rounds.ratios },
      notes: [
        `stream: blocks of ${blockTokens.toLocaleString('en-US')} new tokens, each used ${uses}× in shuffled order; measured miss rate ${(missRate * 100).toFixed(2)}%`,
        'ours is synchronous on one core; the blacklist design runs jose (WebCrypto, on the libuv pool, so it can use the second core) and Redis (its own process) concurrently',
      ],
      details: { missRate: round(missRate, 3), calls, concurrency },
    });
  } finally {
    redis.disconnect();
  }
}

/** All micro figures for one algorithm (used by run.ts and the smoke test). */
export async function runMicro(ctx: MicroContext, opts: MicroOptions, only: (id: string) => boolean): Promise<Figure[]> {
  const out: Figure[] = [];
  if (only('verify.uncached')) out.push(await benchVerifyUncached(ctx, opts));
  if (only('verify.uncached.cache-off')) out.push(await benchVerifyUncached(ctx, { ...opts, cacheOff: true }));
  if (only('verify.cached')) out.push(await benchVerifyCached(ctx, opts));
  if (only('sign')) out.push(await benchSign(ctx, opts));
  return out;
}
