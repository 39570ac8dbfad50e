/**
 * What the three corpus targets share: the key set they are set up with (written as the
 * authority's key store, so the authority, its JWKS and the sidecar trust exactly the keys the
 * library is given), and the runner that turns ATTACK_CORPUS into one mocha test per case with
 * timing.
 */
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, randomUUID } from 'node:crypto';
import { VerifyFailureReason, type VerifyResponse } from '../../src/gen/tokenauthority/v1/token_authority.js';
import { FileKeyStore } from '../../src/keys/file-key-store.js';
import { generateSigningKey, type GeneratedKey } from '../../src/keys/key-generator.js';
import type { KeySetDocument, StoredKey } from '../../src/keys/key-store.js';
import type { SigningAlgorithm } from '../../src/verifier/jose-rules.js';
import type { VerifyReason } from '../../src/shared/claims.js';
import type { Logger } from '../../src/shared/logger.js';
import { generateTestKey } from '../helpers/token-forge.js';
import { corpusKid, toTestKey, type AttackCase, type CorpusContext, type CorpusKey, type CorpusKeys, type Expectation } from './attack-corpus.js';

/** The audience every corpus Verify call requires. */
export const CORPUS_AUDIENCE = 'orders';

function fromGenerated(g: GeneratedKey): CorpusKey {
  const privateKey = createPrivateKey({ key: g.privateJwk as never, format: 'jwk' });
  return toTestKey(g.kid, g.alg, privateKey, createPublicKey(privateKey), { ...g.publicJwk } as unknown as Record<string, string>);
}

/** Fresh keys: trusted ES256/EdDSA/RS256, a soon-to-be-removed ES256 key, and attacker keys. */
export async function makeCorpusKeys(): Promise<{ keys: CorpusKeys; generated: Record<SigningAlgorithm | 'removed', GeneratedKey> }> {
  const [es, ed, rs, removed] = await Promise.all([
    generateSigningKey('ES256', corpusKid('es256')),
    generateSigningKey('EdDSA', corpusKid('eddsa')),
    generateSigningKey('RS256', corpusKid('rs256')),
    generateSigningKey('ES256', corpusKid('removed')),
  ]);
  return {
    keys: {
      trusted: { ES256: fromGenerated(es), EdDSA: fromGenerated(ed), RS256: fromGenerated(rs) },
      removed: fromGenerated(removed),
      attacker: { ES256: generateTestKey('ES256', 'attacker-es256'), EdDSA: generateTestKey('EdDSA', 'attacker-eddsa'), RS256: generateTestKey('RS256', 'attacker-rs256') },
    },
    generated: { ES256: es, EdDSA: ed, RS256: rs, removed },
  };
}

const HOUR = 3_600_000;

/**
 * Write the key set an authority started on `dir` will load: ES256 active, EdDSA next, RS256
 * retired but within its retention (all three published), and an ES256 key retired long enough
 * ago that the key manager removes it at start.
 */
export async function seedKeyDir(dir: string, generated: Record<SigningAlgorithm | 'removed', GeneratedKey>, nowMs = Date.now()): Promise<void> {
  const keys: StoredKey[] = [
    { ...generated.ES256, state: 'active', createdAt: nowMs - HOUR, activatedAt: nowMs - HOUR },
    { ...generated.EdDSA, state: 'next', createdAt: nowMs - HOUR },
    { ...generated.RS256, state: 'retired', createdAt: nowMs - 3 * HOUR, activatedAt: nowMs - 3 * HOUR, retiredAt: nowMs - HOUR, removeAfter: nowMs + 24 * HOUR },
    { ...generated.removed, state: 'retired', createdAt: nowMs - 9 * HOUR, activatedAt: nowMs - 9 * HOUR, retiredAt: nowMs - 3 * HOUR, removeAfter: nowMs - 2 * HOUR },
  ];
  const doc: KeySetDocument = { version: 1, keys };
  assert.equal(await new FileKeyStore(dir).save(doc, 0), true, 'fixture: key set written');
}

/** Fresh ids for a target to revoke before the corpus runs. */
export function revokedIds(): CorpusContext['revoked'] {
  const id = randomUUID().slice(0, 8);
  return { jti: `revoked-jti-${id}`, sid: `revoked-sid-${id}`, sub: `revoked-sub-${id}` };
}

/** What a target answered for one token. */
export interface Answer {
  outcome: Expectation | 'MISSING_TOKEN';
  /** The human-readable detail (never allowed to echo the token). */
  detail: string;
}

