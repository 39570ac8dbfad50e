/**
 * Micro-benchmark of the verifier core against raw node:crypto.
 *
 *   npx tsc -p . && node --expose-gc dist/bench/verify-core.js [--rounds 5] [--ms 1000]
 *
 * For each algorithm it compares, on the same key and token:
 *   raw     crypto.verify on pre-decoded signing input and signature (the floor)
 *   core    verifySignatureAndParse + checkTimeAudienceScopes (the full uncached check)
 *   jose    jose's jwtVerify (for reference)
 *   cached  TokenCache.get + checkTimeAudienceScopes (a repeated token)
 * and reports ops/s and core/raw. It also measures heap bytes per entry of RevocationState
 * (1M jti entries) and of TokenCache.
 */
import { generateKeyPairSync, randomUUID, verify, type KeyObject } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';
import type { SigningAlgorithm } from '../src/verifier/jose-rules.js';
import type { RevocationEvent } from '../src/shared/revocation-event.js';
import { RevocationState } from '../src/verifier/revocation-state.js';
import { createStaticKeyResolver } from '../src/verifier/key-resolvers.js';
import { TokenCache } from '../src/verifier/token-cache.js';
import { checkTimeAudienceScopes, verifySignatureAndParse, type TokenCheckOptions } from '../src/verifier/verify-token.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const ROUNDS = arg('rounds', 5);
const MS = arg('ms', 1000);
const ONLY = args.includes('--memory-only') ? 'memory' : args.includes('--speed-only') ? 'speed' : 'all';
const gc = (globalThis as { gc?: () => void }).gc;

const ISSUER = 'https://issuer.example';

function keyPair(alg: SigningAlgorithm): { privateKey: KeyObject; publicKey: KeyObject } {
  if (alg === 'ES256') return generateKeyPairSync('ec', { namedCurve: 'P-256' });
  if (alg === 'EdDSA') return generateKeyPairSync('ed25519');
  return generateKeyPairSync('rsa', { modulusLength: 2048 });
}

async function makeToken(alg: SigningAlgorithm, privateKey: KeyObject, kid: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sid: randomUUID(), gen: 3, scope: 'orders:read orders:write profile', tenant: 'acme' })
    .setProtectedHeader({ alg, kid, typ: 'at+jwt' })
    .setIssuer(ISSUER)
    .setSubject('user-1234567890')
    .setAudience(['orders', 'billing'])
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + 3600)
    .setJti(randomUUID())
    .sign(privateKey);
}

/** Run fn repeatedly for `ms`, return ops/s. */
function rate(fn: () => unknown, ms: number): number {
  let n = 0;
  const end = performance.now() + ms;
  let t = performance.now();
  while (t < end) {
    for (let i = 0; i < 100; i++) fn();
    n += 100;
    t = performance.now();
  }
  return n / ((ms + (t - end)) / 1000);
}

async function rateAsync(fn: () => Promise<unknown>, ms: number): Promise<number> {
  let n = 0;
  const start = performance.now();
  const end = start + ms;
  while (performance.now() < end) {
    for (let i = 0; i < 20; i++) await fn();
    n += 20;
  }
  return n / ((performance.now() - start) / 1000);
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) * q)] as number;
const median = (xs: number[]) => quantile(xs, 0.5);
const fmt = (x: number) => Math.round(x).toLocaleString('en-US');

async function speed(): Promise<void> {
  for (const alg of ['ES256', 'EdDSA', 'RS256'] as const) {
    const { privateKey, publicKey } = keyPair(alg);
    const kid = `${alg}-bench`;
    // Flattened, as a token read off the wire is (jose builds its result by concatenation).
    const token = Buffer.from(await makeToken(alg, privateKey, kid), 'latin1').toString('latin1');
    const keys = createStaticKeyResolver([{ kid, alg, key: publicKey }]);
    const opts: TokenCheckOptions = { issuer: ISSUER, algorithms: ['ES256', 'EdDSA', 'RS256'], clockSkewSec: 30, maxTokenBytes: 8192 };
    const req = { audience: 'orders', requiredScopes: ['orders:read'] };
    const dot = token.lastIndexOf('.');
    const data = Buffer.from(token.slice(0, dot), 'latin1');
    const sig = Buffer.from(token.slice(dot + 1), 'base64url');
    const rawKey = alg === 'ES256' ? { key: publicKey, dsaEncoding: 'ieee-p1363' as const } : publicKey;
    const digest = alg === 'EdDSA' ? null : 'sha256';
    const nowSec = Math.floor(Date.now() / 1000);
    const cache = new TokenCache({ capacity: 10_000 });

    const raw = () => {
      if (!verify(digest, data, rawKey, sig)) throw new Error('raw verify failed');
    };
    const core = () => {
      const r = verifySignatureAndParse(token, keys, opts);
      if (!r.ok || !checkTimeAudienceScopes(r.claims, req, opts, nowSec).valid) throw new Error('core verify failed');
    };
    const first = verifySignatureAndParse(token, keys, opts);
    if (!first.ok) throw new Error(`core rejected the bench token: ${first.reason} ${first.detail}`);
    cache.set(token, first.claims);
    const cached = () => {
      const c = cache.get(token);
      if (c === undefined || !checkTimeAudienceScopes(c, req, opts, nowSec).valid) throw new Error('cache miss');
    };
    const joseOpts = { issuer: ISSUER, audience: 'orders', algorithms: [alg], typ: 'at+jwt', clockTolerance: 30 };
    const jose = () => jwtVerify(token, publicKey, joseOpts);

    // warm up JIT
    rate(raw, 200); rate(core, 200); rate(cached, 200); await rateAsync(jose, 200);
    // Many short alternating slices, so load from other processes on a shared machine hits both
    // sides alike; the ratio is the median over slice pairs.
    const r: number[] = [], c: number[] = [], j: number[] = [], h: number[] = [], ratios: number[] = [];
    const slices = Math.max(1, Math.round((ROUNDS * MS) / 100));
    for (let i = 0; i < slices; i++) {
      const before = rate(raw, 25);
      const b = rate(core, 50);
      const after = rate(raw, 25);
      const a = (before + after) / 2;
      r.push(a); c.push(b); ratios.push(b / a);
    }
    for (let i = 0; i < ROUNDS; i++) {
      j.push(await rateAsync(jose, MS / 4));
      h.push(rate(cached, MS / 4));
    }
    console.log(
      `${alg.padEnd(6)} raw ${fmt(median(r))}/s  core ${fmt(median(c))}/s  core/raw ${median(ratios).toFixed(3)}` +
        ` (p25 ${quantile(ratios, 0.25).toFixed(3)}, p75 ${quantile(ratios, 0.75).toFixed(3)}, ${ratios.length} slices)  jose/raw ${(median(j) / median(r)).toFixed(3)}` +
        `  cached ${fmt(median(h))}/s = ${(median(h) / median(r)).toFixed(0)}x raw  token ${token.length} B`,
    );
  }
}

