import { ErrorCodes, TokenAuthorityError } from '../shared/errors.js';

/**
 * Every Redis key and channel the token authority uses, in one place.
 *
 * All names start with `<keyPrefix>{ta}:` (default prefix `ta:v1:`, so `ta:v1:{ta}:…`). The `{ta}`
 * hash tag puts every key into ONE hash slot. That is deliberate, not an accident of naming:
 *  - the revocation log needs a single total order (one sequence counter, one stream), so it lives
 *    on one node anyway;
 *  - the Lua scripts touch several keys atomically, and some of those keys are only known inside
 *    the script (the family of a refresh token, the generation of the family's subject). Redis
 *    Cluster runs a script on one node and only allows keys of one slot; with one hash tag the
 *    derived keys are always in the slot of the declared ones.
 * The cost is that one Redis Cluster shard holds all token-authority state; the state is small
 * (hashed refresh tokens and a time-trimmed log) and scales with sessions, not requests.
 *
 * | key (after `<prefix>{ta}:`) | type   | contents                                                      | expires                         |
 * | ---------------------------- | ------ | ------------------------------------------------------------- | ------------------------------- |
 * | `rt:<refreshKey>`            | hash   | sid, state (live/spent), exp, iat (issued at), succ (successor| PEXPIREAT family's absolute exp |
 * |                              |        | key), spentAt, proof (live: MAC(key,sid,exp,iat); spent:      |                                 |
 * |                              |        | MAC(key,succ,spentAt); deleted when the session is revoked)   |                                 |
 * | `sess:<sid>`                 | hash   | sid, sub, aud/scopes/extra (JSON; extra holds the claims,     | PEXPIREAT absolute exp          |
 * |                              |        | client_id included), constraints (JSON: the grant's TTL cap,  |                                 |
 * |                              |        | the token binding; absent = none), seal (the authority's MAC  |                                 |
 * |                              |        | over all of it),                                              |                                 |
 * |                              |        | gen, createdAt, absExp, lastUsedAt, revoked (0/1), current    |                                 |
 * |                              |        | (key of the live token), parent (key of current's parent).    |                                 |
 * |                              |        | Sessions stored before seal/constraints were fields keep both |                                 |
 * |                              |        | inside extra (`ta_seal`, `ta_cap`): still read, never written |                                 |
 * | `gen:<sub>`                  | string | the subject's generation (absent = 0); INCR on `sub` revoke   | never (see below)               |
 * | `subsess:<sub>`              | set    | sids of the subject's sessions since its last `sub` revoke,   | PEXPIREAT the latest absolute   |
 * |                              |        | whose record proofs that revoke deletes (then DEL)            | exp of its sessions             |
 * | `seq`                        | string | the newest revocation sequence number (INCR)                  | never                           |
 * | `log`                        | stream | ID `<seq>-0`, fields `e` = event JSON (wire format), `at` (ms)| trimmed by `at` (XTRIM MINID)   |
 * | `rev:jti:<jti>`              | string | the event JSON of the jti revocation (idempotency marker)     | PXAT the revocation's `until`   |
 * | `rev:sid:<sid>`              | string | the event JSON of the sid revocation (idempotency marker)     | PXAT the revocation's `until`   |
 * | `ttl-hw`                     | hash   | access TTL (ms) → until when tokens of that TTL may be valid  | fields pruned when passed       |
 * | `receipts`                   | hash   | instanceId → `<seq>:<reportedAtMs>:<expiresAtMs>`             | fields pruned when expired      |
 * | `receipt:<instanceId>`       | string | that verifier's receipt: `<seq>:<reportedAtMs>:<liveUntilMs>`;| PX the receipt retention        |
 * |                              |        | live until liveUntil (the receipt TTL, 5 s), stale after; one | (TA_RECEIPT_RETENTION, default  |
 * |                              |        | key per instance, so an ACL can let each verifier write only  | 10 min; at least the TTL)       |
 * |                              |        | its own                                                       |                                 |
 * | `receipt-ids`                | set    | instance ids that have reported (the verifier SADDs itself;   | members without a receipt key   |
 * |                              |        | listApplied reads `receipt:<id>` of each and SREMs dead ones) | pruned by listApplied           |
 * | `receipts`                   | hash   | legacy (before per-instance receipts): no longer written or   | the heartbeat prunes it         |
 * |                              |        | read; the heartbeat prunes what an old sidecar left there     |                                 |
 * | channel `feed`               | pubsub | the same event JSON as the log, plus heartbeats               | —                               |
 * | `keys`                       | hash   | version, doc: the signing key set, private keys sealed under  | never                           |
 * |                              |        | the KEK (TA_KEY_STORE=redis; src/keys/redis-key-store.ts)     |                                 |
 * | `dpop:<scope>:<h>` (NOT under | string | "1": a DPoP proof id claimed by a verifier of service `<scope>`| PX the proof's window           |
 * | `{ta}`: `<prefix>dpop:…`)    |        | (`<h>` = base64url SHA-256 of `<jkt>.<jti>`); spread over     |                                 |
 * |                              |        | slots, one key per command (src/store/redis-dpop-replay.ts)   |                                 |
 * | channel `feed` on a Cluster  | shard  | as `feed`, but SPUBLISH/SSUBSCRIBE (sharded pub/sub) in the   | —                               |
 * |                              | channel| `{ta}` slot (redis-scripts.ts, redis-connection.ts)           |                                 |
 *
 * `<refreshKey>` is HMAC-SHA256 of the refresh token under a secret derived from the session seal's
 * (src/authority/record-integrity.ts), computed by the authority: the store and anyone reading it
 * see an opaque string, and nobody without the secret can make a token map to a record or forge a
 * proof. Records written before this format are keyed by plain SHA-256 and are refused.
 *
 * Subject generations never expire: a session created under generation g stays revoked only while
 * the counter is > g, and a session may live (absolute lifetime) far longer than any access token.
 * Only subjects that were ever "signed out everywhere" have a key, one small integer each.
 */
