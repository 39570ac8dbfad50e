import type { RotateChecks } from '../../src/store/token-store.js';

/**
 * Stand-in for the authority's refresh proofs in store tests: plain strings the store cannot tell
 * from MACs, checked the same way (a record is proven when its proof matches what it claims).
 */
export const testLiveProof = (key: string, sid: string, exp: number, iat: number) => `live|${key}|${sid}|${exp}|${iat}`;
export const testGraceProof = (key: string, sid: string, succ: string, spentAt: number) => `grace|${key}|${sid}|${succ}|${spentAt}`;

export const testChecks: RotateChecks = {
  check: (s) => ({
    proven:
      s.state === 'live'
        ? s.proof === testLiveProof(s.key, s.sessionId, s.expiresAt, s.issuedAt)
        : s.successor !== undefined && s.spentAt !== undefined && s.proof === testGraceProof(s.key, s.sessionId, s.successor, s.spentAt),
  }),
  liveProof: testLiveProof,
  graceProof: testGraceProof,
};
