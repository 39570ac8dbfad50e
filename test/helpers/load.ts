/**
 * Steady mixed Issue/Refresh/Revoke/Verify load against a real authority, for the fault-injection
 * suite (test/fault/) and the soak script (bench/soak.ts).
 *
 * Each loop runs rounds of: Issue → Verify (authority and every extra verifier) → Refresh → Revoke
 * (the refreshed access token, or every other round the refresh token, i.e. its session) → Verify
 * the revoked token at the authority. A failed call ends the round; the loop pauses briefly (so an
 * outage does not become a busy loop) and starts the next one. Every call's latency and outcome is
 * counted; acknowledged revocations and successful refreshes can be recorded for later checks.
 */
import { status, type ServiceError } from '@grpc/grpc-js';
import { verifyFailureReasonToJSON, type IssueResponse, type VerifyResponse } from '../../src/gen/tokenauthority/v1/token_authority.js';
import type { VerifyResult } from '../../src/shared/claims.js';
import type { AuthorityClient } from './grpc-client.js';

/** 'VALID' or the reason without its enum prefix (REVOKED, STALE, …). */
export type VerifyOutcome = string;

/** A place tokens are verified at, besides the authority's own Verify. */
export interface LoadVerifier {
  readonly name: string;
  verify(token: string): Promise<VerifyOutcome>;
}

/** Outcome name of a gRPC Verify answer. */
export function outcomeOf(res: VerifyResponse): VerifyOutcome {
  return res.valid ? 'VALID' : verifyFailureReasonToJSON(res.reason).replace(/^VERIFY_FAILURE_REASON_/, '');
}

/** Outcome name of a library VerifyResult. */
export function outcomeOfResult(res: VerifyResult): VerifyOutcome {
  return res.valid ? 'VALID' : res.reason;
}

/** A LoadVerifier answering through a TokenAuthorityService client (the authority or a sidecar). */
export function grpcVerifier(name: string, client: Pick<AuthorityClient, 'verify'>): LoadVerifier {
  return { name, verify: async (token) => outcomeOf(await client.verify({ token })) };
}

/** A LoadVerifier over an in-process verifier (createVerifier). */
export function libraryVerifier(name: string, verifier: { verify(token: unknown): Promise<VerifyResult> }): LoadVerifier {
  return { name, verify: async (token) => outcomeOfResult(await verifier.verify(token)) };
}

/** The gRPC status name of a failed call ('UNAVAILABLE', …); 'ERROR' for a non-gRPC failure. */
export function codeOf(err: unknown): string {
  const code = (err as Partial<ServiceError> | undefined)?.code;
  return typeof code === 'number' ? (status[code] ?? String(code)) : 'ERROR';
}

/** The p-th percentile (nearest rank) of ascending samples. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Per-method counts, errors by code and latencies. Methods are labels ('Issue', 'Verify@sidecar'…). */
export class CallStats {
  private methods = new Map<string, MethodStats>();

  record(method: string, code: string, ms: number): void {
    let m = this.methods.get(method);
    if (!m) this.methods.set(method, (m = { ok: 0, errors: {}, latencies: [], maxMs: 0, maxMsByCode: {} }));
    if (code === 'OK') m.ok++;
    else m.errors[code] = (m.errors[code] ?? 0) + 1;
    m.latencies.push(ms);
    if (ms > m.maxMs) m.maxMs = ms;
    if (ms > (m.maxMsByCode[code] ?? 0)) m.maxMsByCode[code] = ms;
  }

  /** Figures per method since the last reset; `reset` starts a new window. */
  summary(reset = false): Record<string, MethodSummary> {
    const out: Record<string, MethodSummary> = {};
    for (const [name, m] of [...this.methods].sort(([a], [b]) => a.localeCompare(b))) {
      const sorted = Float64Array.from(m.latencies).sort();
      const calls = m.latencies.length;
      out[name] = {
        calls,
        ok: m.ok,
        errors: { ...m.errors },
        p50Ms: round(percentile(sorted, 50)),
        p99Ms: round(percentile(sorted, 99)),
        maxMs: round(m.maxMs),
        maxMsByCode: Object.fromEntries(Object.entries(m.maxMsByCode).map(([k, v]) => [k, round(v)])),
      };
    }
    if (reset) this.methods = new Map();
    return out;
  }
}

interface MethodStats {
  ok: number;
  errors: Record<string, number>;
  latencies: number[];
  maxMs: number;
  maxMsByCode: Record<string, number>;
}

export interface MethodSummary {
  calls: number;
  ok: number;
  errors: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  maxMsByCode: Record<string, number>;
}

const round = (x: number) => Math.round(x * 100) / 100;

/** A Revoke answered OK with a sequence: durable by contract. */
export interface AckedRevocation {
  sequence: number;
  /** 'jti' when an access token was revoked, 'sid' when a refresh token (its session) was. */
  kind: 'jti' | 'sid';
  /** The revoked jti or session id. */
  id: string;
  /** An access token the revocation must reject. */
  accessToken: string;
  /** When the acknowledgement arrived (performance.now()). */
  at: number;
}

/** A Refresh answered OK. */
export interface RefreshSuccess {
  parent: string;
  successor: IssueResponse;
}

/** One failed call, kept when `recordFailures` is set. */
export interface FailedCall {
  method: string;
  code: string;
  ms: number;
  /** performance.now() at the start of the call. */
  startedAt: number;
}

