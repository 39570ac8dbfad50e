import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startRedis, type RedisServer } from './redis-server.js';
import { freePort } from './local-ports.js';

/** A master, one replica and one Sentinel watching them, all on loopback. */
export interface SentinelSetup {
  /** `redis-sentinel://127.0.0.1:<sentinel port>/<name>` */
  readonly url: string;
  readonly name: string;
  readonly master: RedisServer;
  readonly replica: RedisServer;
  readonly sentinelPort: number;
  /** The port Sentinel currently names as master. */
  masterPort(): Promise<number>;
  /**
   * Kills the master (SIGKILL) once the replica has caught up, and resolves when Sentinel has
   * promoted the replica: a Redis machine lost, and the automatic failover.
   */
  killMaster(): Promise<void>;
  stop(): Promise<void>;
}

const TIMEOUT_MS = 20_000;

/**
 * Starts a master, a replica of it and a Sentinel (`redis-server <conf> --sentinel`, so no
 * separate redis-sentinel binary is needed) with quorum 1, and waits until Sentinel knows the
 * replica, so a failover can be forced at once.
 */
export async function startSentinelSetup(name = 'mymaster'): Promise<SentinelSetup> {
  // No 5 s wait for more replicas before the first full sync (the Redis 7 default).
  const master = await startRedis({ args: ['--repl-diskless-sync-delay', '0'] });
  const replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
  const dir = mkdtempSync(join(tmpdir(), 'ta-sentinel-'));
  const sentinelPort = await freePort();
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    [
      `port ${sentinelPort}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
      // Known up front, so Sentinel need not wait for its periodic INFO to discover it.
      `sentinel known-replica ${name} 127.0.0.1 ${replica.port}`,
      `sentinel down-after-milliseconds ${name} 1000`,
      `sentinel failover-timeout ${name} 5000`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('redis-server', [conf, '--sentinel'], { stdio: ['ignore', 'pipe', 'pipe'] });
  // A test run that dies early must not leave a sentinel behind.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-8192)));
  child.stderr!.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-8192)));
  const admin = new Redis({ port: sentinelPort, lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: 1 });
  admin.on('error', () => {});
  const stop = async () => {
    admin.disconnect();
    process.off('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
    await Promise.all([master.stop(), replica.stop()]);
  };
  const masterPort = async () => Number(((await admin.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)) as [string, string])[1]);
  try {
    await until(async () => {
      if (admin.status === 'wait') await admin.connect();
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
    masterPort,
    async killMaster() {
      // Let the replica catch up first, so the promoted node holds everything acknowledged so far.
      const m = new Redis({ port: master.port });
      try {
        await m.call('WAIT', 1, 2000);
      } finally {
        m.disconnect();
      }
      await master.kill();
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

