import { createHash } from 'node:crypto';
import { Cluster } from 'ioredis';
import { storeUnavailable } from '../shared/errors.js';
import type { RevocationEvent } from '../shared/revocation-event.js';
import type { RedisCommandClient } from './redis-client.js';
import type { RedisClient, RedisTarget } from './redis-connection.js';
import type { RedisKeys } from './redis-schema.js';
import { toRevocationEvent as toEvent } from './redis-revocation-feed.js';
import { checkAccessTtl, checkRestore, checkRevoke } from './store-input.js';
import type { AccessTtlRecord, FeedPublisher, RestoreRevocationInput, RevocationLog, RevocationRepair, RevokeInput } from './token-store.js';

/**
 * What must not be lost, written to Redis: the write side of the revocation log and feed, and the
 * durable write every such write goes through (at the end: acknowledged only once replicas hold
 * it; the refresh rotation's reuse detection, which revokes, uses it too).
 *
 * The log's writer records a revocation (effect, log entry and feed message in one atomic step),
 * appends again what a failover lost, sends the heartbeat with the log's trimming, and keeps the
 * log's retention (the access-TTL high-water mark sets it). Each
 * is one Lua script of redis-schema.ts — REVOKE, RESTORE, HEARTBEAT, RECORD_ACCESS_TTL — on the
 * shared prelude there, whose helpers (`append`, `revoke_session`, `drop_subject_proofs`) also
 * serve ROTATE_REFRESH's reuse detection. Revocations are durable writes (RedisDurableWrites, below).
 * The read side is redis-revocation-feed.ts; RedisTokenStore (redis-token-store.ts) composes this
 * with the session and refresh storage and defines the scripts on its connection.
 */

/** One operation under the store's failure contract (RedisCommandClient.run, redis-client.ts) and trace hook. */
export type StoreRun = <T>(op: string, command: () => Promise<T>) => Promise<T>;

/** The scripts this writer runs, as the store defined them on its connection. */
export interface RevocationLogScripts {
  readonly revoke: WriteScript;
  readonly restore: WriteScript;
  readonly heartbeat: WriteScript;
  readonly recordAccessTtl: WriteScript;
}

export class RedisRevocationLog implements RevocationLog, RevocationRepair, FeedPublisher, AccessTtlRecord {
  private retention: number;

  constructor(
    private readonly keys: RedisKeys,
    private readonly run: StoreRun,
    private readonly scripts: RevocationLogScripts,
    private readonly durable: RedisDurableWrites,
    /** Log retention by entry age (the maximum access-token TTL plus clock skew); a floor for recordAccessTtl. */
    private readonly configuredRetentionMs: number,
  ) {
    this.retention = configuredRetentionMs;
  }

  /** How long log entries are kept: the configured retention, raised by recordAccessTtl. ROTATE_REFRESH's reuse entry uses it too. */
  get retentionMs(): number {
    return this.retention;
  }

  async revoke(input: RevokeInput): Promise<RevocationEvent> {
    checkRevoke(input);
    const k = this.keys;
    const target =
      input.kind === 'jti' ? k.revokedJti(input.id) : input.kind === 'sid' ? k.revokedSid(input.id) : k.generation(input.id);
    const json = await this.run('revoke', () =>
      this.durable.write('taRevoke', this.scripts.revoke, [
        k.seq,
        k.log,
        target,
        k.base,
        input.kind,
        input.id,
        input.until,
        input.reason ?? '',
        this.retention,
      ]),
    );
    return toEvent(json);
  }

  async restoreRevocations(entries: readonly RestoreRevocationInput[]): Promise<RevocationEvent[]> {
    checkRestore(entries);
    if (entries.length === 0) return [];
    const list = entries.map((e) => (e.kind === 'sub' ? [e.kind, e.id, e.until, e.gen as number] : [e.kind, e.id, e.until]));
    const raw = (await this.run('restoreRevocations', () =>
      this.durable.write('taRestore', this.scripts.restore, [this.keys.seq, this.keys.log, this.keys.base, this.retention, JSON.stringify(list)]),
    )) as string[];
    return raw.map(toEvent);
  }

