/**
 * The read side of the revocation log and feed in Redis, whole: reading the log from a sequence
 * (`RedisRevocationFeed.readLog`), live-feed subscriptions (`RedisFeedSubscription`, one connection
 * each), and the library's read-only source built on them (`createRedisRevocationSource`, exported
 * as `token-authority/redis` through redis-revocation-source.ts). The authority's write store
 * (redis-token-store.ts) serves its own verifier through the same class, over a
 * {@link RedisCommandClient} (the failure contract of redis-client.ts).
 */
import type { Redis, RedisOptions } from 'ioredis';
import { silentLogger, type Logger } from '../shared/logger.js';
import { parseFeedMessage, parseFeedMessageBytes, type FeedMessage, type RevocationEvent } from '../shared/revocation-event.js';
import { ErrorCodes, TokenAuthorityError, errorMessage, storeUnavailable } from '../shared/errors.js';
import type { FeedListener, FeedSubscription, RevocationLogPage, RevocationSource } from '../verifier/revocation-source.js';
import { RedisCommandClient, redisTargetOf } from './redis-client.js';
import { isClusterTarget } from './redis-connection.js';
import { DEFAULT_KEY_PREFIX, redisKeys, type RedisKeys, redisScripts } from './redis-schema.js';
import { checkReadLog } from './store-input.js';

type ReadLogCommand = (log: string, seq: string, base: string, afterSeq: number, limit: number) => Promise<[number | Buffer, Buffer[]]>;

/**
 * A log entry or a script's event reply (text, or the bytes of a Buffer reply) → RevocationEvent;
 * anything else is refused. parseFeedMessageBytes gives the same answers as parsing the text.
 */
export function toRevocationEvent(json: unknown): RevocationEvent {
  const message = typeof json === 'string' ? parseFeedMessage(json) : Buffer.isBuffer(json) ? parseFeedMessageBytes(json) : undefined;
  if (!message || message.type !== 'rev') {
    // Written only by this project's scripts; anything else is a newer writer or corruption. Never
    // skip it: a verifier must not advance past a sequence it could not apply.
    throw new TokenAuthorityError(ErrorCodes.INTERNAL, 'the revocation log holds an entry this version cannot read');
  }
  return message;
}

/** Reads the revocation log and opens feed subscriptions; never writes. */
export class RedisRevocationFeed implements RevocationSource {
  private readonly subscriptions = new Set<RedisFeedSubscription>();
  private readonly readLogCommand: ReadLogCommand;
  private dropped = 0;

  constructor(
    private readonly redis: RedisCommandClient,
    private readonly keys: RedisKeys,
    private readonly logger: Logger,
  ) {
    redis.client.defineCommand('taReadLog', { lua: redisScripts(isClusterTarget(redis.target)).READ_LOG, numberOfKeys: 2, readOnly: true });
    // The Buffer variant ioredis defines beside every command: entries arrive as bytes, parsed by
    // parseFeedMessageBytes (no string or JSON object per entry on the usual path). A plain XRANGE
    // would spare Redis the script's conversion of the entries into Lua tables (~6× its own XRANGE
    // time), but ioredis decodes its seven reply elements per entry at ~5× the Node time of this.
    this.readLogCommand = (redis.client as unknown as { taReadLogBuffer: ReadLogCommand }).taReadLogBuffer.bind(redis.client);
  }

  /** Feed messages that were not valid v1 messages and were dropped (a version skew signal). */
  get droppedFeedMessages(): number {
    return this.dropped;
  }

  async readLog(afterSeq: number, limit: number): Promise<RevocationLogPage> {
    checkReadLog(afterSeq, limit);
    const k = this.keys;
    const [head, raw] = await this.redis.run('readLog', () => this.readLogCommand(k.log, k.seq, k.base, afterSeq, limit));
    const events = new Array<RevocationEvent>(raw.length);
    for (let i = 0; i < raw.length; i++) events[i] = toRevocationEvent(raw[i]);
    return { events, headSeq: Number(Buffer.isBuffer(head) ? head.toString() : head) };
  }

  /**
   * A live-feed subscription on its own connection, resolved once Redis confirmed it.
   * @throws TokenAuthorityError ERR_STORE_UNAVAILABLE if it is not established within the command timeout.
   */
  async subscribe(listener: FeedListener): Promise<FeedSubscription> {
    const { conn, sharded } = this.redis.openSubscriber(this.keys.feed, 'token-authority-feed');
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
    const timeoutMs = this.redis.commandTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const first = await Promise.race([subscription.ready.then(() => 'ready' as const), timedOut]);
    clearTimeout(timer);
    if (first === 'timeout') {
      await tracked.close();
      throw storeUnavailable(`Redis subscribe failed: no subscription within ${timeoutMs} ms`);
    }
    return tracked;
  }

  /** Closes every subscription still open (the owner calls it before closing the connection). */
  async closeSubscriptions(): Promise<void> {
    const open = [...this.subscriptions];
    this.subscriptions.clear();
    await Promise.all(open.map((s) => s.close()));
  }
}

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
class RedisFeedSubscription implements FeedSubscription {
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
      this.logger.warn({ err: errorMessage(err) }, 'feed subscribe failed; reconnecting');
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
    this.logger.warn({ err: errorMessage(error) }, 'revocation feed disconnected; reconnecting');
    this.call(() => this.listener.onDisconnect(error));
  }

  private call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.logger.error({ err: errorMessage(err) }, 'revocation feed listener threw');
    }
  }
}


/** Options of {@link createRedisRevocationSource}. */
export interface RedisRevocationSourceOptions {
  /**
   * The authority's Redis: a URL (`redis://`, `rediss://`, `redis-sentinel://…/<master>`,
   * `redis-cluster://…`; see redis-connection.ts) or ioredis options.
   */
  url: string | RedisOptions;
  /** The authority's key prefix (default `ta:v1:`). */
  keyPrefix?: string;
  /** Default 1000. */
  commandTimeoutMs?: number;
  logger?: Logger;
}

/** A read-only RevocationSource on the authority's Redis, with its connections to release. */
export interface RedisRevocationSource extends RevocationSource {
  close(): Promise<void>;
}

/**
 * The revocation log + feed of an authority's Redis, for a service embedding the local verifier:
 * reads and subscribes only, never writes. Same failure behaviour as the authority's store (the
 * contract of redis-client.ts): no queue, no retries, calls fail with ERR_STORE_UNAVAILABLE within
 * `commandTimeoutMs` while Redis is down, and it reconnects by itself.
 */
export function createRedisRevocationSource(options: RedisRevocationSourceOptions): RedisRevocationSource {
  const logger = (options.logger ?? silentLogger).child({ component: 'redis-revocation-source' });
  const connection = new RedisCommandClient(redisTargetOf(options.url), {
    ...(options.commandTimeoutMs !== undefined ? { commandTimeoutMs: options.commandTimeoutMs } : {}),
    connectionName: 'token-authority-verifier',
    label: 'Redis',
    closedMessage: 'the revocation source is closed',
    logger,
  });
  const feed = new RedisRevocationFeed(connection, redisKeys(options.keyPrefix ?? DEFAULT_KEY_PREFIX), logger);
  return {
    readLog: (afterSeq: number, limit: number): Promise<RevocationLogPage> => feed.readLog(afterSeq, limit),
    subscribe: (listener: FeedListener): Promise<FeedSubscription> => feed.subscribe(listener),
    close: async () => {
      if (connection.isClosed) return;
      await feed.closeSubscriptions();
      await connection.close();
    },
  };
}
