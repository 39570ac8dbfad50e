import { createHash } from 'node:crypto';
import { Cluster, type RedisOptions } from 'ioredis';
import { ErrorCodes, TokenAuthorityError, storeUnavailable } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import type { RevocationEvent } from '../shared/revocation-event.js';
import type { FeedListener, FeedSubscription, RevocationLogPage } from '../verifier/revocation-source.js';
import { DEFAULT_COMMAND_TIMEOUT_MS, RedisCommandClient, redisTargetOf } from './redis-client.js';
import { isClusterTarget, type RedisClient, type RedisTarget } from './redis-connection.js';
import type { CommandTracer } from './command-tracer.js';
import { DEFAULT_KEY_PREFIX, redisKeys, type RedisKeys } from './redis-keys.js';
import { RedisRevocationFeed, toRevocationEvent as toEvent } from './redis-revocation-feed.js';
import { redisScripts } from './redis-scripts.js';
import {
  checkCreateSession,
  checkAccessTtl,
  checkReceipt,
  checkRestore,
  checkRevoke,
  checkRotate,
  conflictError,
  positiveIntOption,
  storedConstraints,
} from './store-input.js';
import type {
  CreateSessionInput,
  RefreshSnapshot,
  RestoreRevocationInput,
  RevokeInput,
  RotateRefreshInput,
  RotateResult,
  SessionConstraints,
  SessionRecord,
  TokenStore,
} from './token-store.js';

/** Options of {@link RedisTokenStore}. */
export interface RedisTokenStoreOptions {
  /**
   * A Redis URL — `redis://`, `rediss://`, `redis-sentinel://…/<master>`, `redis-cluster://…`
   * (see redis-connection.ts) — or ioredis options for a single server or Sentinel.
   */
  url: string | RedisOptions;
  /** Prefix of every key; a `{ta}` hash tag is appended (see redis-keys.ts). Default `ta:v1:`. */
  keyPrefix?: string;
  /** A command that gets no answer within this fails with ERR_STORE_UNAVAILABLE. Default 1000. */
  commandTimeoutMs?: number;
  /** Log retention by entry age: the maximum access-token TTL plus clock skew. */
  retentionMs: number;
  /**
   * Replicas that must confirm every write that must not be lost (revocations, refresh rotations
   * with their reuse detection) before it is acknowledged: Redis WAIT (WAITAOF with `waitAof`) on
   * the same connection, right after the script. `auto` (default): 1 on Sentinel and Cluster, 0
   * on one server (see {@link replicasToWaitFor}). 0 = no wait.
   */
  waitReplicas?: number | 'auto';
  /** How long a write waits for them; must be below `commandTimeoutMs`. Default 500, or half `commandTimeoutMs` if less. */
  waitTimeoutMs?: number;
  /** WAITAOF (Redis ≥ 7.2): the replicas must have fsynced the write to their AOF. */
  waitAof?: boolean;
  logger?: Logger;
  /** Called once per command that fails (Redis unreachable, timed out, or an error reply): a metric. */
  onCommandError?: (op: string) => void;
  /** Wraps every operation (tracing: a child span of the current request; see command-tracer.ts). */
  traceCommand?: CommandTracer;
}

export const DEFAULT_WAIT_TIMEOUT_MS = 500;

/** `auto` → 1 replica on Sentinel and Cluster (they have replicas to fail over to), 0 on one server. */
export function replicasToWaitFor(setting: number | 'auto' | undefined, target: RedisTarget): number {
  if (typeof setting === 'number') return setting;
  const topology = 'topology' in target && 'nodes' in target ? target.topology : 'sentinels' in target && target.sentinels ? 'sentinel' : 'standalone';
  return topology === 'standalone' ? 0 : 1;
}

type Reply = unknown;
type ScriptFn = (...args: Array<string | number>) => Promise<Reply>;
interface ScriptCommands {
  taCreateSession: ScriptFn;
  taRotateRefresh: ScriptFn;
  taLoadRefresh: ScriptFn;
  taGetSession: ScriptFn;
  taFindSessionByRefresh: ScriptFn;
  taRevoke: ScriptFn;
  taRestore: ScriptFn;
  taHeartbeat: ScriptFn;
  taRecordAccessTtl: ScriptFn;
  taReportApplied: ScriptFn;
  taListApplied: ScriptFn;
}

