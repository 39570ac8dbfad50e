import { createHash } from 'node:crypto';
import { Cluster } from 'ioredis';
import { storeUnavailable } from '../shared/errors.js';
import type { RedisCommandClient } from './redis-client.js';
import type { RedisClient, RedisTarget } from './redis-connection.js';

/**
 * Durable writes: a write that must not be lost (every revocation, a refresh rotation with its
 * reuse detection) is acknowledged only once `replicas` Redis replicas hold it — Redis WAIT
 * (WAITAOF with `aof`) right after the script, on the connection that ran it. With 0 replicas a
 * durable write is the plain script. The store (redis-token-store.ts) and its revocation-log
 * writer (redis-revocation-log.ts) run their must-not-lose scripts through {@link RedisDurableWrites.write}.
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
