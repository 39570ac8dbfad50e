/**
 * The Redis failure contract, in one place. Every Redis connection of this project — the token
 * store's, the key store's, the library's read-only revocation source, their feed subscriptions
 * and the durable-write connection — is made and used through here:
 *
 * - no offline queue: while Redis is down a command fails, it never waits in a queue;
 * - no retries and no re-sending after a reconnect (`maxRetriesPerRequest: 0`,
 *   `autoResendUnfulfilledCommands: false`): a write whose reply was lost may have run, and
 *   running it again could turn a refresh rotation into reuse;
 * - deadlines: a command gets no answer within `commandTimeoutMs` → it fails; a call made while a
 *   connection attempt is under way waits for it at most that long; while Redis is known to be
 *   down a call fails at once;
 * - every failure is ERR_STORE_UNAVAILABLE naming the operation and the client's reason, never
 *   the command's arguments (they hold token hashes and sealed key sets);
 * - the client keeps reconnecting in the background (50 ms doubling to 1 s), so calls succeed as
 *   soon as Redis is back, and an outage is logged once (and its end once), not per attempt;
 * - `close()` quits and then disconnects every connection it opened (with Sentinel, ioredis keeps
 *   its failover-detector connections otherwise).
 */
import { Cluster, type RedisOptions } from 'ioredis';
import { ErrorCodes, TokenAuthorityError, errorMessage, storeUnavailable } from '../shared/errors.js';
import { DEFAULTS } from '../shared/defaults.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import {
  createRedisClient,
  createSubscriber,
  parseRedisUrl,
  type RedisClient,
  type RedisConnectionOptions,
  type RedisConnectionSpec,
  type RedisSubscriber,
  type RedisTarget,
} from './redis-connection.js';
import { positiveIntOption } from './store-input.js';

/** A command that gets no answer within this fails with ERR_STORE_UNAVAILABLE (TA_REDIS_COMMAND_TIMEOUT's default). */
export const DEFAULT_COMMAND_TIMEOUT_MS = DEFAULTS.redisCommandTimeoutMs;

/** Reconnect backoff: 50 ms doubling to 1 s, forever — Redis coming back must be noticed quickly. */
export function reconnectDelayMs(attempt: number): number {
  return Math.min(50 * 2 ** Math.max(0, attempt - 1), 1000);
}

/** A URL, a parsed URL, or raw ioredis options (library users); keyPrefix in ioredis options is refused. */
export function redisTargetOf(url: string | RedisOptions | RedisConnectionSpec): RedisTarget {
  if (typeof url === 'string') return parseRedisUrl(url);
  if (typeof url !== 'object' || url === null) throw new TokenAuthorityError(ErrorCodes.CONFIG, 'url must be a redis:// URL or ioredis options');
  if ('topology' in url && 'nodes' in url) return url;
  // ioredis would prefix declared KEYS but not the keys the scripts derive: split state.
  if ((url as RedisOptions).keyPrefix) {
    throw new TokenAuthorityError(ErrorCodes.CONFIG, 'set keyPrefix on the store options, not in the ioredis options');
  }
  return { ...url };
}

/** Options of {@link RedisCommandClient}. */
export interface RedisCommandClientOptions {
  /** Default {@link DEFAULT_COMMAND_TIMEOUT_MS}. */
  commandTimeoutMs?: number;
  /** CLIENT SETNAME of the command connection, e.g. `token-authority-keys`. */
  connectionName: string;
  /** Names the client in messages: `${label} ${op} failed: …` (e.g. "Redis", "Redis key store"). */
  label: string;
  /** The message of a call made after close(). */
  closedMessage: string;
  /** Connect on the first command rather than at once (for a process that may never use Redis). */
  lazyConnect?: boolean;
  logger?: Logger;
  /** Called once per command that fails (Redis unreachable, timed out, or an error reply): a metric. */
  onCommandError?: (op: string) => void;
}

/** The per-connection ioredis options of the contract (see the top of this file). */
function contractOptions(target: RedisTarget, commandTimeoutMs: number, overrides: RedisConnectionOptions): RedisConnectionOptions {
  // Raw ioredis options may set their own connect timeout; everything else here is the contract.
  const own = 'topology' in target ? undefined : target.connectTimeout;
  return {
    connectTimeout: own ?? Math.max(2 * commandTimeoutMs, 1000),
    retryStrategy: reconnectDelayMs,
    commandTimeout: commandTimeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    ...overrides,
  };
}

/** One command connection under the failure contract, and the further connections made alike. */
export class RedisCommandClient {
  /** The command connection (single server, Sentinel master, or Cluster). */
  readonly client: RedisClient;
  readonly target: RedisTarget;
  readonly commandTimeoutMs: number;
  private readonly label: string;
  private readonly closedMessage: string;
  private readonly onCommandError: ((op: string) => void) | undefined;
  /** Further connections opened with {@link openConnection}; closed with this one. */
  private readonly extra = new Set<RedisClient>();
  private closed = false;
  private down = false;
  /** The shared wait for a connection attempt under way, per connection (see connectOutcome). */
  private readonly connecting = new WeakMap<RedisClient, Promise<'ready' | 'closed'>>();