/**
 * TokenStore on Redis (standalone, Sentinel, or one Cluster shard via the `{ta}` hash tag). Every
 * multi-key operation is one Lua script (redis-scripts.ts); the live feed is pub/sub on a dedicated
 * connection per subscription — sharded pub/sub (SPUBLISH/SSUBSCRIBE) on a Cluster.
 *
 * Failure behaviour: the contract of redis-client.ts (no queue, no retries or re-sends, deadlines,
 * ERR_STORE_UNAVAILABLE, reconnecting in the background). The log and the feed are read through
 * redis-revocation-feed.ts, which also holds the library's read-only source.
 */
/** Receipt ids listApplied examines per call (far more than any fleet; bounds a flood of bogus ids). */
const MAX_RECEIPT_IDS_SCANNED = 10_000;

export class RedisTokenStore implements TokenStore {
  private readonly conn: RedisCommandClient;
  private readonly redis: RedisClient;
  private readonly feed: RedisRevocationFeed;
  private readonly scripts: ScriptCommands;
  private readonly keys: RedisKeys;
  private retentionMs: number;
  private readonly configuredRetentionMs: number;
  private readonly commandTimeoutMs: number;
  private readonly logger: Logger;
  private readonly target: RedisTarget;
  /** The write scripts, each acknowledged only once `wait.replicas` replicas hold it. */
  private readonly durable: ScriptCommands;
  /**
   * The connection of durable writes when they wait for replicas: WAIT blocks its connection until
   * the replicas answer (or its timeout), so on the shared one it would hold up every other
   * command — Issue, reads, heartbeats — behind it.
   */
  private durableRedis: RedisClient | undefined;
  /** The replica wait of durable writes (replicas 0 = none). */
  readonly wait: { replicas: number; timeoutMs: number; aof: boolean };
  private readonly traceCommand: CommandTracer | undefined;

  constructor(options: RedisTokenStoreOptions) {
    this.retentionMs = positiveIntOption('retentionMs', options.retentionMs);
    this.configuredRetentionMs = this.retentionMs;
    this.commandTimeoutMs = positiveIntOption(
      'commandTimeoutMs',
      options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    );
    this.keys = redisKeys(options.keyPrefix ?? DEFAULT_KEY_PREFIX);
    this.traceCommand = options.traceCommand;
    this.logger = (options.logger ?? silentLogger).child({ component: 'redis-token-store' });
    this.target = redisTargetOf(options.url);
    // Every option is checked before a connection is opened, so a refused store leaves none behind.
    this.wait = {
      replicas: replicasToWaitFor(options.waitReplicas, this.target),
      timeoutMs: positiveIntOption('waitTimeoutMs', options.waitTimeoutMs ?? Math.max(1, Math.min(DEFAULT_WAIT_TIMEOUT_MS, Math.floor(this.commandTimeoutMs / 2)))),
      aof: options.waitAof ?? false,
    };
    if (!Number.isInteger(this.wait.replicas) || this.wait.replicas < 0) {
      throw new TokenAuthorityError(ErrorCodes.CONFIG, 'waitReplicas must be "auto" or an integer ≥ 0');
    }
    if (this.wait.replicas > 0 && this.wait.timeoutMs >= this.commandTimeoutMs) {
      throw new TokenAuthorityError(ErrorCodes.CONFIG, 'waitTimeoutMs must be below commandTimeoutMs');
    }
    this.conn = new RedisCommandClient(this.target, {
      commandTimeoutMs: this.commandTimeoutMs,
      connectionName: 'token-authority',
      label: 'Redis',
      closedMessage: 'the token store is closed',
      logger: this.logger,
      ...(options.onCommandError ? { onCommandError: options.onCommandError } : {}),
    });
    this.redis = this.conn.client;
    this.feed = new RedisRevocationFeed(this.conn, this.keys, this.logger);
    const lua = redisScripts(isClusterTarget(this.target));
    const commands = [
      ['taCreateSession', lua.CREATE_SESSION, 3, false],
      ['taRotateRefresh', lua.ROTATE_REFRESH, 2, false],
      ['taLoadRefresh', lua.LOAD_REFRESH, 1, true],
      ['taGetSession', lua.GET_SESSION, 1, true],
      ['taFindSessionByRefresh', lua.FIND_SESSION_BY_REFRESH, 1, true],
      ['taRevoke', lua.REVOKE, 3, false],
      ['taRestore', lua.RESTORE, 2, false],
      ['taHeartbeat', lua.HEARTBEAT, 3, false],
      ['taRecordAccessTtl', lua.RECORD_ACCESS_TTL, 1, false],
      ['taReportApplied', lua.REPORT_APPLIED, 1, false],
      ['taListApplied', lua.LIST_APPLIED, 1, false],
    ] as const;
    for (const [name, script, numberOfKeys, readOnly] of commands) {
      this.redis.defineCommand(name, { lua: script, numberOfKeys, readOnly });
    }
    this.scripts = this.redis as unknown as ScriptCommands;

    // Every write script can be run durably; the call sites say which writes must be (revoke,
    // rotateRefresh with its reuse detection).
    const durable: Partial<Record<keyof ScriptCommands, ScriptFn>> = {};
    for (const [name, script, numberOfKeys, readOnly] of commands) {
      if (readOnly) continue;
      durable[name] =
        this.wait.replicas === 0
          ? (...args) => this.scripts[name](...args)
          : (...args) => this.replicated(name, script, numberOfKeys, args);
    }
    this.durable = { ...this.scripts, ...durable } as ScriptCommands;
  }

