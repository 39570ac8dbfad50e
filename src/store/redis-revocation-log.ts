import type { RevocationEvent } from '../shared/revocation-event.js';
import type { RedisDurableWrites, WriteScript } from './redis-durable-write.js';
import type { RedisKeys } from './redis-schema.js';
import { toRevocationEvent as toEvent } from './redis-revocation-feed.js';
import { checkAccessTtl, checkRestore, checkRevoke } from './store-input.js';
import type { AccessTtlRecord, FeedPublisher, RestoreRevocationInput, RevocationLog, RevocationRepair, RevokeInput } from './token-store.js';

/**
 * The write side of the revocation log and feed in Redis: recording a revocation (effect, log
 * entry and feed message in one atomic step), appending again what a failover lost, the heartbeat
 * with the log's trimming, and the log's retention (the access-TTL high-water mark sets it). Each
 * is one Lua script of redis-schema.ts — REVOKE, RESTORE, HEARTBEAT, RECORD_ACCESS_TTL — on the
 * shared prelude there, whose helpers (`append`, `revoke_session`, `drop_subject_proofs`) also
 * serve ROTATE_REFRESH's reuse detection. Revocations are durable writes (redis-durable-write.ts).
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
