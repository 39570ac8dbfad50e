/**
 * Redis connections from one URL: a single server, a Sentinel-monitored master, or a Cluster.
 *
 * | URL                                                          | topology                             |
 * | ------------------------------------------------------------ | ------------------------------------ |
 * | `redis://[user:pass@]host[:6379][/db]`                       | one server                           |
 * | `rediss://…`                                                 | one server over TLS                  |
 * | `redis-sentinel://[user:pass@]h1[:26379],h2…/master[/db]`    | the master Sentinel names `master`   |
 * | `rediss-sentinel://…`                                        | the same, TLS to sentinels and Redis |
 * | `redis-cluster://[user:pass@]h1[:6379],h2…`                  | a Cluster, from any seed nodes       |
 * | `rediss-cluster://…`                                         | a Cluster over TLS                   |
 *
 * `user:pass` authenticate to Redis itself; Sentinel's own credentials, if it has any, go in the
 * query: `?sentinelUsername=…&sentinelPassword=…`. Percent-encode reserved characters.
 *
 * Every token-authority key lives in one Cluster slot (the `{ta}` hash tag, see redis-schema.ts), so
 * on a Cluster the live feed uses sharded pub/sub (SSUBSCRIBE/SPUBLISH, Redis ≥ 7): the message
 * stays within the shard that owns the slot instead of being broadcast over the cluster bus to
 * every node. The subscriber therefore connects to the owner of that slot, and finds it anew on
 * every (re)connect, so a failover or a slot migration moves it to the new owner.
 */
import { createConnection } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { AbstractConnector, Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { ErrorCodes, TokenAuthorityError } from '../shared/errors.js';
import { redactUrl } from '../shared/redact-url.js';

/** How the Redis behind a URL is deployed. */
export type RedisTopology = 'standalone' | 'sentinel' | 'cluster';

export interface RedisEndpoint {
  host: string;
  port: number;
}

/** A parsed Redis URL. Holds credentials: never log it (log the URL through redactUrl, shared/redact-url.ts). */
export interface RedisConnectionSpec {
  topology: RedisTopology;
  /** standalone: the server; sentinel: the sentinels; cluster: seed nodes. */
  nodes: readonly RedisEndpoint[];
  tls: boolean;
  username?: string;
  password?: string;
  /** Database index (standalone and Sentinel; a Cluster only has database 0). */
  db?: number;
  /** Sentinel: the name of the monitored master. */
  sentinelName?: string;
  sentinelUsername?: string;
  sentinelPassword?: string;
}

/** Either a parsed URL or raw ioredis options for a single server or Sentinel (library users). */
export type RedisTarget = RedisConnectionSpec | RedisOptions;

/** A command client: a single connection, or a Cluster client routing by slot. */
export type RedisClient = Redis | Cluster;

const SCHEMES: Readonly<Record<string, { topology: RedisTopology; tls: boolean; defaultPort: number }>> = {
  'redis:': { topology: 'standalone', tls: false, defaultPort: 6379 },
  'rediss:': { topology: 'standalone', tls: true, defaultPort: 6379 },
  'redis-sentinel:': { topology: 'sentinel', tls: false, defaultPort: 26379 },
  'rediss-sentinel:': { topology: 'sentinel', tls: true, defaultPort: 26379 },
  'redis-cluster:': { topology: 'cluster', tls: false, defaultPort: 6379 },
  'rediss-cluster:': { topology: 'cluster', tls: true, defaultPort: 6379 },
};

/** The URL schemes {@link parseRedisUrl} accepts, with their `:`. */
export const REDIS_URL_SCHEMES: readonly string[] = Object.keys(SCHEMES);

const QUERY_PARAMS: Readonly<Record<RedisTopology, readonly string[]>> = {
  standalone: [],
  sentinel: ['sentinelUsername', 'sentinelPassword'],
  cluster: [],
};

function urlError(url: string, problem: string): TokenAuthorityError {
  return new TokenAuthorityError(ErrorCodes.CONFIG, `invalid Redis url "${redactUrl(url)}": ${problem}`);
}

function decode(url: string, text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw urlError(url, `the ${what} is not valid percent-encoding`);
  }
}