  /** True while the command connection is up (a metric: Redis reachable from this process). */
  get connected(): boolean {
    return this.conn.connected;
  }

  /** Feed messages that were not valid v1 messages and were dropped (a version skew signal). */
  get droppedFeedMessages(): number {
    return this.feed.droppedFeedMessages;
  }

  async createSession(input: CreateSessionInput): Promise<{ generation: number }> {
    checkCreateSession(input);
    const k = this.keys;
    const reply = (await this.run('createSession', () =>
      this.scripts.taCreateSession(
        k.generation(input.subject),
        k.session(input.sessionId),
        k.refresh(input.refreshHash),
        k.base,
        input.sessionId,
        input.subject,
        JSON.stringify(input.audience),
        JSON.stringify(input.scopes),
        JSON.stringify(input.extra),
        input.refreshExpiresAt,
        input.absoluteExpiresAt,
        input.now,
        input.refreshHash,
        input.refreshProof,
        storedConstraints(input.constraints) ?? '',
        input.seal ?? '',
      ),
    )) as [string, number | string];
    if (reply[0] === 'conflict') throw conflictError(String(reply[1]));
    return { generation: Number(reply[1]) };
  }

  async rotateRefresh(input: RotateRefreshInput): Promise<RotateResult> {
    checkRotate(input);
    // Read, let the authority check, write only if nothing changed since; a concurrent change
    // (another rotation of the same token) means: read and check again.
    for (let attempt = 0; attempt < MAX_ROTATE_ATTEMPTS; attempt++) {
      const result = await this.rotateOnce(input);
      if (result !== 'stale') return result;
    }
    throw storeUnavailable(`Redis rotateRefresh failed: the token's records kept changing (${MAX_ROTATE_ATTEMPTS} attempts)`);
  }

  async loadRefresh(refreshHash: string): Promise<RefreshSnapshot | undefined> {
    return (await this.load('loadRefresh', refreshHash))?.snapshot;
  }

  /** The record, session and generation of a key, with the fingerprint ROTATE_REFRESH compares. */
  private async load(op: string, refreshHash: string): Promise<{ snapshot: RefreshSnapshot; fingerprint: string } | undefined> {
    const k = this.keys;
    const loaded = (await this.run(op, () => this.scripts.taLoadRefresh(k.refresh(refreshHash), k.base))) as [string[], string[], string, string] | [];
    if (loaded.length === 0) return undefined;
    const [recFlat, sessFlat, gen, fingerprint] = loaded;
    const rec = toMap(recFlat);
    const currentGeneration = Number(gen);
    const sess = toMap(sessFlat);
    const snapshot: RefreshSnapshot = {
      key: refreshHash,
      sessionId: rec.sid ?? '',
      state: rec.state === 'live' ? 'live' : 'spent',
      expiresAt: Number(rec.exp),
      issuedAt: Number(rec.iat ?? 0),
      ...(rec.succ !== undefined ? { successor: rec.succ } : {}),
      ...(rec.spentAt !== undefined ? { spentAt: Number(rec.spentAt) } : {}),
      ...(rec.proof !== undefined ? { proof: rec.proof } : {}),
      session: toSession(sessFlat, currentGeneration),
      current: sess.current ?? '',
      currentGeneration,
    };
    return { snapshot, fingerprint };
  }

