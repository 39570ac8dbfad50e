import { ErrorCodes, TokenAuthorityError } from '../shared/errors.js';
import { REUSE_REVOCATION_REASON } from './store-input.js';
import { RESTORED_REVOCATION_REASON } from './token-store.js';

/**
 * The Redis schema of the token authority, in one place: every key and channel it uses (the
 * table below, `redisKeys`), and the Lua scripts that read and write them (further down,
 * `redisScripts`). The scripts build derived keys from the same `KeySegments`.
 */

/**
 * Every Redis key and channel.
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
 * |                              | channel| `{ta}` slot (scripts below, redis-connection.ts)              |                                 |
 *
 * `<refreshKey>` is HMAC-SHA256 of the refresh token under a secret derived from the session seal's
 * (src/authority/session-records.ts), computed by the authority: the store and anyone reading it
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

/**
 * Refuses a key prefix with a brace: it would move or split the `{ta}` hash tag and break the
 * one-slot guarantee (and put DPoP claims into a slot of its choosing).
 * @throws TokenAuthorityError ERR_CONFIG
 */
export function checkKeyPrefix(keyPrefix: string): void {
  if (/[{}]/.test(keyPrefix)) throw new TokenAuthorityError(ErrorCodes.CONFIG, 'keyPrefix must not contain "{" or "}"');
}