export const DEFAULT_KEY_PREFIX = 'ta:v1:';

/** The key-name segments; the Lua scripts build derived keys from the same segments. */
export const KeySegments = {
  refresh: 'rt:',
  session: 'sess:',
  generation: 'gen:',
  subjectSessions: 'subsess:',
  seq: 'seq',
  log: 'log',
  revokedJti: 'rev:jti:',
  revokedSid: 'rev:sid:',
  receipts: 'receipts',
  ttlHighWater: 'ttl-hw',
  receipt: 'receipt:',
  receiptIds: 'receipt-ids',
  feed: 'feed',
} as const;

/** The resolved names for one key prefix. */
export interface RedisKeys {
  /** `<prefix>{ta}:` — every key starts with it; passed to the Lua scripts to derive keys. */
  readonly base: string;
  readonly seq: string;
  readonly log: string;
  /** Legacy receipts hash (pruned by the heartbeat only). */
  readonly receipts: string;
  readonly ttlHighWater: string;
  /** The set of instance ids that have reported a receipt. */
  readonly receiptIds: string;
  /** Instance `instanceId`'s own receipt key. */
  receipt(instanceId: string): string;
  /** The pub/sub channel (not a key, but named alike so one prefix isolates a deployment). */
  readonly feed: string;
  refresh(refreshHash: string): string;
  session(sessionId: string): string;
  generation(subject: string): string;
  revokedJti(jti: string): string;
  revokedSid(sessionId: string): string;
}

/** Resolve every key name for `keyPrefix`. */
export function redisKeys(keyPrefix: string = DEFAULT_KEY_PREFIX): RedisKeys {
  // A brace in the prefix would move or split the hash tag and break the one-slot guarantee.
  if (/[{}]/.test(keyPrefix)) {
    throw new TokenAuthorityError(ErrorCodes.CONFIG, 'keyPrefix must not contain "{" or "}"');
  }
  const base = `${keyPrefix}{ta}:`;
  return {
    base,
    seq: base + KeySegments.seq,
    log: base + KeySegments.log,
    receipts: base + KeySegments.receipts,
    ttlHighWater: base + KeySegments.ttlHighWater,
    receiptIds: base + KeySegments.receiptIds,
    receipt: (id) => base + KeySegments.receipt + id,
    feed: base + KeySegments.feed,
    refresh: (h) => base + KeySegments.refresh + h,
    session: (s) => base + KeySegments.session + s,
    generation: (s) => base + KeySegments.generation + s,
    revokedJti: (j) => base + KeySegments.revokedJti + j,
    revokedSid: (s) => base + KeySegments.revokedSid + s,
  };
}

/**
 * The key of one claimed DPoP proof id: `<prefix>dpop:<scope>:<hash>`. Deliberately outside the
 * `{ta}` slot: each claim is one command on one key, and the claims of busy services spread over a
 * Cluster instead of all landing on the shard of the authority's state.
 */
export function dpopReplayKey(keyPrefix: string, scope: string, idHash: string): string {
  if (/[{}]/.test(keyPrefix)) throw new TokenAuthorityError(ErrorCodes.CONFIG, 'keyPrefix must not contain "{" or "}"');
  return `${keyPrefix}dpop:${scope}:${idHash}`;
}