function heapUsed(): number {
  gc?.(); gc?.();
  return process.memoryUsage().heapUsed;
}

/** Build the lines in a helper so nothing but the state survives into the measurement. */
function makeLogLines(n: number, base: number): string[] {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    // until spread over 15 minutes, like jti entries of 15-minute access tokens.
    const until = base + 60_000 + (i % 900) * 1000 + (i % 997);
    lines.push(JSON.stringify({ v: 1, type: 'rev', seq: i + 1, kind: 'jti', id: randomUUID(), until, at: base, reason: 'logout' }));
  }
  return lines;
}

function loadState(lines: string[]): { state: RevocationState; ms: number } {
  const state = new RevocationState();
  const t0 = performance.now();
  // JSON.parse as the log reader does: ids come out as flat strings, as in production.
  for (const line of lines) state.apply(JSON.parse(line) as RevocationEvent);
  return { state, ms: performance.now() - t0 };
}

async function memory(): Promise<void> {
  if (!gc) {
    console.log('memory: run with --expose-gc');
    return;
  }
  const N = 1_000_000;
  const base = Date.now();
  const before = heapUsed();
  let lines: string[] | undefined = makeLogLines(N, base);
  const { state, ms: loadMs } = loadState(lines);
  lines = undefined;
  const after = heapUsed();
  console.log(`RevocationState: ${fmt(N)} jti entries (36-char ids): ${((after - before) / N).toFixed(1)} B/entry, ids included; JSON.parse + apply of ${fmt(N)} log lines: ${fmt(loadMs)} ms`);
  const tp = performance.now();
  const pruned = state.prune(base + 70_000);
  const pruneMs = performance.now() - tp;
  const tq = performance.now();
  state.prune(base + 70_000);
  const idleUs = (performance.now() - tq) * 1000;
  const tr = performance.now();
  const next = state.prune(base + 71_000);
  const nextUs = (performance.now() - tr) * 1000;
  console.log(`RevocationState: prune dropping ${fmt(pruned)} of ${fmt(N)}: ${pruneMs.toFixed(1)} ms; again at the same time: ${idleUs.toFixed(0)} µs; one second later (${fmt(next)} due): ${nextUs.toFixed(0)} µs`);
  state.clear();

  // Token cache: realistic tokens (ES256) with their claims, held by nothing but the cache.
  const { privateKey, publicKey } = keyPair('ES256');
  const keys = createStaticKeyResolver([{ kid: 'k', alg: 'ES256', key: publicKey }]);
  const opts: TokenCheckOptions = { issuer: ISSUER, algorithms: ['ES256'], clockSkewSec: 0, maxTokenBytes: 8192 };
  const M = 20_000;
  const cache = new TokenCache({ capacity: M * 2 });
  const cStart = heapUsed();
  let tokens: string[] | undefined = [];
  // Flattened, as a token read off the wire is (jose's own string is a concatenation tree).
  for (let i = 0; i < M; i++) tokens.push(Buffer.from(await makeToken('ES256', privateKey, 'k'), 'latin1').toString('latin1'));
  const tokenLen = tokens[0]?.length ?? 0;
  const c0 = heapUsed();
  fillCache(cache, tokens, keys, opts);
  const c1 = heapUsed();
  tokens = undefined;
  const c2 = heapUsed();
  console.log(`TokenCache: ${((c1 - c0) / M).toFixed(0)} B/entry for the entry and its frozen claims, ${((c2 - cStart) / M).toFixed(0)} B/entry with the token string (${tokenLen} chars) too`);
  void cache.size;
}

function fillCache(cache: TokenCache, tokens: string[], keys: ReturnType<typeof createStaticKeyResolver>, opts: TokenCheckOptions): void {
  for (const token of tokens) {
    const r = verifySignatureAndParse(token, keys, opts);
    if (!r.ok) throw new Error('bad token');
    cache.set(token, r.claims);
  }
}

if (ONLY !== 'memory') await speed();
if (ONLY !== 'speed') await memory();