  private async rotateOnce(input: RotateRefreshInput): Promise<RotateResult | 'stale'> {
    const k = this.keys;
    const loaded = await this.load('rotateRefresh', input.presentedHash);
    if (!loaded) return { outcome: 'invalid' };
    const { snapshot, fingerprint: fp } = loaded;
    const { proven } = input.checks.check(snapshot);
    const spentAt = snapshot.state === 'live' ? input.now : (snapshot.spentAt ?? 0);
    const successorProof = input.checks.liveProof(input.successorHash, snapshot.sessionId, input.successorExpiresAt, input.now);
    const parentProof = input.checks.graceProof(input.presentedHash, snapshot.sessionId, input.successorHash, spentAt);
    const reply = (await this.run('rotateRefresh', () =>
      this.durable.taRotateRefresh(
        k.refresh(input.presentedHash),
        k.refresh(input.successorHash),
        k.base,
        input.presentedHash,
        input.successorHash,
        input.successorExpiresAt,
        input.now,
        input.graceMs,
        input.idleTimeoutMs,
        input.revocationUntil,
        this.retentionMs,
        fp,
        proven ? '1' : '0',
        successorProof,
        parentProof,
      ),
    )) as [string, string[]?, string?, string?, string?];
    const [outcome, fields, replyGen, viaGrace, eventJson] = reply;
    if (outcome === 'stale') return 'stale';
    if (outcome === 'invalid') return { outcome: 'invalid', ...(String(fields) === 'unproven' ? { unproven: true } : {}) };
    if (outcome === 'conflict') throw conflictError(String(fields));
    const generation = Number(replyGen);
    const session = toSession(fields ?? [], generation);
    switch (outcome) {
      case 'rotated':
        return { outcome, session, generation, viaGrace: viaGrace === '1' };
      case 'expired':
      case 'revoked':
        return { outcome, session };
      case 'reused':
        return { outcome, session, event: toEvent(eventJson) };
      default:
        throw new TokenAuthorityError(ErrorCodes.INTERNAL, 'unexpected rotateRefresh reply from Redis');
    }
  }

  async findSessionByRefresh(refreshHash: string): Promise<SessionRecord | undefined> {
    const reply = (await this.run('findSessionByRefresh', () =>
      this.scripts.taFindSessionByRefresh(this.keys.refresh(refreshHash), this.keys.base),
    )) as [string[], string] | [];
    return reply.length === 0 ? undefined : toSession(reply[0], Number(reply[1]));
  }

  async getSession(sessionId: string): Promise<SessionRecord | undefined> {
    const reply = (await this.run('getSession', () =>
      this.scripts.taGetSession(this.keys.session(sessionId), this.keys.base),
    )) as [string[], string] | [];
    return reply.length === 0 ? undefined : toSession(reply[0], Number(reply[1]));
  }

  async revoke(input: RevokeInput): Promise<RevocationEvent> {
    checkRevoke(input);
    const k = this.keys;
    const target =
      input.kind === 'jti' ? k.revokedJti(input.id) : input.kind === 'sid' ? k.revokedSid(input.id) : k.generation(input.id);
    const json = await this.run('revoke', () =>
      this.durable.taRevoke(
        k.seq,
        k.log,
        target,
        k.base,
        input.kind,
        input.id,
        input.until,
        input.reason ?? '',
        this.retentionMs,
      ),
    );
    return toEvent(json);
  }

  async restoreRevocations(entries: readonly RestoreRevocationInput[]): Promise<RevocationEvent[]> {
    checkRestore(entries);
    if (entries.length === 0) return [];
    const list = entries.map((e) => (e.kind === 'sub' ? [e.kind, e.id, e.until, e.gen as number] : [e.kind, e.id, e.until]));
    const raw = (await this.run('restoreRevocations', () =>
      this.durable.taRestore(this.keys.seq, this.keys.log, this.keys.base, this.retentionMs, JSON.stringify(list)),
    )) as string[];
    return raw.map(toEvent);
  }