function parseEndpoint(url: string, text: string, defaultPort: number): RedisEndpoint {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]\s/]+)(?::(\d{1,5}))?$/.exec(text);
  if (!m) throw urlError(url, `"${text}" is not host or host:port`);
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw urlError(url, `port ${m[2]} is out of range`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

function parseDb(url: string, text: string): number {
  if (!/^\d{1,5}$/.test(text)) throw urlError(url, `database "${text}" is not a number`);
  return Number(text);
}

/**
 * Parses a Redis URL of any supported topology (see the table at the top of this file).
 * @throws TokenAuthorityError ERR_CONFIG naming the problem; the message never contains a password.
 */
export function parseRedisUrl(url: string): RedisConnectionSpec {
  const m = /^([a-z][a-z0-9+.-]*:)\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?$/i.exec(url.trim());
  if (!m) throw urlError(url, `not a URL (expected ${REDIS_URL_SCHEMES.map((s) => `${s}//`).join(', ')})`);
  const scheme = SCHEMES[m[1]!.toLowerCase()];
  if (!scheme) {
    throw urlError(url, `unsupported scheme "${m[1]}" (expected ${REDIS_URL_SCHEMES.map((s) => `${s}//`).join(', ')})`);
  }
  let authority = m[2]!;
  const path = m[3]!.replace(/\/+$/, '');
  const spec: RedisConnectionSpec = { topology: scheme.topology, nodes: [], tls: scheme.tls };

  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    authority = authority.slice(at + 1);
    const colon = userinfo.indexOf(':');
    const user = decode(url, colon >= 0 ? userinfo.slice(0, colon) : userinfo, 'user name');
    if (colon >= 0) spec.password = decode(url, userinfo.slice(colon + 1), 'password');
    if (user !== '') spec.username = user;
    // `redis://secret@host` is the redis-cli convention for a password without a user name.
    if (colon < 0 && user !== '') {
      spec.password = user;
      delete spec.username;
    }
  }
  if (authority === '') throw urlError(url, 'names no host');
  const hosts = authority.split(',');
  if (scheme.topology === 'standalone' && hosts.length > 1) {
    throw urlError(url, 'lists several hosts; use redis-sentinel:// or redis-cluster:// for those');
  }
  spec.nodes = hosts.map((h) => parseEndpoint(url, h, scheme.defaultPort));

  const segments = path === '' ? [] : path.slice(1).split('/');
  if (scheme.topology === 'standalone') {
    if (segments.length > 1) throw urlError(url, 'the path may only hold a database number');
    if (segments.length === 1) spec.db = parseDb(url, segments[0]!);
  } else if (scheme.topology === 'sentinel') {
    if (segments.length === 0 || segments[0] === '') {
      throw urlError(url, 'names no master: redis-sentinel://host:26379,host2:26379/<master name>');
    }
    if (segments.length > 2) throw urlError(url, 'the path is /<master name>[/<database>]');
    spec.sentinelName = decode(url, segments[0]!, 'master name');
    if (segments.length === 2) spec.db = parseDb(url, segments[1]!);
  } else if (segments.length > 0) {
    throw urlError(url, 'a Cluster has only database 0, so the URL takes no path');
  }

  for (const pair of (m[4] ?? '').split('&').filter((p) => p !== '')) {
    const eq = pair.indexOf('=');
    const name = decode(url, eq >= 0 ? pair.slice(0, eq) : pair, 'query');
    const value = decode(url, eq >= 0 ? pair.slice(eq + 1) : '', 'query');
    if (!QUERY_PARAMS[scheme.topology].includes(name)) {
      const allowed = QUERY_PARAMS[scheme.topology];
      throw urlError(url, `unknown parameter "${name}"${allowed.length > 0 ? ` (known: ${allowed.join(', ')})` : ' (this URL form takes none)'}`);
    }
    if (name === 'sentinelUsername') spec.sentinelUsername = value;
    if (name === 'sentinelPassword') spec.sentinelPassword = value;
  }
  return spec;
}

function isSpec(target: RedisTarget): target is RedisConnectionSpec {
  return typeof target === 'object' && target !== null && 'topology' in target && 'nodes' in target;
}

/** True if `target` is a Cluster: its feed is sharded pub/sub and its client a Cluster client. */
export function isClusterTarget(target: RedisTarget): boolean {
  return isSpec(target) && target.topology === 'cluster';
}

/**
 * Per-connection behaviour, as ioredis options: timeouts, queueing, retry, name. The target
 * (address, credentials, TLS, database) comes from the URL and cannot be overridden here.
 */
export type RedisConnectionOptions = Omit<
  RedisOptions,
  'host' | 'port' | 'path' | 'sentinels' | 'name' | 'username' | 'password' | 'db' | 'tls' | 'Connector'
>;

/** The ioredis options of one connection to a single server or a Sentinel-managed master. */
function nodeOptions(spec: RedisConnectionSpec): RedisOptions {
  const auth: RedisOptions = {};
  if (spec.username !== undefined) auth.username = spec.username;
  if (spec.password !== undefined) auth.password = spec.password;
  if (spec.tls) auth.tls = {};
  if (spec.topology === 'sentinel') {
    return {
      ...auth,
      sentinels: spec.nodes.map((n) => ({ host: n.host, port: n.port })),
      name: spec.sentinelName!,
      role: 'master',
      db: spec.db ?? 0,
      ...(spec.sentinelUsername !== undefined ? { sentinelUsername: spec.sentinelUsername } : {}),
      ...(spec.sentinelPassword !== undefined ? { sentinelPassword: spec.sentinelPassword } : {}),
      ...(spec.tls ? { enableTLSForSentinelMode: true, sentinelTLS: {} } : {}),
      // Subscribes to +switch-master on the sentinels: a failover is noticed at once, not only
      // when the old master stops answering.
      failoverDetector: true,
      // A demoted master answers writes with READONLY: reconnect (asking Sentinel again) instead
      // of failing every write until the connection happens to drop. The failed command is not
      // re-sent (1, not 2): its caller already got UNAVAILABLE.
      reconnectOnError: (err: Error) => (err.message.startsWith('READONLY') ? 1 : false),
    };
  }
  return { ...auth, host: spec.nodes[0]!.host, port: spec.nodes[0]!.port, db: spec.db ?? 0 };
}

function clusterOptions(spec: RedisConnectionSpec, connection: RedisConnectionOptions): ClusterOptions {
  const { retryStrategy, enableOfflineQueue, lazyConnect, ...perNode } = connection;
  const redisOptions: ClusterOptions['redisOptions'] = { ...perNode };
  if (spec.username !== undefined) redisOptions.username = spec.username;
  if (spec.password !== undefined) redisOptions.password = spec.password;
  if (spec.tls) redisOptions.tls = {};
  const options: ClusterOptions = {
    redisOptions,
    enableOfflineQueue: enableOfflineQueue ?? false,
    lazyConnect: lazyConnect ?? false,
    // A failover or resharding answers MOVED/CLUSTERDOWN for a moment; retry briefly, well within
    // the command timeout, instead of failing the caller at once.
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    slotsRefreshTimeout: Math.max(1000, perNode.commandTimeout ?? 1000),
  };
  if (retryStrategy) options.clusterRetryStrategy = (times: number) => retryStrategy(times);
  return options;
}

/**
 * A command client for `target`: a `Redis` for a single server or Sentinel, a `Cluster` for a
 * Cluster (per-connection options apply to every node connection).
 */
export function createRedisClient(target: RedisTarget, connection: RedisConnectionOptions = {}): RedisClient {
  if (!isSpec(target)) return new Redis({ ...target, ...connection });
  if (target.topology === 'cluster') {
    return new Cluster(target.nodes.map((n) => ({ host: n.host, port: n.port })), clusterOptions(target, connection));
  }
  return new Redis({ ...nodeOptions(target), ...connection });
}

/** A subscriber connection and the pub/sub flavour to use on it. */
export interface RedisSubscriber {
  conn: Redis;
  /** SSUBSCRIBE/`smessage` (Cluster) rather than SUBSCRIBE/`message`. */
  sharded: boolean;
}

/**
 * A dedicated connection for the live feed on `channel`. On a single server or Sentinel it is a
 * plain connection (Sentinel finds the current master on every reconnect). On a Cluster it is a
 * single-node connection to the master owning `channel`'s slot, re-resolved through
 * `commandClient` on every (re)connect, for sharded pub/sub.
 */
export function createSubscriber(
  target: RedisTarget,
  connection: RedisConnectionOptions,
  cluster: { channel: string; commandClient: RedisClient },
): RedisSubscriber {
  if (!isClusterTarget(target)) return { conn: createRedisClient(target, connection) as Redis, sharded: false };
  const spec = target as RedisConnectionSpec;
  if (!(cluster.commandClient instanceof Cluster)) {
    throw new TokenAuthorityError(ErrorCodes.INTERNAL, 'a Cluster subscriber needs the Cluster command client');
  }
  const commandClient = cluster.commandClient;
  const slot = keySlot(cluster.channel);
  const options: RedisOptions & SlotOwnerOptions = {
    ...connection,
    Connector: SlotOwnerConnector,
    taResolveOwner: () => slotOwner(commandClient, slot, spec.nodes),
  };
  // ioredis waits for 'secureConnect' instead of 'connect' when `tls` is set.
  if (spec.tls) options.tls = {};
  if (spec.username !== undefined) options.username = spec.username;
  if (spec.password !== undefined) options.password = spec.password;
  return { conn: new Redis(options), sharded: true };
}

interface SlotOwnerOptions {
  taResolveOwner: () => Promise<RedisEndpoint>;
  tls?: object;
}

/**
 * ioredis connector that asks, on every connect, which node owns the slot: ioredis reconnects
 * through the connector, so after a failover or migration the subscriber lands on the new owner.
 */
class SlotOwnerConnector extends AbstractConnector {
  private readonly options: SlotOwnerOptions;

  constructor(options: unknown) {
    const o = options as SlotOwnerOptions & { disconnectTimeout?: number };
    super(o.disconnectTimeout ?? 2000);
    this.options = o;
  }

  async connect(): Promise<never> {
    this.connecting = true;
    const owner = await this.options.taResolveOwner();
    if (!this.connecting) throw new Error('Connection is closed.');
    const stream = this.options.tls
      ? tlsConnect({ ...this.options.tls, host: owner.host, port: owner.port })
      : createConnection({ host: owner.host, port: owner.port });
    stream.once('error', (err: Error) => {
      this.firstError = err;
    });
    this.stream = stream;
    // ioredis types the stream as its NetStream; net and tls sockets are what it expects.
    return stream as never;
  }
}

/** Where a slot lives now: CLUSTER SLOTS through the command client, else its cached map. */
async function slotOwner(client: Cluster, slot: number, seeds: readonly RedisEndpoint[]): Promise<RedisEndpoint> {
  try {
    const ranges = (await client.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number, ...unknown[]], ...unknown[]]>;
    for (const [from, to, master] of ranges) {
      if (slot >= from && slot <= to && master) return { host: String(master[0]), port: Number(master[1]) };
    }
  } catch {
    // The cluster is not reachable through the command client right now: fall back below.
  }
  const cached = client.slots[slot]?.[0];
  if (cached !== undefined) {
    const i = cached.lastIndexOf(':');
    return { host: cached.slice(0, i), port: Number(cached.slice(i + 1)) };
  }
  // No map yet: a seed node answers MOVED to SSUBSCRIBE, and the subscriber reconnects.
  return seeds[0]!;
}

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** The Redis Cluster hash slot of a key or shard channel (CRC16/XMODEM of its hash tag, mod 16384). */
export function keySlot(key: string): number {
  let bytes = Buffer.from(key, 'utf8');
  const open = bytes.indexOf(0x7b); // {
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1); // }
    if (close > open + 1) bytes = bytes.subarray(open + 1, close);
  }
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc % 16384;
}