  constructor(target: RedisTarget, options: RedisCommandClientOptions) {
    this.target = target;
    const timeout = positiveIntOption('commandTimeoutMs', options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
    this.commandTimeoutMs = timeout;
    this.label = options.label;
    this.closedMessage = options.closedMessage;
    this.onCommandError = options.onCommandError;
    this.client = createRedisClient(target, contractOptions(target, timeout, {
      connectionName: options.connectionName,
      ...(options.lazyConnect ? { lazyConnect: true } : {}),
    }));
    // Connection errors surface as ERR_STORE_UNAVAILABLE from the call that meets them; the
    // listener logs each outage once (ioredis would otherwise print every reconnect attempt).
    const log = options.logger ?? silentLogger;
    this.client.on('error', (err: Error) => {
      if (!this.down) log.warn({ err: err.message }, `${this.label} connection error; reconnecting`);
      this.down = true;
    });
    this.client.on('ready', () => {
      if (this.down) log.info(`${this.label} connection restored`);
      this.down = false;
    });
  }

  /** True while the command connection is up. */
  get connected(): boolean {
    return this.client.status === 'ready';
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** @throws TokenAuthorityError ERR_STORE_UNAVAILABLE (the closed message) after close(). */
  assertOpen(): void {
    if (this.closed) throw storeUnavailable(this.closedMessage);
  }

  /**
   * Runs one command with the contract: waits for a connection attempt under way (bounded by the
   * command timeout), fails at once when Redis is known to be down, and turns every client error
   * into ERR_STORE_UNAVAILABLE. Messages carry the operation and the client's reason only.
   * @param unknownOutcome appended to the message when the command itself failed: for a write
   *   whose reply did not come, what the caller may do (it may or may not have applied).
   */
  async run<T>(op: string, command: () => Promise<T>, unknownOutcome?: string): Promise<T> {
    this.assertOpen();
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
      throw this.failure(op, err, unknownOutcome);
    }
  }

  /** A thrown value as the contract's error: TokenAuthorityErrors as they are, anything else ERR_STORE_UNAVAILABLE. */
  failure(op: string, err: unknown, unknownOutcome?: string): TokenAuthorityError {
    if (err instanceof TokenAuthorityError) return err;
    const reason = errorMessage(err);
    // A fresh cause: ioredis errors carry the command's arguments.
    return storeUnavailable(`${this.label} ${op} failed: ${reason}${unknownOutcome === undefined ? '' : `; ${unknownOutcome}`}`, new Error(reason));
  }

  /**
   * Resolves once `redis` (default: the command connection) is ready: at once if it is, within
   * the command timeout if a connection attempt is under way (a lazy one is started here).
   * @throws TokenAuthorityError ERR_STORE_UNAVAILABLE if Redis is known to be down, the attempt
   *   fails, or it takes longer than the command timeout.
   */
  async whenConnected(op: string, redis: RedisClient = this.client): Promise<void> {
    const status = redis.status;
    if (status === 'ready') return;
    if (status === 'wait') redis.connect().catch(() => {});
    else if (status !== 'connecting' && status !== 'connect') {
      throw storeUnavailable(`${this.label} ${op} failed: Redis is unreachable (${status})`);
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.commandTimeoutMs);
    });
    const outcome = await Promise.race([this.connectOutcome(redis), timedOut]);
    clearTimeout(timer);
    if (outcome === 'closed') throw storeUnavailable(`${this.label} ${op} failed: connection refused or closed`);
    if (outcome === 'timeout') throw storeUnavailable(`${this.label} ${op} failed: not connected within ${this.commandTimeoutMs} ms`);
  }

  /**
   * How the connection attempt under way on `redis` ends: one pair of listeners however many
   * commands wait for it (a burst of calls at start-up would otherwise add a listener each and trip
   * Node's MaxListeners warning), removed when it ends.
   */
  private connectOutcome(redis: RedisClient): Promise<'ready' | 'closed'> {
    let outcome = this.connecting.get(redis);
    if (outcome === undefined) {
      outcome = new Promise<'ready' | 'closed'>((resolve) => {
        const end = (how: 'ready' | 'closed') => {
          redis.off('ready', onReady);
          redis.off('close', onClose);
          this.connecting.delete(redis);
          resolve(how);
        };
        const onReady = () => end('ready');
        const onClose = () => end('closed');
        redis.on('ready', onReady);
        redis.on('close', onClose);
      });
      this.connecting.set(redis, outcome);
    }
    return outcome;
  }

  /**
   * Another command connection to the same target under the same contract (e.g. one that blocks in
   * WAIT without holding up the others). Its errors are not logged: the command connection
   * reports Redis being down. Closed by {@link close}.
   */
  openConnection(connectionName: string): RedisClient {
    this.assertOpen();
    const conn = createRedisClient(this.target, contractOptions(this.target, this.commandTimeoutMs, { connectionName }));
    conn.on('error', () => {
      // Each command on it fails with ERR_STORE_UNAVAILABLE; the outage is logged by the command connection.
    });
    this.extra.add(conn);
    return conn;
  }

  /**
   * A dedicated, lazily connecting subscriber connection for `channel` (sharded on a Cluster; see
   * redis-connection.ts), under the contract. The caller subscribes and closes it.
   */
  openSubscriber(channel: string, connectionName: string): RedisSubscriber {
    this.assertOpen();
    return createSubscriber(
      this.target,
      contractOptions(this.target, this.commandTimeoutMs, { lazyConnect: true, autoResubscribe: false, connectionName }),
      { channel, commandClient: this.client },
    );
  }

  /** Whether the command connection is a Cluster client. */
  get isCluster(): boolean {
    return this.client instanceof Cluster;
  }

  /** Quits, then disconnects, the command connection and every connection opened from it. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const all = [this.client, ...this.extra];
    this.extra.clear();
    await Promise.all(all.map(async (conn) => {
      try {
        await conn.quit();
      } catch {
        // Not connected: disconnect below is all there is to do.
      }
      // Also after quit: with Sentinel, ioredis keeps its failover-detector connections to the
      // sentinels open (and reconnecting) until disconnect() is called.
      conn.disconnect();
    }));
  }
}