  readLog(afterSeq: number, limit: number): Promise<RevocationLogPage> {
    return this.feed.readLog(afterSeq, limit);
  }

  subscribe(listener: FeedListener): Promise<FeedSubscription> {
    return this.feed.subscribe(listener);
  }

  async heartbeat(): Promise<{ headSeq: number; trimmed: number }> {
    const k = this.keys;
    const [head, trimmed] = (await this.run('heartbeat', () =>
      this.scripts.taHeartbeat(k.seq, k.log, k.receipts, k.base, this.retentionMs),
    )) as [number, number];
    return { headSeq: Number(head), trimmed: Number(trimmed) };
  }

  async recordAccessTtl(input: { ttlMs: number; horizonMs: number; slackMs: number }): Promise<number> {
    checkAccessTtl(input);
    const best = Number(
      await this.run('recordAccessTtl', () =>
        this.scripts.taRecordAccessTtl(this.keys.ttlHighWater, this.keys.base, input.ttlMs, input.horizonMs),
      ),
    );
    const highWater = Math.max(best, input.ttlMs);
    this.retentionMs = Math.max(this.configuredRetentionMs, highWater + input.slackMs);
    return highWater;
  }

  async reportApplied(instanceId: string, seq: number, ttlMs: number, retainMs?: number): Promise<void> {
    checkReceipt(instanceId, seq, ttlMs, retainMs);
    await this.run('reportApplied', () =>
      this.scripts.taReportApplied(this.keys.receipt(instanceId), this.keys.base, instanceId, seq, ttlMs, Math.max(ttlMs, retainMs ?? ttlMs)),
    );
  }

  async listApplied(): Promise<Array<{ instanceId: string; seq: number; reportedAt: number }>> {
    return (await this.readReceipts('listApplied', false)).map(({ instanceId, seq, reportedAt }) => ({ instanceId, seq, reportedAt }));
  }

  async listReceipts(): Promise<Array<{ instanceId: string; seq: number; reportedAt: number; live: boolean }>> {
    return this.readReceipts('listReceipts', true);
  }

  private async readReceipts(op: string, includeStale: boolean): Promise<Array<{ instanceId: string; seq: number; reportedAt: number; live: boolean }>> {
    const flat = (await this.run(op, () =>
      this.scripts.taListApplied(this.keys.receiptIds, this.keys.base, MAX_RECEIPT_IDS_SCANNED, includeStale ? 1 : 0),
    )) as string[];
    const out: Array<{ instanceId: string; seq: number; reportedAt: number; live: boolean }> = [];
    for (let i = 0; i + 3 < flat.length; i += 4) {
      out.push({ instanceId: flat[i]!, seq: Number(flat[i + 1]), reportedAt: Number(flat[i + 2]), live: Number(flat[i + 3]) === 1 });
    }
    return out;
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.run('ping', () => this.redis.ping())) === 'PONG';
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.conn.isClosed) return;
    await this.feed.closeSubscriptions();
    await this.conn.close();
  }

  /**
   * One command under the failure contract (redis-client.ts). A write whose reply did not come may
   * still have run: for the two that matter the message says so, and what a retry does (see replicated()).
   */
  private run<T>(op: string, command: () => Promise<T>): Promise<T> {
    const unknown = op === 'revoke' || op === 'rotateRefresh' ? `the write may or may not have applied, ${retryAdvice(op)}` : undefined;
    // The one tracing seam of the store: a child span per operation while tracing is on.
    return this.traceCommand ? this.traceCommand(op, () => this.conn.run(op, command, unknown)) : this.conn.run(op, command, unknown);
  }

  /**
   * One write script, then WAIT (or WAITAOF) for `wait.replicas` replicas, written together as one
   * pipeline: WAIT confirms the writes made earlier on ITS connection, so it must travel on the
   * connection that ran the script — on a Cluster, to the node that owns the `{ta}` slot (ioredis
   * routes a pipeline by the slot of its keys; WAIT has none and goes with the script).
   *
   * The script goes as a plain EVALSHA (then EVAL on NOSCRIPT) rather than through ioredis'
   * defineCommand, whose NOSCRIPT fallback would re-send the script after the WAIT had run. A
   * Cluster redirect (MOVED/ASK/TRYAGAIN/CLUSTERDOWN) means the script did not run: retried a few
   * times. Fewer replicas than asked → ERR_STORE_UNAVAILABLE saying the write may or may not have
   * applied: it did on this primary, and may be lost if that primary fails before a replica has it.
   */
  private async replicated(name: string, lua: string, numberOfKeys: number, args: Array<string | number>): Promise<Reply> {
    const { replicas, timeoutMs, aof } = this.wait;
    const sha = (this.shas[name] ??= createHash('sha1').update(lua).digest('hex'));
    // Opened on first use: a sidecar never makes a durable write, and never opens it.
    const redis = (this.durableRedis ??= this.conn.openConnection('token-authority-durable'));
    await this.conn.whenConnected(name, redis);
    let useEval = false;
    for (let attempt = 1; ; attempt++) {
      const p = redis.pipeline();
      p.call(useEval ? 'EVAL' : 'EVALSHA', useEval ? lua : sha, numberOfKeys, ...args);
      if (aof) p.call('WAITAOF', 0, replicas, timeoutMs);
      else p.call('WAIT', replicas, timeoutMs);
      const results = (await p.exec()) ?? [];
      const [writeErr, reply] = results[0] ?? [new Error('no reply')];
      const [waitErr, waited] = results[1] ?? [new Error('no reply')];
      if (writeErr) {
        const message = writeErr.message;
        if (!useEval && message.startsWith('NOSCRIPT')) {
          useEval = true;
          continue;
        }
        if (redis instanceof Cluster && /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN)\b/.test(message) && attempt < 4) {
          redis.refreshSlotsCache();
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        throw writeErr;
      }
      const confirmed = waitErr ? 0 : Number(aof ? (waited as [number, number])[1] : waited);
      if (confirmed < replicas) {
        const why = waitErr ? `${aof ? 'WAITAOF' : 'WAIT'} failed (${waitErr.message})` : `${confirmed} of ${replicas} replica${replicas === 1 ? '' : 's'} confirmed it within ${timeoutMs} ms`;
        const retry = retryAdvice(name === 'taRotateRefresh' ? 'rotateRefresh' : 'revoke');
        throw storeUnavailable(
          `Redis could not confirm the write on enough replicas: ${why}. The write may or may not have applied (it may be lost if the primary fails now); ${retry}`,
        );
      }
      return reply;
    }
  }

  private readonly shas: Record<string, string> = {};
}