  async heartbeat(): Promise<{ headSeq: number; trimmed: number }> {
    const k = this.keys;
    const [head, trimmed] = (await this.run('heartbeat', () =>
      this.scripts.heartbeat.command(k.seq, k.log, k.receipts, k.base, this.retention),
    )) as [number, number];
    return { headSeq: Number(head), trimmed: Number(trimmed) };
  }

  async recordAccessTtl(input: { ttlMs: number; horizonMs: number; slackMs: number }): Promise<number> {
    checkAccessTtl(input);
    const best = Number(
      await this.run('recordAccessTtl', () =>
        this.scripts.recordAccessTtl.command(this.keys.ttlHighWater, this.keys.base, input.ttlMs, input.horizonMs),
      ),
    );
    const highWater = Math.max(best, input.ttlMs);
    this.retention = Math.max(this.configuredRetentionMs, highWater + input.slackMs);
    return highWater;
  }
}

/* ---- Durable writes ----
 *
 * A write that must not be lost (every revocation, a refresh rotation with its reuse detection)
 * is acknowledged only once `replicas` Redis replicas hold it — Redis WAIT (WAITAOF with `aof`)
 * right after the script, on the connection that ran it. With 0 replicas a durable write is the
 * plain script. The log's writer (above) and the store's rotation (redis-token-store.ts) run
 * their must-not-lose scripts through {@link RedisDurableWrites.write}.
 */

export const DEFAULT_WAIT_TIMEOUT_MS = 500;

/** `auto` → 1 replica on Sentinel and Cluster (they have replicas to fail over to), 0 on one server. */
export function replicasToWaitFor(setting: number | 'auto' | undefined, target: RedisTarget): number {
  if (typeof setting === 'number') return setting;
  const topology = 'topology' in target && 'nodes' in target ? target.topology : 'sentinels' in target && target.sentinels ? 'sentinel' : 'standalone';
  return topology === 'standalone' ? 0 : 1;
}

/** What a caller may do after a write of unknown outcome (docs/operations.md: "What an acknowledged revocation survives"). */
export function retryAdvice(op: 'revoke' | 'rotateRefresh'): string {
  return op === 'rotateRefresh'
    ? 'and retrying with the same refresh token is safe within TA_REFRESH_GRACE (without a grace window a retry after an applied rotation counts as reuse)'
    : 'and retrying is safe (a revocation applied twice is the same revocation)';
}

export type ScriptFn = (...args: Array<string | number>) => Promise<unknown>;

/** A write script as defined on the connection (ioredis defineCommand) and as sent by WAIT's pipeline. */
export interface WriteScript {
  /** The command defined on the shared connection, used when no replica is waited for. */
  readonly command: ScriptFn;
  readonly lua: string;
  readonly numberOfKeys: number;
}

/** The replica wait of durable writes (replicas 0 = none). */
export interface ReplicaWait {
  readonly replicas: number;
  readonly timeoutMs: number;
  readonly aof: boolean;
}

export class RedisDurableWrites {
  /**
   * The connection of durable writes when they wait for replicas: WAIT blocks its connection until
   * the replicas answer (or its timeout), so on the shared one it would hold up every other
   * command — Issue, reads, heartbeats — behind it.
   */
  private durableRedis: RedisClient | undefined;
  private readonly shas: Record<string, string> = {};

  constructor(
    private readonly conn: RedisCommandClient,
    readonly wait: ReplicaWait,
  ) {}

  /** Runs `script` durably: the plain script without a replica wait, else script + WAIT (see replicated()). */
  write(name: string, script: WriteScript, args: Array<string | number>): Promise<unknown> {
    return this.wait.replicas === 0 ? script.command(...args) : this.replicated(name, script.lua, script.numberOfKeys, args);
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
  private async replicated(name: string, lua: string, numberOfKeys: number, args: Array<string | number>): Promise<unknown> {
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
}
