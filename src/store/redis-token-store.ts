import { createHash } from 'node:crypto';
import { Cluster, type RedisOptions } from 'ioredis';
import { ErrorCodes, TokenAuthorityError, storeUnavailable } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { parseFeedMessage, parseFeedMessageBytes, type RevocationEvent } from '../shared/revocation-event.js';
import type { FeedListener, FeedSubscription, RevocationLogPage } from '../verifier/revocation-source.js';
import {
  createRedisClient,
  createSubscriber,
  isClusterTarget,
  parseRedisUrl,
  type RedisClient,
  type RedisConnectionOptions,
  type RedisTarget,
} from './redis-connection.js';
import { RedisFeedSubscription } from './redis-feed-subscription.js';
import { DEFAULT_KEY_PREFIX, redisKeys, type RedisKeys } from './redis-keys.js';
import { redisScripts } from './redis-scripts.js';
import {
  checkCreateSession,
  checkReadLog,
  checkAccessTtl,
  checkReceipt,
  checkRestore,
  checkRevoke,
  checkRotate,
  conflictError,
  positiveIntOption,
} from './store-input.js';
import type {
  CreateSessionInput,
  RefreshSnapshot,
  RestoreRevocationInput,
  RevokeInput,
  RotateRefreshInput,
  RotateResult,
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
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 1000;
export const DEFAULT_WAIT_TIMEOUT_MS = 500;

/** `auto` → 1 replica on Sentinel and Cluster (they have replicas to fail over to), 0 on one server. */
export function replicasToWaitFor(setting: number | 'auto' | undefined, target: RedisTarget): number {
  if (typeof setting === 'number') return setting;
  const topology = 'topology' in target && 'nodes' in target ? target.topology : 'sentinels' in target && target.sentinels ? 'sentinel' : 'standalone';
  return topology === 'standalone' ? 0 : 1;
}

/** Reconnect backoff: 50 ms doubling to 1 s, forever — Redis coming back must be noticed quickly. */
export function reconnectDelayMs(attempt: number): number {
  return Math.min(50 * 2 ** Math.max(0, attempt - 1), 1000);
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
  taReadLog: ScriptFn;
  /** taReadLog with its bulk replies as Buffers (ioredis defines both). */
  taReadLogBuffer: ScriptFn;
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
 * Failure behaviour: the command connection never queues. While Redis is down every call rejects
 * with ERR_STORE_UNAVAILABLE at once (or within `commandTimeoutMs` if a connection attempt or a
 * command is in flight), and the client keeps reconnecting in the background so calls succeed
 * again as soon as Redis is back. Unanswered commands are never re-sent after a reconnect: a
 * rotation that was executed but whose reply was lost would otherwise come back as reuse.
 */
/** Receipt ids listApplied examines per call (far more than any fleet; bounds a flood of bogus ids). */
const MAX_RECEIPT_IDS_SCANNED = 10_000;

export class RedisTokenStore implements TokenStore {
  private readonly redis: RedisClient;
  private readonly scripts: ScriptCommands;
  private readonly keys: RedisKeys;
  private retentionMs: number;
  private readonly configuredRetentionMs: number;
  private readonly commandTimeoutMs: number;
  private readonly logger: Logger;
  private readonly target: RedisTarget;
  private readonly subscriptions = new Set<RedisFeedSubscription>();
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
  private closed = false;
  private down = false;
  private dropped = 0;
  private readonly onCommandError: ((op: string) => void) | undefined;

  constructor(options: RedisTokenStoreOptions) {
    this.retentionMs = positiveIntOption('retentionMs', options.retentionMs);
    this.configuredRetentionMs = this.retentionMs;
    this.commandTimeoutMs = positiveIntOption(
      'commandTimeoutMs',
      options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    );
    this.keys = redisKeys(options.keyPrefix ?? DEFAULT_KEY_PREFIX);
    this.onCommandError = options.onCommandError;
    this.logger = (options.logger ?? silentLogger).child({ component: 'redis-token-store' });
    if (typeof options.url === 'string') {
      this.target = parseRedisUrl(options.url);
    } else if (typeof options.url === 'object' && options.url !== null) {
      // ioredis would prefix declared KEYS but not the keys the scripts derive: split state.
      if (options.url.keyPrefix) {
        throw new TokenAuthorityError(ErrorCodes.CONFIG, 'set keyPrefix on the store options, not in the ioredis options');
      }
      this.target = { ...options.url };
    } else {
      throw new TokenAuthorityError(ErrorCodes.CONFIG, 'url must be a redis:// URL or ioredis options');
    }

    this.redis = this.connect({
      commandTimeout: this.commandTimeoutMs,
      // Fail instead of queueing while disconnected, and reject in-flight commands on every
      // disconnect (0 retries): a caller must learn now that its write may not have happened.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      connectionName: 'token-authority',
    });
    this.redis.on('error', (err: Error) => {
      if (!this.down) this.logger.warn({ err: err.message }, 'Redis connection error; reconnecting');
      this.down = true;
    });
    this.redis.on('ready', () => {
      if (this.down) this.logger.info('Redis connection restored');
      this.down = false;
    });
    const lua = redisScripts(isClusterTarget(this.target));
    const commands = [
      ['taCreateSession', lua.CREATE_SESSION, 3, false],
      ['taRotateRefresh', lua.ROTATE_REFRESH, 2, false],
      ['taLoadRefresh', lua.LOAD_REFRESH, 1, true],
      ['taGetSession', lua.GET_SESSION, 1, true],
      ['taFindSessionByRefresh', lua.FIND_SESSION_BY_REFRESH, 1, true],
      ['taRevoke', lua.REVOKE, 3, false],
      ['taRestore', lua.RESTORE, 2, false],
      ['taReadLog', lua.READ_LOG, 2, true],
      ['taHeartbeat', lua.HEARTBEAT, 3, false],
      ['taRecordAccessTtl', lua.RECORD_ACCESS_TTL, 1, false],
      ['taReportApplied', lua.REPORT_APPLIED, 1, false],
      ['taListApplied', lua.LIST_APPLIED, 1, false],
    ] as const;
    for (const [name, script, numberOfKeys, readOnly] of commands) {
      this.redis.defineCommand(name, { lua: script, numberOfKeys, readOnly });
    }
    this.scripts = this.redis as unknown as ScriptCommands;

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
    return this.redis.status === 'ready';
  }

  /** Feed messages that were not valid v1 messages and were dropped (a version skew signal). */
  get droppedFeedMessages(): number {
    return this.dropped;
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

  async readLog(afterSeq: number, limit: number): Promise<RevocationLogPage> {
    checkReadLog(afterSeq, limit);
    // Entries as bytes, parsed by parseFeedMessageBytes (no string or JSON object per entry on
    // the usual path), with the same answers as parsing their text. (A plain XRANGE would spare
    // Redis the script's conversion of the entries into Lua tables, ~6× its own XRANGE time, but
    // ioredis decodes its seven reply elements per entry at ~5× the Node time of this one.)
    const [head, raw] = (await this.run('readLog', () =>
      this.scripts.taReadLogBuffer(this.keys.log, this.keys.seq, this.keys.base, afterSeq, limit),
    )) as [number | Buffer, Buffer[]];
    const events = new Array<RevocationEvent>(raw.length);
    for (let i = 0; i < raw.length; i++) events[i] = toEvent(raw[i]);
    return { events, headSeq: Number(Buffer.isBuffer(head) ? head.toString() : head) };
  }

  async subscribe(listener: FeedListener): Promise<FeedSubscription> {
    if (this.closed) throw storeUnavailable('the token store is closed');
    const { conn, sharded } = createSubscriber(
      this.target,
      this.connectionOptions({
        lazyConnect: true,
        autoResubscribe: false,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        autoResendUnfulfilledCommands: false,
        commandTimeout: this.commandTimeoutMs,
        connectionName: 'token-authority-feed',
      }),
      { channel: this.keys.feed, commandClient: this.redis },
    );
    const subscription = new RedisFeedSubscription(conn, this.keys.feed, listener, this.logger, () => {
      this.dropped += 1;
      if (this.dropped === 1 || this.dropped % 100 === 0) {
        this.logger.warn({ dropped: this.dropped }, 'dropped feed messages that are not valid v1 messages');
      }
    }, sharded);
    const tracked: FeedSubscription = {
      close: async () => {
        this.subscriptions.delete(subscription);
        await subscription.close();
      },
    };
    this.subscriptions.add(subscription);
    // The first attempt's failure is not final: the retry strategy keeps reconnecting.
    conn.connect().catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.commandTimeoutMs);
    });
    const first = await Promise.race([subscription.ready.then(() => 'ready' as const), timedOut]);
    clearTimeout(timer);
    if (first === 'timeout') {
      await tracked.close();
      throw storeUnavailable(`Redis subscribe failed: no subscription within ${this.commandTimeoutMs} ms`);
    }
    return tracked;
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
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    this.subscriptions.clear();
    try {
      await this.redis.quit();
    } catch {
      // Not connected: disconnect below is all there is to do.
    }
    // Also after quit: with Sentinel, ioredis keeps its failover-detector connections to the
    // sentinels open (and reconnecting) until disconnect() is called.
    this.redis.disconnect();
    if (this.durableRedis) {
      await this.durableRedis.quit().catch(() => undefined);
      this.durableRedis.disconnect();
    }
  }

  private connectionOptions(overrides: RedisConnectionOptions): RedisConnectionOptions {
    // Raw ioredis options may set their own connect timeout; everything else here is the contract.
    const own = 'topology' in this.target ? undefined : this.target.connectTimeout;
    return {
      connectTimeout: own ?? Math.max(2 * this.commandTimeoutMs, 1000),
      retryStrategy: reconnectDelayMs,
      ...overrides,
    };
  }

  private connect(overrides: RedisConnectionOptions): RedisClient {
    return createRedisClient(this.target, this.connectionOptions(overrides));
  }

  /**
   * Runs one command with the failure contract: waits for a connection attempt under way (bounded
   * by the command timeout), fails at once when Redis is known to be down, and turns every client
   * error into ERR_STORE_UNAVAILABLE. Messages carry the operation and the client's reason only —
   * never arguments, which include token hashes.
   */
  private async run<T>(op: string, command: () => Promise<T>): Promise<T> {
    if (this.closed) throw storeUnavailable('the token store is closed');
    try {
      await this.whenConnected(op);
    } catch (err) {
      this.onCommandError?.(op);
      throw err;
    }
    try {
      return await command();
    } catch (err) {
      this.onCommandError?.(op);
      if (err instanceof TokenAuthorityError) throw err;
      const reason = err instanceof Error ? err.message : String(err);
      // A fresh cause: ioredis errors carry the command's arguments.
      // A write whose reply did not come may still have run: say so (see replicated()).
      const unknown = op === 'revoke' || op === 'rotateRefresh' ? `; the write may or may not have applied, ${retryAdvice(op)}` : '';
      throw storeUnavailable(`Redis ${op} failed: ${reason}${unknown}`, new Error(reason));
    }
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
    if (this.closed) throw storeUnavailable('the token store is closed');
    // Opened on first use: a sidecar or a library verifier never writes, and never opens it.
    const redis = (this.durableRedis ??= this.connect({
      commandTimeout: this.commandTimeoutMs,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      connectionName: 'token-authority-durable',
    }));
    if (redis.listenerCount('error') === 0) {
      redis.on('error', () => {
        // The command connection's handler reports Redis being down; each write here fails with UNAVAILABLE.
      });
    }
    await this.whenConnected(name, redis);
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

  private async whenConnected(op: string, redis: RedisClient = this.redis): Promise<void> {
    const status = redis.status;
    if (status === 'ready') return;
    if (status !== 'connecting' && status !== 'connect' && status !== 'wait') {
      throw storeUnavailable(`Redis ${op} failed: Redis is unreachable (${status})`);
    }
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        redis.off('ready', onReady);
        redis.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onReady = () => done();
      const onClose = () => done(storeUnavailable(`Redis ${op} failed: connection refused or closed`));
      const timer = setTimeout(
        () => done(storeUnavailable(`Redis ${op} failed: not connected within ${this.commandTimeoutMs} ms`)),
        this.commandTimeoutMs,
      );
      redis.on('ready', onReady);
      redis.on('close', onClose);
    });
  }
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
    generation,
    createdAt: Number(h.createdAt),
    absoluteExpiresAt: Number(h.absExp),
    lastUsedAt: Number(h.lastUsedAt),
    revoked: h.revoked === '1' || generation < currentGeneration,
  };
}

function toEvent(json: unknown): RevocationEvent {
  const message = typeof json === 'string' ? parseFeedMessage(json) : Buffer.isBuffer(json) ? parseFeedMessageBytes(json) : undefined;
  if (!message || message.type !== 'rev') {
    // Written only by this store's scripts; anything else is a newer writer or corruption. Never
    // skip it: a verifier must not advance past a sequence it could not apply.
    throw new TokenAuthorityError(ErrorCodes.INTERNAL, 'the revocation log holds an entry this version cannot read');
  }
  return message;
}
