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
 * Waiting polls the receipts (every 2 ms, bounded by waitMs): receipts are tiny and the wait is rare.
 */
export function createPropagationTracker(store: TokenStore, pollMs = 2): PropagationTracker {
  const read = async (seq: number): Promise<PropagationAnswer> => {
    const verifiers = await store.listApplied();
    return { verifiers, appliedCount: verifiers.filter((v) => v.seq >= seq).length };
  };
  return {
    async query(seq, minVerifiers, waitMs) {
      const deadline = Date.now() + waitMs;
      let answer = await read(seq);
      while (answer.appliedCount < minVerifiers && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, pollMs));
        answer = await read(seq);
      }
      return answer;
    },
  };
}
