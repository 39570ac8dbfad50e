import type { RedisOptions } from 'ioredis';
import { ErrorCodes, TokenAuthorityError, storeUnavailable } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import type { RevocationEvent } from '../shared/revocation-event.js';
import type { FeedListener, FeedSubscription, RevocationLogPage } from '../verifier/revocation-source.js';
import { DEFAULT_COMMAND_TIMEOUT_MS, RedisCommandClient, redisTargetOf } from './redis-client.js';
import { isClusterTarget, type RedisClient, type RedisTarget } from './redis-connection.js';
import type { CommandTracer } from './command-tracer.js';
import { DEFAULT_KEY_PREFIX, redisKeys, type RedisKeys, redisScripts } from './redis-schema.js';
import { DEFAULT_WAIT_TIMEOUT_MS, RedisDurableWrites, RedisRevocationLog, replicasToWaitFor, retryAdvice, type ScriptFn, type WriteScript } from './redis-revocation-log.js';
import { RedisRevocationFeed, toRevocationEvent as toEvent } from './redis-revocation-feed.js';
import {
  checkCreateSession,
  checkReceipt,
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
  /** Prefix of every key; a `{ta}` hash tag is appended (see redis-schema.ts). Default `ta:v1:`. */
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
 * multi-key operation is one Lua script (redis-schema.ts); the live feed is pub/sub on a dedicated
 * connection per subscription — sharded pub/sub (SPUBLISH/SSUBSCRIBE) on a Cluster.
 *
 * Failure behaviour: the contract of redis-client.ts (no queue, no retries or re-sends, deadlines,
 * ERR_STORE_UNAVAILABLE, reconnecting in the background). A facade over the parts of the log
 * and feed: they are written by redis-revocation-log.ts (revoke, restore, heartbeat, retention) and
 * read through redis-revocation-feed.ts, which also holds the library's read-only source; writes
 * that must not be lost wait for replicas (RedisDurableWrites, redis-revocation-log.ts).
 */
/** Receipt ids listApplied examines per call (far more than any fleet; bounds a flood of bogus ids). */
const MAX_RECEIPT_IDS_SCANNED = 10_000;

export class RedisTokenStore implements TokenStore {
  private readonly conn: RedisCommandClient;
  private readonly redis: RedisClient;
  private readonly feed: RedisRevocationFeed;
  /** The write side of the log and feed: revoke, restore, heartbeat, retention (redis-revocation-log.ts). */
  private readonly log: RedisRevocationLog;
  private readonly scripts: ScriptCommands;
  private readonly rotateScript: WriteScript;
  private readonly durable: RedisDurableWrites;
  private readonly keys: RedisKeys;
  private readonly commandTimeoutMs: number;
  private readonly logger: Logger;
  private readonly target: RedisTarget;
  /** The replica wait of durable writes (replicas 0 = none; RedisDurableWrites in redis-revocation-log.ts). */
  readonly wait: { replicas: number; timeoutMs: number; aof: boolean };
  private readonly traceCommand: CommandTracer | undefined;

  constructor(options: RedisTokenStoreOptions) {
    const retentionMs = positiveIntOption('retentionMs', options.retentionMs);
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
    const script = (name: keyof ScriptCommands): WriteScript => {
      const [, lua, numberOfKeys] = commands.find((c) => c[0] === name)!;
      return { command: (...args) => this.scripts[name](...args), lua, numberOfKeys };
    };
    // The call sites say which writes are durable (revoke, restore, rotateRefresh with its reuse detection).
    this.durable = new RedisDurableWrites(this.conn, this.wait);
    this.rotateScript = script('taRotateRefresh');
    this.log = new RedisRevocationLog(
      this.keys,
      (op, command) => this.run(op, command),
      { revoke: script('taRevoke'), restore: script('taRestore'), heartbeat: script('taHeartbeat'), recordAccessTtl: script('taRecordAccessTtl') },
      this.durable,
      retentionMs,
    );
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
      this.durable.write('taRotateRefresh', this.rotateScript, [
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
        this.log.retentionMs,
        fp,
        proven ? '1' : '0',
        successorProof,
        parentProof,
      ]),
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

  revoke(input: RevokeInput): Promise<RevocationEvent> {
    return this.log.revoke(input);
  }

  restoreRevocations(entries: readonly RestoreRevocationInput[]): Promise<RevocationEvent[]> {
    return this.log.restoreRevocations(entries);
  }

  readLog(afterSeq: number, limit: number): Promise<RevocationLogPage> {
    return this.feed.readLog(afterSeq, limit);
  }

  subscribe(listener: FeedListener): Promise<FeedSubscription> {
    return this.feed.subscribe(listener);
  }

  heartbeat(): Promise<{ headSeq: number; trimmed: number }> {
    return this.log.heartbeat();
  }

  recordAccessTtl(input: { ttlMs: number; horizonMs: number; slackMs: number }): Promise<number> {
    return this.log.recordAccessTtl(input);
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
}

/** Rounds of load + compare-and-set before giving up (only concurrent rotations of one token race). */
const MAX_ROTATE_ATTEMPTS = 16;

function toMap(flat: string[]): Record<string, string> {
  const h: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!;
  return h;
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
