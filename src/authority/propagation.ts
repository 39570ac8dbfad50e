import { ErrorCodes, TokenAuthorityError } from '../shared/errors.js';
import type { TokenStore } from '../store/token-store.js';

export interface PropagationAnswer {
  verifiers: Array<{ instanceId: string; seq: number; reportedAt: number }>;
  appliedCount: number;
}

export interface PropagationTracker {
  /** Which live verifiers have applied `seq`; waits up to waitMs for at least `minVerifiers` of them. */
  query(seq: number, minVerifiers: number, waitMs: number): Promise<PropagationAnswer>;
}

/**
 * Answers "which verifiers have applied sequence n" from the receipts verifiers write to the store.
 * Waiting polls the receipts (every 5 ms, bounded by waitMs; at most 64 calls wait at once).
 */
export function createPropagationTracker(store: TokenStore, options: { pollMs?: number; maxWaiting?: number } = {}): PropagationTracker {
  const pollMs = options.pollMs ?? 5;
  // Each waiting call polls Redis: cap how many may wait at once, so they cannot flood it.
  const maxWaiting = options.maxWaiting ?? 64;
  let waiting = 0;
  const read = async (seq: number): Promise<PropagationAnswer> => {
    const verifiers = await store.listApplied();
    return { verifiers, appliedCount: verifiers.filter((v) => v.seq >= seq).length };
  };
  return {
    async query(seq, minVerifiers, waitMs) {
      let answer = await read(seq);
      if (answer.appliedCount >= minVerifiers || waitMs <= 0) return answer;
      if (waiting >= maxWaiting) {
        throw new TokenAuthorityError(ErrorCodes.RATE_LIMITED, `${maxWaiting} GetPropagation calls are already waiting; retry with wait_ms=0 or later`);
      }
      waiting++;
      try {
        const deadline = Date.now() + waitMs;
        while (answer.appliedCount < minVerifiers && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, pollMs));
          answer = await read(seq);
        }
        return answer;
      } finally {
        waiting--;
      }
    },
  };
}
