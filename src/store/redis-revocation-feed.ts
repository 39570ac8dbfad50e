/**
 * The read side of the revocation log and feed in Redis: reading the log from a sequence, and
 * live-feed subscriptions. The authority's write store (redis-token-store.ts) and the library's
 * read-only source (redis-revocation-source.ts, `token-authority/redis`) both serve revocations
 * through this one class, over a {@link RedisCommandClient} (the failure contract).
 */
import type { Logger } from '../shared/logger.js';
import { parseFeedMessage, parseFeedMessageBytes, type RevocationEvent } from '../shared/revocation-event.js';
import { ErrorCodes, TokenAuthorityError, storeUnavailable } from '../shared/errors.js';
import type { FeedListener, FeedSubscription, RevocationLogPage, RevocationSource } from '../verifier/revocation-source.js';
import type { RedisCommandClient } from './redis-client.js';
import { isClusterTarget } from './redis-connection.js';
import { RedisFeedSubscription } from './redis-feed-subscription.js';
import type { RedisKeys } from './redis-keys.js';
import { redisScripts } from './redis-scripts.js';
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