/** Rounds of load + compare-and-set before giving up (only concurrent rotations of one token race). */
const MAX_ROTATE_ATTEMPTS = 16;

function toMap(flat: string[]): Record<string, string> {
  const h: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!;
  return h;
}

/** What a caller may do after a write of unknown outcome (docs/operations.md: "What an acknowledged revocation survives"). */
function retryAdvice(op: 'revoke' | 'rotateRefresh'): string {
  return op === 'rotateRefresh'
    ? 'and retrying with the same refresh token is safe within TA_REFRESH_GRACE (without a grace window a retry after an applied rotation counts as reuse)'
    : 'and retrying is safe (a revocation applied twice is the same revocation)';
}

const SESSION_FIELDS = ['sid', 'sub', 'aud', 'scopes', 'extra', 'gen', 'createdAt', 'absExp', 'lastUsedAt', 'revoked'];

/** A family hash (HGETALL, flat) → SessionRecord; `revoked` is the effective state. */
function toSession(flat: string[], currentGeneration: number): SessionRecord {
  const h: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!;
  for (const f of SESSION_FIELDS) {
    if (h[f] === undefined) throw new TokenAuthorityError(ErrorCodes.INTERNAL, `session record lacks field ${f}`);
  }
  const generation = Number(h.gen);
  return {
    sessionId: h.sid!,
    subject: h.sub!,
    audience: JSON.parse(h.aud!) as string[],
    scopes: JSON.parse(h.scopes!) as string[],
    extra: JSON.parse(h.extra!) as Record<string, string>,
    // Optional: absent on sessions without constraints and on those stored before these fields.
    ...(h.constraints !== undefined ? { constraints: JSON.parse(h.constraints) as SessionConstraints } : {}),
    ...(h.seal !== undefined ? { seal: h.seal } : {}),
    generation,
    createdAt: Number(h.createdAt),
    absoluteExpiresAt: Number(h.absExp),
    lastUsedAt: Number(h.lastUsedAt),
    revoked: h.revoked === '1' || generation < currentGeneration,
  };
}
