import type { Verifier } from '../verifier/create-verifier.js';
import { gauge, type Metrics } from './metrics.js';

/** Freshness and cache gauges, shared by every process that embeds a verifier. */
export function registerVerifierGauges(metrics: Metrics, verifier: Verifier): void {
  gauge(metrics, 'ta_revocation_applied_sequence', 'Highest revocation sequence applied by this process.', () => verifier.status().revocation.appliedSeq);
  gauge(metrics, 'ta_revocation_lag', 'Known revocation sequences not applied yet.', () => verifier.status().revocation.lag);
  gauge(metrics, 'ta_revocation_state_age_seconds', 'Seconds since the revocation state was last known complete.', () => {
    const age = verifier.status().revocation.ageMs;
    return Number.isFinite(age) ? age / 1000 : -1;
  });
  gauge(metrics, 'ta_revocation_entries', 'Live revocation entries held in memory.', () => {
    const e = verifier.status().revocation.entries;
    return e.jti + e.sid + e.sub;
  });
  gauge(metrics, 'ta_token_cache_hit_ratio', 'Verified-token cache hit ratio since start.', () => verifier.status().cache.hitRate);
  gauge(metrics, 'ta_verify_accepted_while_stale_total', 'Tokens accepted with stale revocation state (fail-open).', () => verifier.status().acceptedWhileStale);
}
