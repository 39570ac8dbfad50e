import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { startRedis, type RedisServer } from './redis-server.js';
import { freePort, findOnPath } from './local-ports.js';

const run = promisify(execFile);

/** A real Redis Cluster of loopback redis-server processes, for tests. */
export interface RedisCluster {
  /** `redis-cluster://127.0.0.1:a,127.0.0.1:b,…` — every master as a seed. */
  readonly url: string;
  readonly servers: readonly RedisServer[];
  /** The port of the master that owns `key`'s slot now. */
  ownerOf(key: string): Promise<number>;
  /** The server on `port`. */
  server(port: number): RedisServer;
  /** Ports of the replicas of the master on `port` (with `replicas` > 0). */
  replicasOf(port: number): Promise<number[]>;
  /** Stops every node and removes their directories. Idempotent. */
  stop(): Promise<void>;
}

const CLUSTER_READY_TIMEOUT_MS = 20_000;

/**
 * Starts `masters` redis-server processes with cluster mode on free loopback ports, joins them with
 * `redis-cli --cluster create` (no replicas) and resolves once every node reports
 * `cluster_state:ok` with all 16384 slots assigned.
 *
 * Never skips: if redis-server cannot run a cluster (not installed, too old for sharded pub/sub,
 * built without cluster support) it prints a visible notice and throws, so the suite fails loudly.
 */
export async function startRedisCluster(masters = 3, opts: { replicas?: number; nodeTimeoutMs?: number } = {}): Promise<RedisCluster> {
  const replicas = opts.replicas ?? 0;
  await assertClusterSupport();
  const servers: RedisServer[] = [];
  const stop = async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  };
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      // The cluster bus needs a second port; the default (port + 10000) may exceed 65535.
      const busPort = await freePort();
      const args = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-port', String(busPort), '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 5000), '--repl-diskless-sync-delay', '0'];
      servers.push(
        await startRedis({ args }).catch((err: unknown) => {
          throw notice(`redis-server would not start in cluster mode: ${err instanceof Error ? err.message : String(err)}`);
        }),
      );
    }
    const addresses = servers.map((s) => `127.0.0.1:${s.port}`);
    await run(findOnPath('redis-cli')!, ['--cluster', 'create', ...addresses, '--cluster-replicas', String(replicas), '--cluster-yes'], { timeout: 30_000 });
    await waitForClusterOk(servers.map((s) => s.port));
    if (replicas > 0) await waitForReplicasInSync(servers.map((s) => s.port));
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url: `redis-cluster://${servers.map((s) => `127.0.0.1:${s.port}`).join(',')}`,
    servers,
    async ownerOf(key: string) {
      const probe = new Redis({ port: servers[0]!.port, lazyConnect: true });
      try {
        await probe.connect();
        const slot = Number(await probe.call('CLUSTER', 'KEYSLOT', key));
        const ranges = (await probe.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>;
        const range = ranges.find(([from, to]) => slot >= from && slot <= to);
        if (!range) throw new Error(`no node owns slot ${slot}`);
        return Number(range[2][1]);
      } finally {
        probe.disconnect();
      }
    },
    server(port: number) {
      const s = servers.find((x) => x.port === port);
      if (!s) throw new Error(`no cluster node on port ${port}`);
      return s;
    },
    async replicasOf(port: number) {
      const probe = new Redis({ port, lazyConnect: true });
      try {
        await probe.connect();
        const info = (await probe.info('replication')) as string;
        return [...info.matchAll(/^slave\d+:ip=[^,]+,port=(\d+),state=online/gm)].map((m) => Number(m[1]));
      } finally {
        probe.disconnect();
      }
    },
    stop,
  };
}

/** Until every replica's link to its master is up (a failover needs a synced replica). */
async function waitForReplicasInSync(ports: number[]): Promise<void> {
  const deadline = Date.now() + CLUSTER_READY_TIMEOUT_MS;
  const clients = ports.map((port) => new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 1 }));
  try {
    await Promise.all(clients.map((c) => c.connect()));
    for (;;) {
      const infos = await Promise.all(clients.map((c) => c.info('replication')));
      if (infos.every((i) => /role:master/.test(i) || /master_link_status:up/.test(i))) return;
      if (Date.now() > deadline) throw notice('the cluster replicas did not sync in time');
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    for (const c of clients) c.disconnect();
  }
}

function notice(message: string): Error {
  // Visible in the mocha output even though the failure itself is reported at the end.
  console.warn(`\n      *** Redis Cluster tests cannot run: ${message} ***\n`);
  return new Error(`Redis Cluster tests cannot run: ${message}`);
}

async function assertClusterSupport(): Promise<void> {
  const server = findOnPath('redis-server');
  const cli = findOnPath('redis-cli');
  if (!server || !cli) throw notice('redis-server and redis-cli must be on PATH (apt-get install -y redis-server)');
  const { stdout } = await run(server, ['--version']);
  const m = /v=(\d+)\.(\d+)/.exec(stdout);
  if (!m || Number(m[1]) < 7) {
    throw notice(`redis-server ${m ? `${m[1]}.${m[2]}` : '(unknown version)'} is too old: sharded pub/sub and --cluster-port need Redis 7`);
  }
}

async function waitForClusterOk(ports: number[]): Promise<void> {
  const deadline = Date.now() + CLUSTER_READY_TIMEOUT_MS;
  const clients = ports.map((port) => new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 1 }));
  try {
    await Promise.all(clients.map((c) => c.connect()));
    for (;;) {
      const infos = await Promise.all(clients.map((c) => c.call('CLUSTER', 'INFO') as Promise<string>));
      if (infos.every((i) => /cluster_state:ok/.test(i) && /cluster_slots_ok:16384/.test(i) && new RegExp(`cluster_known_nodes:${ports.length}\\b`).test(i))) return;
      if (Date.now() > deadline) {
        throw notice(`the cluster did not reach cluster_state:ok within ${CLUSTER_READY_TIMEOUT_MS} ms:\n${infos.map((i) => i.split('\n').slice(0, 3).join(' ')).join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    for (const c of clients) c.disconnect();
  }
}