export interface MixedLoadOptions {
  /** The authority. Give it a deadline well above the store's command timeout: a call that hits it is a hang. */
  authority: AuthorityClient;
  /** Verifiers checked with every freshly issued token (a sidecar, an in-process verifier…). */
  verifiers?: readonly LoadVerifier[];
  /** Concurrent loops. */
  loops: number;
  /** Pause after a failed round, ms. Default 20. */
  backoffMs?: number;
  /** Keep every acknowledged revocation (tests). Default false (counts only: the soak must not grow). */
  recordRevocations?: boolean;
  /** Keep every successful Refresh (tests). Default false. */
  recordRefreshes?: boolean;
  /** Keep every failed call (tests). Default false. */
  recordFailures?: boolean;
  /** Access-token TTL asked for, seconds (0 = the authority's default). */
  accessTtlSeconds?: number;
}

/** Outcomes that are not failures of a call but surprises about a token, by label ('Verify@sidecar fresh token: STALE'). */
export type Surprises = Record<string, number>;

/** The load: start() launches the loops, stop() ends them after their current call. */
export class MixedLoad {
  readonly stats = new CallStats();
  readonly revocations: AckedRevocation[] = [];
  readonly refreshes: RefreshSuccess[] = [];
  readonly failures: FailedCall[] = [];
  /** Verify answers that differ from what the round expected, by label and outcome. */
  readonly surprises: Surprises = {};
  /** Totals (kept even when nothing is recorded). */
  readonly totals = { rounds: 0, revocationsAcked: 0, refreshes: 0 };
  /** performance.now() of the latest successful write (Issue/Refresh/Revoke). */
  lastWriteOkAt = 0;

  private running = false;
  private loops: Array<Promise<void>> = [];
  private seq = 0;

  constructor(private readonly opts: MixedLoadOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    for (let i = 0; i < this.opts.loops; i++) this.loops.push(this.loop(i));
  }

  /** Stop after the calls in flight; resolves once every loop has ended. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
  }

  private async loop(index: number): Promise<void> {
    const backoffMs = this.opts.backoffMs ?? 20;
    while (this.running) {
      const ok = await this.round(index);
      this.totals.rounds++;
      if (!ok && this.running) await new Promise((r) => setTimeout(r, backoffMs));
    }
  }

  /** Time one call; undefined when it failed (already counted). */
  private async call<T>(method: string, fn: () => Promise<T>): Promise<T | undefined> {
    const started = performance.now();
    try {
      const value = await fn();
      this.stats.record(method, 'OK', performance.now() - started);
      return value;
    } catch (err) {
      const ms = performance.now() - started;
      const code = codeOf(err);
      this.stats.record(method, code, ms);
      if (this.opts.recordFailures) this.failures.push({ method, code, ms, startedAt: started });
      return undefined;
    }
  }

  private surprise(label: string, outcome: string): void {
    const key = `${label}: ${outcome}`;
    this.surprises[key] = (this.surprises[key] ?? 0) + 1;
  }

  private async round(loop: number): Promise<boolean> {
    const { authority, verifiers = [] } = this.opts;
    const n = ++this.seq;
    const ttl = this.opts.accessTtlSeconds ?? 0;
    const issued = await this.call('Issue', () => authority.issue({ subject: `load-${loop}-${n % 1000}`, audience: ['orders'], scopes: ['read'], accessTtlSeconds: ttl }));
    if (!issued) return false;
    this.lastWriteOkAt = performance.now();

    const fresh = await this.call('Verify', () => authority.verify({ token: issued.accessToken }));
    if (fresh && !fresh.valid) this.surprise('Verify fresh token', outcomeOf(fresh));
    for (const v of verifiers) {
      const outcome = await this.call(`Verify@${v.name}`, () => v.verify(issued.accessToken));
      if (outcome !== undefined && outcome !== 'VALID') this.surprise(`Verify@${v.name} fresh token`, outcome);
    }

    const refreshed = await this.call('Refresh', () => authority.refresh({ refreshToken: issued.refreshToken, accessTtlSeconds: ttl }));
    if (!refreshed) return false;
    this.lastWriteOkAt = performance.now();
    this.totals.refreshes++;
    if (this.opts.recordRefreshes) this.refreshes.push({ parent: issued.refreshToken, successor: refreshed });

    // Alternate: revoke one access token (jti), or the session through its refresh token (sid).
    const bySession = n % 2 === 0;
    const revoked = await this.call('Revoke', () =>
      authority.revoke({ target: { $case: 'token', token: bySession ? refreshed.refreshToken : refreshed.accessToken }, reason: 'load' }),
    );
    if (!revoked) return false;
    this.lastWriteOkAt = performance.now();
    if (revoked.sequence <= 0) {
      this.surprise('Revoke', `sequence ${revoked.sequence}`);
      return true;
    }
    this.totals.revocationsAcked++;
    if (this.opts.recordRevocations) {
      this.revocations.push({
        sequence: revoked.sequence,
        kind: bySession ? 'sid' : 'jti',
        id: revoked.revokedId,
        accessToken: refreshed.accessToken,
        at: performance.now(),
      });
    }
    // The authority applies its own revocations at once, ahead of the feed.
    const after = await this.call('Verify', () => authority.verify({ token: refreshed.accessToken }));
    if (after && outcomeOf(after) !== 'REVOKED') this.surprise('Verify at the authority right after Revoke', outcomeOf(after));
    return true;
  }
}

/** Run `fn` over `items` with at most `concurrency` in flight; results in input order. */
export async function mapConcurrent<T, R>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return out;
}
