import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startRedis, type RedisServer } from './redis-server.js';
import { freePort } from './local-ports.js';

/** A master, one replica and one or more Sentinels watching them, all on loopback. */
export interface SentinelSetup {
  /** `redis-sentinel://127.0.0.1:<sentinel port>/<name>` */
  readonly url: string;
  readonly name: string;
  readonly master: RedisServer;
  readonly replica: RedisServer;
  readonly sentinelPort: number;
  /** Every sentinel's port (the first is `sentinelPort`). */
  readonly sentinelPorts: readonly number[];
  /** The port Sentinel currently names as master. */
  masterPort(): Promise<number>;
  /**
   * Kills the master (SIGKILL) — by default once the replica has caught up (`catchUp: false`: at
   * once, as a crash under load would) — and resolves when Sentinel has promoted the replica: a
   * Redis machine lost, and the automatic failover.
   */
  killMaster(opts?: { catchUp?: boolean }): Promise<void>;
  /** `SENTINEL FAILOVER <name>` (a planned failover); resolves once Sentinel names the replica. */
  failover(): Promise<void>;
  stop(): Promise<void>;
}

const TIMEOUT_MS = 20_000;

/**
 * Starts a master, a replica of it and a Sentinel (`redis-server <conf> --sentinel`, so no
 * separate redis-sentinel binary is needed) with quorum 1, and waits until Sentinel knows the
 * replica, so a failover can be forced at once.
 */
export async function startSentinelSetup(name = 'mymaster', opts: { sentinels?: number } = {}): Promise<SentinelSetup> {
  const count = opts.sentinels ?? 1;
  // A majority of the sentinels must agree the master is down (and elect a leader) to fail over.
  const quorum = Math.floor(count / 2) + 1;
  // No 5 s wait for more replicas before the first full sync (the Redis 7 default).
  const master = await startRedis({ args: ['--repl-diskless-sync-delay', '0'] });
  // The replica is promoted by a failover and then serves the old master's full sync.
  const replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(master.port), '--repl-diskless-sync-delay', '0'] });
  const dir = mkdtempSync(join(tmpdir(), 'ta-sentinel-'));
  const sentinelPorts: number[] = [];
  const children: ChildProcess[] = [];
  let output = '';
  for (let i = 0; i < count; i++) {
    const port = await freePort();
    sentinelPorts.push(port);
    const conf = join(dir, `sentinel-${i}.conf`);
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${master.port} ${quorum}`,
        // Known up front, so Sentinel need not wait for its periodic INFO to discover it.
        `sentinel known-replica ${name} 127.0.0.1 ${replica.port}`,
        ...sentinelPorts.slice(0, i).map((p, j) => `sentinel known-sentinel ${name} 127.0.0.1 ${p} ${'0'.repeat(39)}${j}`),
        `sentinel myid ${'0'.repeat(39)}${i}`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 5000`,
        '',
      ].join('\n'),
    );
    const child: ChildProcess = spawn('redis-server', [conf, '--sentinel'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-8192)));
    child.stderr!.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-8192)));
    children.push(child);
  }
  const sentinelPort = sentinelPorts[0]!;
  // A test run that dies early must not leave a sentinel behind.
  const killOnExit = () => children.forEach((c) => c.kill('SIGKILL'));
  process.once('exit', killOnExit);
  const admin = new Redis({ port: sentinelPort, lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: 1 });
  admin.on('error', () => {});
  const stop = async () => {
    admin.disconnect();
    process.off('exit', killOnExit);
    await Promise.all(
      children.map(async (child) => {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          await exited;
        }
      }),
    );
    rmSync(dir, { recursive: true, force: true });
    await Promise.all([master.stop(), replica.stop()]);
  };
  const masterPort = async () => Number(((await admin.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)) as [string, string])[1]);
  try {
    await until(async () => {
      if (admin.status === 'wait') await admin.connect();
      // Every sentinel known to the first (they find each other by hello messages via the master).
      const peers = (await admin.call('SENTINEL', 'SENTINELS', name)) as string[][];
      if (peers.length < count - 1) return false;
      const replicas = (await admin.call('SENTINEL', 'REPLICAS', name)) as string[][];
      return replicas.some((r) => {
        const f = Object.fromEntries(r.flatMap((_, i) => (i % 2 === 0 ? [[r[i], r[i + 1]]] : [])));
        return f.port === String(replica.port) && f.flags === 'slave' && f['master-link-status'] === 'ok';
      });
    }, `Sentinel did not see the replica within ${TIMEOUT_MS} ms:\n${output}`);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url: `redis-sentinel://127.0.0.1:${sentinelPort}/${name}`,
    name,
    master,
    replica,
    sentinelPort,
    sentinelPorts,
    masterPort,
    async killMaster(opts: { catchUp?: boolean } = {}) {
      if (opts.catchUp ?? true) {
        // Let the replica catch up first, so the promoted node holds everything acknowledged so far.
        const m = new Redis({ port: master.port });
        try {
          await m.call('WAIT', 1, 2000);
        } finally {
          m.disconnect();
        }
      }
      await master.kill();
      await until(async () => (await masterPort()) === replica.port, `Sentinel did not promote the replica within ${TIMEOUT_MS} ms:\n${output}`);
    },
    async failover() {
      await admin.call('SENTINEL', 'FAILOVER', name);
      await until(async () => (await masterPort()) === replica.port, `Sentinel did not promote the replica within ${TIMEOUT_MS} ms:\n${output}`);
    },
    stop,
  };
}

async function until(cond: () => Promise<boolean>, message: string): Promise<void> {
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    try {
      if (await cond()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(message);
    await new Promise((r) => setTimeout(r, 100));
  }
}