/** A VerifyResponse as an Answer: VERIFY_FAILURE_REASON_X → X, as the library names it. */
export function answerOf(v: VerifyResponse): Answer {
  if (v.valid) return { outcome: 'VALID', detail: v.detail };
  const name = VerifyFailureReason[v.reason] ?? String(v.reason);
  return { outcome: name.replace('VERIFY_FAILURE_REASON_', '') as VerifyReason, detail: v.detail };
}

export interface CorpusRun {
  readonly timings: Array<{ name: string; ms: number }>;
}

/**
 * Register one test per case: the target's answer must be exactly the expected one, the call must
 * not throw, and the detail must not echo the token. Timings are collected for `reportTimings`.
 */
export function runCorpus(
  cases: readonly AttackCase[],
  ctx: () => CorpusContext,
  ask: (token: unknown, c: AttackCase) => Promise<Answer>,
  expected: (c: AttackCase) => Expectation | 'MISSING_TOKEN' = (c) => c.expect,
): CorpusRun {
  const run: CorpusRun = { timings: [] };
  for (const c of cases) {
    const want = expected(c);
    it(`${want}: ${c.name}`, async () => {
      const token = c.make(ctx());
      const started = process.hrtime.bigint();
      const answer = await ask(token, c);
      run.timings.push({ name: c.name, ms: Number(process.hrtime.bigint() - started) / 1e6 });
      assert.equal(answer.outcome, want, `${c.name} [${c.ref}]: expected ${want}, got ${answer.outcome} (${answer.detail})`);
      if (c.detail && want === c.expect && want !== 'VALID') assert.match(answer.detail, c.detail, `${c.name}: rejected for another cause`);
      if (typeof token === 'string' && token.length >= 16) {
        assert.ok(!answer.detail.includes(token), 'the detail must not echo the token');
      }
    });
  }
  return run;
}

/**
 * Print the timing of a corpus run and hold it to a generous bound: speed belongs to the
 * benchmarks, but no hostile token may make a verifier noticeably slow.
 */
export function reportTimings(label: string, run: CorpusRun, bounds: { totalMs: number; caseMs: number }): void {
  const t = run.timings;
  assert.ok(t.length > 0, 'the corpus ran');
  const total = t.reduce((s, x) => s + x.ms, 0);
  const sorted = [...t].sort((a, b) => b.ms - a.ms);
  const slowest = sorted.slice(0, 3).map((x) => `${x.name} ${x.ms.toFixed(1)}ms`).join('; ');
  const median = sorted[Math.floor(sorted.length / 2)]!.ms;
  console.log(`      ${label}: ${t.length} cases in ${total.toFixed(0)} ms (median ${median.toFixed(2)} ms); slowest: ${slowest}`);
  assert.ok(total < bounds.totalMs, `${label}: the corpus took ${total.toFixed(0)} ms (bound ${bounds.totalMs})`);
  assert.ok(sorted[0]!.ms < bounds.caseMs, `${label}: "${sorted[0]!.name}" took ${sorted[0]!.ms.toFixed(0)} ms (bound ${bounds.caseMs})`);
}

/** Every log entry a server wrote, serialised, by level: to prove no token is logged and no handler failed. */
export interface CapturedLogs {
  readonly logger: Logger;
  readonly lines: Array<{ level: 'debug' | 'info' | 'warn' | 'error'; text: string }>;
  /** Entries of `level` whose text matches. */
  find(level: 'debug' | 'info' | 'warn' | 'error', pattern: RegExp): string[];
}

export function captureLogs(): CapturedLogs {
  const lines: CapturedLogs['lines'] = [];
  const make = (bindings: Record<string, unknown>): Logger => {
    const at = (level: 'debug' | 'info' | 'warn' | 'error') => (obj: object | string, msg?: string) => {
      const entry = typeof obj === 'string' ? { ...bindings, msg: obj } : { ...bindings, ...obj, msg };
      lines.push({ level, text: JSON.stringify(entry, (_k, v: unknown) => (v instanceof Error ? { message: v.message, stack: v.stack } : typeof v === 'bigint' ? String(v) : v)) });
    };
    return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (b) => make({ ...bindings, ...b }) };
  };
  return { logger: make({}), lines, find: (level, pattern) => lines.filter((l) => l.level === level && pattern.test(l.text)).map((l) => l.text) };
}

/** Assert that no log line holds any of these tokens, nor a signature segment of one. */
export function assertNoTokenLogged(logs: CapturedLogs, tokens: Iterable<string>): void {
  const needles = new Set<string>();
  for (const t of tokens) {
    if (t.length >= 40) needles.add(t.slice(0, 40));
    const sig = t.split('.')[2];
    if (sig && sig.length >= 40) needles.add(sig);
  }
  for (const line of logs.lines) {
    for (const n of needles) assert.ok(!line.text.includes(n), `a log line holds a token: ${line.text.slice(0, 200)}`);
  }
}
