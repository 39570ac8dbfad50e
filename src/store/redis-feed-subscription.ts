import type { Redis } from 'ioredis';
import { errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { parseFeedMessage, type FeedMessage } from '../shared/revocation-event.js';
import type { FeedListener, FeedSubscription } from '../verifier/revocation-source.js';

/**
 * One live-feed subscription on its own Redis connection (a connection in subscriber mode can do
 * nothing else, and its lifecycle — reconnect, resubscribe — is the feed's lifecycle).
 *
 * The listener contract (FeedListener): onReady once the subscription is established, at first and
 * after every reconnect; onDisconnect once per loss; messages in order, never concurrently.
 *
 * ioredis' own autoResubscribe is off on purpose: it emits 'ready' before the SUBSCRIBE is
 * confirmed, and a verifier that re-reads the log on onReady before the channel is live could miss
 * a revocation published in between. Here SUBSCRIBE is sent on every 'ready' and onReady is called
 * only once Redis confirmed it; messages that arrive in the same network read as the confirmation
 * are held back until after onReady.
 *
 * `sharded` (a Redis Cluster) uses SSUBSCRIBE and `smessage` on a connection to the node owning the
 * channel's slot (redis-connection.ts). When the slot moves — a failover or a migration — Redis
 * unsubscribes us (ioredis reports it as 'moved'); the connection is then dropped and re-made,
 * which finds the new owner, and the listener sees a disconnect and a fresh onReady, so the
 * verifier re-reads the log and misses nothing.
 */
export class RedisFeedSubscription implements FeedSubscription {
  private up = false;
  private closed = false;
  /** Bumped on every (re)connect and close, so a stale SUBSCRIBE reply cannot announce readiness. */
  private epoch = 0;
  private pending: FeedMessage[] = [];
  private lastError: Error | undefined;
  private readonly firstReady: Promise<void>;
  private resolveFirstReady!: () => void;

  constructor(
    private readonly conn: Redis,
    private readonly channel: string,
    private readonly listener: FeedListener,
    private readonly logger: Logger,
    private readonly onDropped: () => void,
    private readonly sharded = false,
  ) {
    this.firstReady = new Promise((resolve) => (this.resolveFirstReady = resolve));
    conn.on('ready', () => void this.subscribeNow());
    conn.on(sharded ? 'smessage' : 'message', (ch: string, raw: string) => this.receive(ch, raw));
    if (sharded) {
      conn.on('moved', () => {
        if (this.closed) return;
        this.logger.warn({ channel: this.channel }, 'the feed channel\'s slot moved; resubscribing on its new owner');
        this.conn.disconnect(true);
      });
    }
    conn.on('error', (err: Error) => {
      this.lastError = err;
    });
    conn.on('close', () => this.lost());
    conn.on('end', () => this.lost());
  }

  /** Resolves at the first established subscription. */
  get ready(): Promise<void> {
    return this.firstReady;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.epoch += 1;
    this.up = false;
    this.pending = [];
    this.conn.disconnect();
  }

  private async subscribeNow(): Promise<void> {
    const epoch = ++this.epoch;
    try {
      if (this.sharded) await this.conn.ssubscribe(this.channel);
      else await this.conn.subscribe(this.channel);
    } catch (err) {
      if (epoch !== this.epoch || this.closed) return;
      // Could not subscribe on a live connection: drop it and let the retry strategy try again.
      this.logger.warn({ err: describe(err) }, 'feed subscribe failed; reconnecting');
      this.conn.disconnect(true);
      return;
    }
    if (epoch !== this.epoch || this.closed || this.conn.status !== 'ready') return;
    this.up = true;
    this.lastError = undefined;
    this.resolveFirstReady();
    this.call(() => this.listener.onReady());
    const held = this.pending;
    this.pending = [];
    for (const m of held) {
      if (!this.up) break;
      this.call(() => this.listener.onMessage(m));
    }
  }

  private receive(channel: string, raw: string): void {
    if (this.closed || channel !== this.channel) return;
    const message = parseFeedMessage(raw);
    if (!message) {
      this.onDropped();
      return;
    }
    if (!this.up) {
      this.pending.push(message);
      return;
    }
    this.call(() => this.listener.onMessage(message));
  }

  private lost(): void {
    this.epoch += 1;
    this.pending = [];
    if (!this.up || this.closed) return;
    this.up = false;
    const error = this.lastError ?? new Error('Redis feed connection closed');
    this.logger.warn({ err: describe(error) }, 'revocation feed disconnected; reconnecting');
    this.call(() => this.listener.onDisconnect(error));
  }

  private call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.logger.error({ err: describe(err) }, 'revocation feed listener threw');
    }
  }
}

const describe = errorMessage;
