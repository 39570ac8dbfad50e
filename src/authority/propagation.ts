import { ErrorCodes, TokenAuthorityError } from '../shared/errors.js';
import type { ReceiptReader } from '../store/token-store.js';

export interface PropagationAnswer {
  verifiers: Array<{ instanceId: string; seq: number; reportedAt: number }>;
  appliedCount: number;
}

/** What bounds one waiting query besides its wait_ms. */
export interface PropagationWaitOptions {
  /** Aborted when the call is cancelled (or its deadline passes): the wait ends at once. */
  signal?: AbortSignal | undefined;
  /** The call's deadline, ms since the epoch: the wait ends just before it. */
  deadlineMs?: number | undefined;
  /** Who is waiting (the rate-limit key), for the per-caller cap. */
  caller?: string | undefined;
}

export interface PropagationTracker {
  /** Which live verifiers have applied `seq`; waits up to waitMs for at least `minVerifiers` of them. */
  query(seq: number, minVerifiers: number, waitMs: number, options?: PropagationWaitOptions): Promise<PropagationAnswer>;
  /** Calls waiting now. */
  readonly waiting: number;
}

export interface PropagationTrackerOptions {
  /** How often the one shared poller reads the receipts while anyone waits, ms (default 5). */
  pollMs?: number;
  /** Calls that may wait at once (default 64). */
  maxWaiting?: number;
  /** Calls one caller may have waiting at once (default 8). */
  maxWaitingPerCaller?: number;
}

/** A wait ends this long before the call's deadline, so that its answer still reaches the caller. */
const DEADLINE_MARGIN_MS = 20;

interface Waiter {
  readonly seq: number;
  readonly minVerifiers: number;
  readonly caller: string;
  latest: PropagationAnswer;
  resolve(answer: PropagationAnswer): void;
  reject(err: unknown): void;
  timer?: NodeJS.Timeout;
  signal?: AbortSignal | undefined;
  onAbort?: () => void;
}

/**
 * Answers "which verifiers have applied sequence n" from the receipts verifiers write to the store.
 * Waiting calls share one poller, which reads the receipts every `pollMs` while anyone waits (one
 * store read per interval, whatever the number of waiters). A wait ends when enough verifiers
 * have applied the sequence, at wait_ms, just before the call's deadline, or as soon as the call is
 * cancelled; its slot is free at that moment. At most `maxWaiting` calls wait at once, and at most
 * `maxWaitingPerCaller` of one caller.
 */
export function createPropagationTracker(store: ReceiptReader, options: PropagationTrackerOptions = {}): PropagationTracker {
  const pollMs = options.pollMs ?? 5;
  const maxWaiting = options.maxWaiting ?? 64;
  const maxPerCaller = options.maxWaitingPerCaller ?? 8;
  const waiters = new Set<Waiter>();
  const perCaller = new Map<string, number>();
  let polling = false;

  const answerFor = (verifiers: PropagationAnswer['verifiers'], seq: number): PropagationAnswer => ({
    verifiers,
    appliedCount: verifiers.filter((v) => v.seq >= seq).length,
  });

  /** Remove a waiter and free its slots; false when it was already gone. */
  const release = (w: Waiter): boolean => {
    if (!waiters.delete(w)) return false;
    clearTimeout(w.timer);
    if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
    const n = (perCaller.get(w.caller) ?? 1) - 1;
    if (n > 0) perCaller.set(w.caller, n);
    else perCaller.delete(w.caller);
    return true;
  };
  const finish = (w: Waiter, answer: PropagationAnswer) => {
    if (release(w)) w.resolve(answer);
  };

  const poll = async () => {
    if (polling) return;
    polling = true;
    try {
      while (waiters.size > 0) {
        await new Promise((r) => setTimeout(r, pollMs));
        if (waiters.size === 0) break;
        let verifiers: PropagationAnswer['verifiers'];
        try {
          verifiers = await store.listApplied();
        } catch (err) {
          // The store failed: every waiter gets the error (as a call without waiting would).
          for (const w of [...waiters]) if (release(w)) w.reject(err);
          break;
        }
        for (const w of [...waiters]) {
          w.latest = answerFor(verifiers, w.seq);
          if (w.latest.appliedCount >= w.minVerifiers) finish(w, w.latest);
        }
      }
    } finally {
      polling = false;
    }
  };

  return {
    get waiting() {
      return waiters.size;
    },
    async query(seq, minVerifiers, waitMs, opts = {}) {
      const first = answerFor(await store.listApplied(), seq);
      if (first.appliedCount >= minVerifiers || waitMs <= 0 || opts.signal?.aborted) return first;
      const untilDeadline = opts.deadlineMs !== undefined && Number.isFinite(opts.deadlineMs) ? opts.deadlineMs - Date.now() - DEADLINE_MARGIN_MS : Infinity;
      const wait = Math.min(waitMs, untilDeadline);
      if (wait <= 0) return first;
      const caller = opts.caller ?? '';
      if (waiters.size >= maxWaiting) {
        throw new TokenAuthorityError(ErrorCodes.RATE_LIMITED, `${maxWaiting} GetPropagation calls are already waiting; retry with wait_ms=0 or later`);
      }
      if ((perCaller.get(caller) ?? 0) >= maxPerCaller) {
        throw new TokenAuthorityError(ErrorCodes.RATE_LIMITED, `this caller already has ${maxPerCaller} GetPropagation calls waiting; retry with wait_ms=0 or when one has answered`);
      }
      return new Promise<PropagationAnswer>((resolve, reject) => {
        const w: Waiter = { seq, minVerifiers, caller, latest: first, resolve, reject, signal: opts.signal };
        waiters.add(w);
        perCaller.set(caller, (perCaller.get(caller) ?? 0) + 1);
        w.timer = setTimeout(() => finish(w, w.latest), wait);
        if (opts.signal) {
          w.onAbort = () => finish(w, w.latest);
          opts.signal.addEventListener('abort', w.onAbort, { once: true });
        }
        void poll();
      });
    },
  };
}
