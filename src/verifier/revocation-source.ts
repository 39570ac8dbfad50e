import type { FeedMessage, RevocationEvent } from '../shared/revocation-event.js';

/** One page of the durable revocation log. */
export interface RevocationLogPage {
  /** Events with seq > afterSeq, in ascending seq order, at most `limit`. */
  readonly events: readonly RevocationEvent[];
  /** The newest sequence in the log (0 when nothing was ever revoked). */
  readonly headSeq: number;
}

/** Receives the live feed. Called in order, never concurrently. */
export interface FeedListener {
  /** A revocation or heartbeat arrived on the live feed. */
  onMessage(message: FeedMessage): void;
  /**
   * The subscription is established: at first subscribe and again after every reconnect. The
   * verifier must re-read the log from its last applied sequence, since messages published while it
   * was disconnected are not replayed by pub/sub.
   */
  onReady(): void;
  /** The live feed was lost; the source reconnects by itself and calls onReady again. */
  onDisconnect(error?: Error): void;
}

export interface FeedSubscription {
  close(): Promise<void>;
}

/**
 * Where a verifier gets revocations: a durable log to catch up from and a live feed. Implemented by
 * the stores (in-memory and Redis); the verifier library knows nothing of Redis. The verifier
 * closes the subscription it opened, never the source: whoever created the source closes it
 * (`RedisRevocationSource.close()`), after the verifiers that use it.
 */
export interface RevocationSource {
  readLog(afterSeq: number, limit: number): Promise<RevocationLogPage>;
  subscribe(listener: FeedListener): Promise<FeedSubscription>;
}