/** Resolve every key name for `keyPrefix`. */
export function redisKeys(keyPrefix: string = DEFAULT_KEY_PREFIX): RedisKeys {
  checkKeyPrefix(keyPrefix);
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
 * Cluster instead of all landing on the shard of the authority's state. `keyPrefix` is one
 * {@link checkKeyPrefix} accepted (the replay store checks it once, when it is made).
 */
export function dpopReplayKey(keyPrefix: string, scope: string, idHash: string): string {
  return `${keyPrefix}dpop:${scope}:${idHash}`;
}

/**
 * The Lua scripts of RedisTokenStore. Every operation that touches more than one key is one script:
 * Redis runs a script to completion before any other command, so a script is the serialisation
 * point (of N concurrent rotations of one token exactly one sees it live) and its effects are
 * all-or-nothing as seen by other clients.
 *
 * Conventions:
 *  - ARGV[1] is always the key base `<prefix>{ta}:`. KEYS declares the keys the caller can name;
 *    keys that depend on stored data (a token's family, the family subject's generation) are built
 *    from the base inside the script. All share the `{ta}` hash tag, hence one slot (above).
 *  - Scripts check everything before their first write: Redis does not roll back a script that
 *    fails half-way, so a refusal ("conflict") must leave no partial state.
 *  - Event time (`at`) is Redis `TIME`, so every authority replica stamps the log with one clock.
 *    Rotation decisions use the caller's `now` (the RotateRefreshInput contract).
 *  - Numbers are formatted with %d: cjson and Lua's tostring switch to exponent notation for large
 *    values, which would corrupt epoch milliseconds.
 *  - Scripts mutate with HSET/SET/XADD/INCR only after reading TIME: since Redis 5 scripts replicate
 *    their effects, not their source, so non-deterministic reads before writes are allowed.
 *  - The feed is published with PUBLISH_CMD: PUBLISH, or SPUBLISH on a Cluster (sharded pub/sub).
 *    Each script exists in both flavours ({@link redisScripts}); the choice is per deployment.
 */

/** How scripts publish on the feed: plain pub/sub, or sharded pub/sub on a Redis Cluster. */
export type FeedPublishCommand = 'PUBLISH' | 'SPUBLISH';


const prelude = (publish: FeedPublishCommand) => `
local base = ARGV[1]
-- PUBLISH on a single server or Sentinel; SPUBLISH (sharded pub/sub) on a Cluster, where the
-- feed channel shares the \`{ta}\` slot of every key this script touches.
local PUBLISH_CMD = '${publish}'
local K_RT, K_SESS, K_GEN = base .. '${KeySegments.refresh}', base .. '${KeySegments.session}', base .. '${KeySegments.generation}'
local K_SEQ, K_LOG, K_FEED = base .. '${KeySegments.seq}', base .. '${KeySegments.log}', base .. '${KeySegments.feed}'
local K_RECEIPTS = base .. '${KeySegments.receipts}'
local K_SUBSESS = base .. '${KeySegments.subjectSessions}'
local K_REV = { jti = base .. '${KeySegments.revokedJti}', sid = base .. '${KeySegments.revokedSid}' }

local function int(n) return string.format('%d', n) end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The wire format of src/shared/revocation-event.ts, field order as documented there.
local function event_json(seq, kind, id, gen, until_ms, at, reason)
  local p = { '{"v":1,"type":"rev","seq":', int(seq), ',"kind":"', kind, '","id":', cjson.encode(id) }
  if gen then p[#p + 1] = ',"gen":'; p[#p + 1] = int(gen) end
  p[#p + 1] = ',"until":'; p[#p + 1] = int(until_ms)
  p[#p + 1] = ',"at":'; p[#p + 1] = int(at)
  if reason and reason ~= '' then p[#p + 1] = ',"reason":'; p[#p + 1] = cjson.encode(reason) end
  p[#p + 1] = '}'
  return table.concat(p)
end

-- Drops log entries whose \`at\` is older than now - retention, examining at most max_scan of the
-- oldest. Entries are appended in seq order with non-decreasing \`at\`, so the old ones are a prefix
-- and MINID (<last old seq> + 1) removes exactly them.
local function trim(now, retention, max_scan)
  local cutoff = now - retention
  local entries = redis.call('XRANGE', K_LOG, '-', '+', 'COUNT', max_scan)
  local last_old = nil
  for _, entry in ipairs(entries) do
    local fields, at = entry[2], nil
    for i = 1, #fields, 2 do
      if fields[i] == 'at' then at = tonumber(fields[i + 1]) end
    end
    if at == nil or at >= cutoff then break end
    last_old = entry[1]
  end
  if last_old == nil then return 0 end
  local seq = tonumber(string.match(last_old, '^(%d+)-'))
  return redis.call('XTRIM', K_LOG, 'MINID', int(seq + 1) .. '-0')
end

-- Append + publish, one atomic step with whatever effect the caller script applied.
local function append(kind, id, gen, until_ms, reason, now, retention)
  local seq = redis.call('INCR', K_SEQ)
  local ev = event_json(seq, kind, id, gen, until_ms, now, reason)
  redis.call('XADD', K_LOG, int(seq) .. '-0', 'e', ev, 'at', int(now))
  redis.call(PUBLISH_CMD, K_FEED, ev)
  -- Amortised: a few entries per append keep the log trimmed without one call doing unbounded work.
  trim(now, retention, 16)
  return ev
end

-- jti/sid: while the marker lives, the original event is the answer (no new sequence).
local function idempotent_append(kind, id, until_ms, reason, now, retention)
  local marker = K_REV[kind] .. id
  local existing = redis.call('GET', marker)
  if existing then return existing end
  local ev = append(kind, id, nil, until_ms, reason, now, retention)
  if until_ms > now then redis.call('SET', marker, ev, 'PXAT', int(until_ms)) end
  return ev
end

-- Liveness evidence dies with a session: the proofs of its current token and of that token's
-- parent (grace) are the authority's, so clearing \`revoked\` (or resetting a generation) again
-- revives nothing.
local function drop_proofs(fam)
  local ptrs = redis.call('HMGET', fam, 'current', 'parent')
  for i = 1, 2 do
    if ptrs[i] then redis.call('HDEL', K_RT .. ptrs[i], 'proof') end
  end
end

-- The effect of a sid revocation (Revoke, logout, reuse, restore): revoked, and its proofs gone.
local function mark_session_revoked(sid)
  local fam = K_SESS .. sid
  if redis.call('EXISTS', fam) == 1 then
    redis.call('HSET', fam, 'revoked', '1')
    drop_proofs(fam)
  end
end

-- Part of a sub revocation's effect: the proofs of every session of the subject go too, so
-- resetting the generation later revives none of them.
local function drop_subject_proofs(sub)
  for _, sid in ipairs(redis.call('SMEMBERS', K_SUBSESS .. sub)) do drop_proofs(K_SESS .. sid) end
  redis.call('DEL', K_SUBSESS .. sub)
end

local function revoke_session(sid, until_ms, reason, now, retention)
  mark_session_revoked(sid)
  return idempotent_append('sid', sid, until_ms, reason, now, retention)
end

-- Everything a rotation decides on, as one digest: the token's record, its session and the
-- subject's generation. LOAD_REFRESH returns it with the data the authority checks; ROTATE_REFRESH
-- proceeds only if it is unchanged (compare-and-set on what was checked).
local function fingerprint(rt_key)
  local rec = redis.call('HMGET', rt_key, 'sid', 'state', 'exp', 'iat', 'succ', 'spentAt', 'proof')
  local parts = { rec, false, false }
  if rec[1] then
    local f = redis.call('HMGET', K_SESS .. rec[1], 'sid', 'sub', 'aud', 'scopes', 'extra', 'gen', 'createdAt', 'absExp',
      'lastUsedAt', 'revoked', 'current', 'parent', 'constraints', 'seal')
    parts[2] = f
    if f[2] then parts[3] = redis.call('GET', K_GEN .. f[2]) or false end
  end
  return redis.sha1hex(cjson.encode(parts))
end

local function subject_generation(sub)
  return tonumber(redis.call('GET', K_GEN .. sub) or '0')
end
`;

/**
 * createSession. KEYS: gen(sub), sess(sid), rt(hash).
 * ARGV: base, sid, sub, audJson, scopesJson, extraJson, refreshExpiresAt, absoluteExpiresAt, now, hash, proof,
 *       constraintsJson ('' = none), seal ('' = none): those two fields are written only when given.
 * Returns {'ok', generation} or {'conflict', what}.
 */
const CREATE_SESSION = (p: FeedPublishCommand) => `${prelude(p)}
if redis.call('EXISTS', KEYS[2]) == 1 then return { 'conflict', 'session id' } end
if redis.call('EXISTS', KEYS[3]) == 1 then return { 'conflict', 'refresh token hash' } end
local gen = tonumber(redis.call('GET', KEYS[1]) or '0')
local abs_exp = ARGV[8]
redis.call('HSET', KEYS[2], 'sid', ARGV[2], 'sub', ARGV[3], 'aud', ARGV[4], 'scopes', ARGV[5], 'extra', ARGV[6],
  'gen', int(gen), 'createdAt', ARGV[9], 'absExp', abs_exp, 'lastUsedAt', ARGV[9], 'revoked', '0', 'current', ARGV[10])
if ARGV[12] ~= '' then redis.call('HSET', KEYS[2], 'constraints', ARGV[12]) end
if ARGV[13] ~= '' then redis.call('HSET', KEYS[2], 'seal', ARGV[13]) end
redis.call('PEXPIREAT', KEYS[2], abs_exp)
redis.call('HSET', KEYS[3], 'sid', ARGV[2], 'state', 'live', 'exp', ARGV[7], 'iat', ARGV[9], 'proof', ARGV[11])
-- Records live as long as their family: a spent one must stay detectable as reuse all that time.
redis.call('PEXPIREAT', KEYS[3], abs_exp)
-- The subject's sessions, for a sign-out everywhere to delete their proofs.
local subsess = K_SUBSESS .. ARGV[3]
redis.call('SADD', subsess, ARGV[2])
local ttl = redis.call('PTTL', subsess)
if ttl < 0 or tonumber(ARGV[9]) + ttl < tonumber(abs_exp) then redis.call('PEXPIREAT', subsess, abs_exp) end
return { 'ok', gen }
`;

/**
 * rotateRefresh: the whole state machine (see RotateResult and memory-token-store.ts, which
 * implements the same steps). KEYS: rt(presented), rt(successor).
 * ARGV: base, presentedHash, successorHash, successorExpiresAt, now, graceMs, idleTimeoutMs,
 *       revocationUntil, retentionMs, fingerprint (from LOAD_REFRESH), proven ('1'/'0': the
 *       authority verified the record's proof), successorProof, parentProof.
 * Returns {outcome, sessionFields, currentGeneration, viaGrace ('0'/'1'), eventJson?}
 * or {'invalid', 'unproven'?} / {'conflict', what} / {'stale'} (changed since LOAD_REFRESH: load again).
 */
const ROTATE_REFRESH = (p: FeedPublishCommand) => `${prelude(p)}
local presented, successor = ARGV[2], ARGV[3]
local succ_exp, now = tonumber(ARGV[4]), tonumber(ARGV[5])
local grace, idle = tonumber(ARGV[6]), tonumber(ARGV[7])
local rev_until, retention = tonumber(ARGV[8]), tonumber(ARGV[9])
local proven, succ_proof, parent_proof = ARGV[11] == '1', ARGV[12], ARGV[13]

-- 0. decide only on what the authority checked
if fingerprint(KEYS[1]) ~= ARGV[10] then return { 'stale' } end

-- 1. unknown token
local rec = redis.call('HMGET', KEYS[1], 'sid', 'state', 'exp', 'succ', 'spentAt', 'iat')
local sid = rec[1]
if not sid then return { 'invalid' } end
local fam = K_SESS .. sid
local f = redis.call('HMGET', fam, 'sub', 'gen', 'absExp', 'lastUsedAt', 'revoked', 'current')
if not f[1] then return { 'invalid' } end
local cur_gen = subject_generation(f[1])
local abs_exp = tonumber(f[3])

-- 2. family revoked, or its subject signed out everywhere since it was created
if f[5] == '1' or tonumber(f[2]) < cur_gen then
  return { 'revoked', redis.call('HGETALL', fam), int(cur_gen), '0' }
end
-- 3. token, absolute or idle expiry. A live token's last use is its own (proven) issue time.
local last_use = tonumber(f[4])
if rec[2] == 'live' then last_use = tonumber(rec[6] or '0') end
if now >= tonumber(rec[3]) or now >= abs_exp or (idle > 0 and now - last_use >= idle) then
  return { 'expired', redis.call('HGETALL', fam), int(cur_gen), '0' }
end

local function add_successor()
  redis.call('HSET', KEYS[2], 'sid', sid, 'state', 'live', 'exp', int(succ_exp), 'iat', int(now), 'proof', succ_proof)
  redis.call('PEXPIREAT', KEYS[2], int(abs_exp))
  redis.call('HSET', fam, 'current', successor, 'parent', presented, 'lastUsedAt', int(now))
end

-- 4. the live token: spend it, record the successor
if rec[2] == 'live' then
  -- A live record that is not current cannot arise (superseded successors are deleted); refuse
  -- it without punishing the family, since it proves no theft.
  if not proven then return { 'invalid', 'unproven' } end
  if f[6] ~= presented then return { 'invalid' } end
  if redis.call('EXISTS', KEYS[2]) == 1 then return { 'conflict', 'refresh token hash' } end
  -- The live proof goes: a spent record can never pass for live again.
  redis.call('HSET', KEYS[1], 'state', 'spent', 'spentAt', int(now), 'succ', successor, 'proof', parent_proof)
  add_successor()
  return { 'rotated', redis.call('HGETALL', fam), int(cur_gen), '0' }
end

-- 5. grace: the parent again, shortly after, while its successor is unused. Trade-off: an
-- attacker holding the parent within the window obtains a successor too (and supersedes the
-- legitimate one); without grace that race would revoke the family instead. Keep it short.
if grace > 0 and proven and rec[5] and now - tonumber(rec[5]) <= grace and rec[4] == f[6] then
  if redis.call('EXISTS', KEYS[2]) == 1 then return { 'conflict', 'refresh token hash' } end
  -- The superseded successor was never delivered: it becomes unknown (invalid), not reuse.
  redis.call('DEL', K_RT .. rec[4])
  redis.call('HSET', KEYS[1], 'succ', successor, 'proof', parent_proof)
  add_successor()
  return { 'rotated', redis.call('HGETALL', fam), int(cur_gen), '1' }
end

-- 6. reuse of a spent token: someone holds a copy. Kill the family and tell every verifier,
-- exactly as revoke() does for a sid.
redis.call('HDEL', KEYS[1], 'proof')
local ev = revoke_session(sid, rev_until, '${REUSE_REVOCATION_REASON}', now_ms(), retention)
return { 'reused', redis.call('HGETALL', fam), int(cur_gen), '0', ev }
`;

/** getSession. KEYS: sess(sid). ARGV: base. Returns {sessionFields, currentGeneration} or {}. */
const GET_SESSION = (p: FeedPublishCommand) => `${prelude(p)}
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return {} end
local sub = redis.call('HGET', KEYS[1], 'sub')
return { fields, int(subject_generation(sub)) }
`;

/**
 * loadRefresh (read-only): what a rotation decides on. KEYS: rt(hash). ARGV: base.
 * Returns {recordFields, sessionFields, currentGeneration, fingerprint} or {} (unknown token or session).
 */
const LOAD_REFRESH = (p: FeedPublishCommand) => `${prelude(p)}
local rec = redis.call('HGETALL', KEYS[1])
local sid = redis.call('HGET', KEYS[1], 'sid')
if not sid then return {} end
local fam = K_SESS .. sid
local fields = redis.call('HGETALL', fam)
if #fields == 0 then return {} end
return { rec, fields, int(subject_generation(redis.call('HGET', fam, 'sub'))), fingerprint(KEYS[1]) }
`;

/** findSessionByRefresh. KEYS: rt(hash). ARGV: base. Same reply as GET_SESSION. */
const FIND_SESSION_BY_REFRESH = (p: FeedPublishCommand) => `${prelude(p)}
local sid = redis.call('HGET', KEYS[1], 'sid')
if not sid then return {} end
local fam = K_SESS .. sid
local fields = redis.call('HGETALL', fam)
if #fields == 0 then return {} end
return { fields, int(subject_generation(redis.call('HGET', fam, 'sub'))) }
`;

/**
 * revoke. KEYS: seq, log, the target key (rev:jti:<id>, rev:sid:<id> or gen:<sub>).
 * ARGV: base, kind, id, until, reason ('' = none), retentionMs. Returns the event JSON.
 */
const REVOKE = (p: FeedPublishCommand) => `${prelude(p)}
local kind, id, until_ms, reason, retention = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local now = now_ms()
if kind == 'jti' then return idempotent_append('jti', id, until_ms, reason, now, retention) end
if kind == 'sid' then return revoke_session(id, until_ms, reason, now, retention) end
-- sub: tokens with gen < the new generation are revoked; always a new entry.
drop_subject_proofs(id)
local gen = redis.call('INCR', K_GEN .. id)
return append('sub', id, gen, until_ms, reason, now, retention)
`;

/**
 * restoreRevocations. KEYS: seq, log. ARGV: base, retentionMs, entriesJson ([[kind, id, until, gen?], ...]).
 * Returns the event JSON of every entry appended (those not covered by what the store holds).
 */
const RESTORE = (p: FeedPublishCommand) => `${prelude(p)}
local retention = tonumber(ARGV[2])
local list = cjson.decode(ARGV[3])
local now = now_ms()
local out = {}
for _, e in ipairs(list) do
  local kind, id, until_ms = e[1], e[2], tonumber(e[3])
  if until_ms > now then
    if kind == 'sub' then
      local gen = tonumber(e[4])
      if subject_generation(id) < gen then
        drop_subject_proofs(id)
        redis.call('SET', K_GEN .. id, int(gen))
        out[#out + 1] = append('sub', id, gen, until_ms, '${RESTORED_REVOCATION_REASON}', now, retention)
      end
    elseif kind == 'jti' or kind == 'sid' then
      local marker = K_REV[kind] .. id
      local existing = redis.call('GET', marker)
      local covered = false
      if existing then
        local ok, prior = pcall(cjson.decode, existing)
        covered = ok and type(prior) == 'table' and tonumber(prior['until']) ~= nil and tonumber(prior['until']) >= until_ms
      end
      if not covered then
        if kind == 'sid' then mark_session_revoked(id) end
        local ev = append(kind, id, nil, until_ms, '${RESTORED_REVOCATION_REASON}', now, retention)
        redis.call('SET', marker, ev, 'PXAT', int(until_ms))
        out[#out + 1] = ev
      end
    end
  end
end
return out
`;

/** readLog (read-only). KEYS: log, seq. ARGV: base, afterSeq, limit. Returns {headSeq, {eventJson...}}. */
const READ_LOG = (p: FeedPublishCommand) => `${prelude(p)}
local entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[2] .. '-0', '+', 'COUNT', ARGV[3])
local out = {}
for _, entry in ipairs(entries) do
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'e' then out[#out + 1] = fields[i + 1] end
  end
end
return { tonumber(redis.call('GET', KEYS[2]) or '0'), out }
`;

/**
 * heartbeat. KEYS: seq, log, receipts. ARGV: base, retentionMs.
 * Trims the log (bounded: at most 20 batches of 500 per call), prunes expired receipts, publishes
 * {"type":"hb","seq":<head>}. Returns {headSeq, trimmed}.
 */
const HEARTBEAT = (p: FeedPublishCommand) => `${prelude(p)}
local retention = tonumber(ARGV[2])
local now = now_ms()
local trimmed = 0
for _ = 1, 20 do
  local n = trim(now, retention, 500)
  trimmed = trimmed + n
  if n < 500 then break end
end
local receipts = redis.call('HGETALL', K_RECEIPTS)
for i = 1, #receipts, 2 do
  local expires = tonumber(string.match(receipts[i + 1], ':(%d+)$'))
  if expires == nil or now > expires then redis.call('HDEL', K_RECEIPTS, receipts[i]) end
end
local head = tonumber(redis.call('GET', K_SEQ) or '0')
redis.call(PUBLISH_CMD, K_FEED, '{"v":1,"type":"hb","seq":' .. int(head) .. ',"at":' .. int(now) .. '}')
return { head, trimmed }
`;

/**
 * recordAccessTtl. KEYS: ttl-hw. ARGV: base, ttlMs, horizonMs. Records that tokens of ttlMs may be
 * valid until now + horizon + ttl, prunes passed fields, returns the longest TTL still recorded.
 */
const RECORD_ACCESS_TTL = (p: FeedPublishCommand) => `${prelude(p)}
local now = now_ms()
local ttl, horizon = tonumber(ARGV[2]), tonumber(ARGV[3])
local valid_until = now + horizon + ttl
local current = tonumber(redis.call('HGET', KEYS[1], int(ttl)) or '0') or 0
if valid_until > current then redis.call('HSET', KEYS[1], int(ttl), int(valid_until)) end
local best = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local t, u = tonumber(all[i]), tonumber(all[i + 1])
  if t == nil or u == nil or u < now then redis.call('HDEL', KEYS[1], all[i]) elseif t > best then best = t end
end
return best
`;

/**
 * reportApplied. KEYS: receipt:<instanceId>. ARGV: base, instanceId, seq, ttlMs, keepMs.
 * Runs as the verifier's Redis user: it writes only its own receipt key and adds its id to the
 * index (derived, not declared: an ACL grants SADD on the index and nothing else, which EVAL's
 * own check of declared keys would refuse), so an ACL (docs/sidecar-and-gateways.md, "Propagation receipts") can
 * confine each verifier to exactly that. The value `<seq>:<reportedAt>:<liveUntil>` is live until
 * reportedAt + ttlMs; the key is kept for keepMs (≥ ttlMs), stale once past liveUntil.
 */
const REPORT_APPLIED = (p: FeedPublishCommand) => `${prelude(p)}
local now = now_ms()
local ttl = tonumber(ARGV[4])
local keep = math.max(ttl, tonumber(ARGV[5] or ARGV[4]))
redis.call('SET', KEYS[1], ARGV[3] .. ':' .. int(now) .. ':' .. int(now + ttl), 'PX', int(keep))
redis.call('SADD', base .. '${KeySegments.receiptIds}', ARGV[2])
return 1
`;

/**
 * listApplied / listReceipts. KEYS: receipt-ids. ARGV: base, maxScan, includeStale (1/0). Reads
 * each listed instance's own receipt key; ids whose key has expired (or never existed) are removed
 * from the index. Examines at most maxScan ids per call, so a flood of bogus ids costs bounded work
 * (and is pruned as it is met). A receipt is live until its liveUntil; one in the former two-field
 * layout (`<seq>:<reportedAt>`, kept only for its ttl) is live while its key exists.
 * Returns {id, seq, reportedAt, live (1/0), ...}: live ones only unless includeStale.
 */
const LIST_APPLIED = (p: FeedPublishCommand) => `${prelude(p)}
local K_RECEIPT = base .. '${KeySegments.receipt}'
local max_scan = tonumber(ARGV[2])
local include_stale = ARGV[3] == '1'
local now = now_ms()
local out = {}
local cursor, seen = '0', 0
repeat
  local page = redis.call('SSCAN', KEYS[1], cursor, 'COUNT', 500)
  cursor = page[1]
  for _, id in ipairs(page[2]) do
    seen = seen + 1
    local v = redis.call('GET', K_RECEIPT .. id)
    if v == false then
      redis.call('SREM', KEYS[1], id)
    else
      local seq, reported, live_until = string.match(v, '^(%d+):(%d+):(%d+)$')
      local live = seq ~= nil and now <= tonumber(live_until)
      if seq == nil then
        seq, reported = string.match(v, '^(%d+):(%d+)$')
        live = seq ~= nil
      end
      if seq and (live or include_stale) then
        out[#out + 1] = id; out[#out + 1] = seq; out[#out + 1] = reported; out[#out + 1] = live and 1 or 0
      end
    end
  end
until cursor == '0' or seen >= max_scan
return out
`;

/** Every script of RedisTokenStore, by name, for one way of publishing. */
export interface RedisScripts {
  readonly CREATE_SESSION: string;
  readonly ROTATE_REFRESH: string;
  readonly LOAD_REFRESH: string;
  readonly GET_SESSION: string;
  readonly FIND_SESSION_BY_REFRESH: string;
  readonly REVOKE: string;
  readonly RESTORE: string;
  readonly READ_LOG: string;
  readonly HEARTBEAT: string;
  readonly RECORD_ACCESS_TTL: string;
  readonly REPORT_APPLIED: string;
  readonly LIST_APPLIED: string;
}

function build(publish: FeedPublishCommand): RedisScripts {
  return Object.freeze({
    CREATE_SESSION: CREATE_SESSION(publish),
    ROTATE_REFRESH: ROTATE_REFRESH(publish),
    LOAD_REFRESH: LOAD_REFRESH(publish),
    GET_SESSION: GET_SESSION(publish),
    FIND_SESSION_BY_REFRESH: FIND_SESSION_BY_REFRESH(publish),
    REVOKE: REVOKE(publish),
    RESTORE: RESTORE(publish),
    READ_LOG: READ_LOG(publish),
    HEARTBEAT: HEARTBEAT(publish),
    RECORD_ACCESS_TTL: RECORD_ACCESS_TTL(publish),
    REPORT_APPLIED: REPORT_APPLIED(publish),
    LIST_APPLIED: LIST_APPLIED(publish),
  });
}

const PLAIN = build('PUBLISH');
const SHARDED = build('SPUBLISH');

/**
 * The scripts for a deployment: `sharded` (a Cluster) publishes with SPUBLISH, which Redis allows
 * inside a script because the feed channel hashes to the script's slot.
 */
export function redisScripts(sharded: boolean): RedisScripts {
  return sharded ? SHARDED : PLAIN;
}
