import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, findOnPath } from './local-ports.js';

/** A redis-server child process for tests. */
export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** Its data directory (AOF files live here and survive kill()/restart()). */
  readonly dir: string;
  /** Graceful shutdown (SIGTERM), then removes the data directory. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL: no shutdown, no final fsync. The directory stays, for restart(). */
  kill(): Promise<void>;
  /** Start again on the same port with the same directory (so AOF data survives). */
  restart(): Promise<void>;
  /** SIGSTOP: connections stay open but nothing is answered (a hung server, not a dead one). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
}

export interface StartRedisOptions {
  /** `appendonly yes` + `appendfsync always`: every acknowledged write is on disk. */
  aof?: boolean;
  /** Extra redis-server arguments, e.g. ['--maxmemory', '10mb']. */
  args?: string[];
}

const STARTUP_TIMEOUT_MS = 10_000;
const live = new Set<ChildProcess>();
/** Data directories not yet removed by stop(). */
const dirs = new Set<string>();
let exitHookInstalled = false;

/**
 * Spawn a private redis-server on 127.0.0.1 with a free port and its own temp directory; resolves
 * once it accepts connections. Throws (never skips) when redis-server is not installed.
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const bin = findOnPath('redis-server');
  if (!bin) {
    throw new Error(
      'redis-server is not on PATH: the Redis contract and integration tests need a real Redis server. ' +
        'Install it with `apt-get install -y redis-server` (Debian/Ubuntu; `brew install redis` on macOS).',
    );
  }
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), 'ta-redis-'));
  dirs.add(dir);
  const args = (port: number) => [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--save', '',
    '--dir', dir,
    '--appendonly', options.aof ? 'yes' : 'no',
    ...(options.aof ? ['--appendfsync', 'always'] : []),
    '--daemonize', 'no',
    '--logfile', '',
    ...(options.args ?? []),
  ];

  let child: ChildProcess | undefined;
  let port = 0;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      child = await spawnReady(bin, args(port));
      break;
    } catch (err) {
      // Another process took the port between our probe and redis' bind: try another one.
      if (!(err instanceof AddressInUse) || attempt >= 5) {
        rmSync(dir, { recursive: true, force: true });
        dirs.delete(dir);
        throw err;
      }
    }
  }

  let removed = false;
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    async stop() {
      if (child) await terminate(child, 'SIGTERM');
      child = undefined;
      if (!removed) rmSync(dir, { recursive: true, force: true });
      dirs.delete(dir);
      removed = true;
    },
    async kill() {
      if (child) await terminate(child, 'SIGKILL');
      child = undefined;
    },
    pause() {
      child?.kill('SIGSTOP');
    },
    resume() {
      child?.kill('SIGCONT');
    },
    async restart() {
      if (removed) throw new Error('restart() after stop(): the data directory is gone');
      if (child) await terminate(child, 'SIGTERM');
      child = undefined;
      // Same port: clients reconnect to it. The port was ours until just now; retry briefly in case
      // the kernel has not released it yet.
      for (let attempt = 1; ; attempt++) {
        try {
          child = await spawnReady(bin, args(port));
          return;
        } catch (err) {
          if (!(err instanceof AddressInUse) || attempt >= 20) throw err;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    },
  };
  return server;
}

class AddressInUse extends Error {}

function spawnReady(bin: string, args: string[]): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let output = '';
    let settled = false;
    const timer = setTimeout(() => fail(new Error(`redis-server did not start within ${STARTUP_TIMEOUT_MS} ms:\n${output}`)), STARTUP_TIMEOUT_MS);
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (settled) {
        output = output.slice(-4096);
        return;
      }
      if (/Address already in use/i.test(output)) fail(new AddressInUse(output));
      else if (/Ready to accept connections/.test(output)) {
        settled = true;
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', (err) => fail(err));
    child.once('exit', (code, signal) => {
      live.delete(child);
      if (/Address already in use/i.test(output)) fail(new AddressInUse(output));
      else fail(new Error(`redis-server exited (code ${code}, signal ${signal}) before it was ready:\n${output}`));
    });
  });
}

function terminate(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      live.delete(child);
      resolve();
      return;
    }
    child.once('exit', () => {
      live.delete(child);
      resolve();
    });
    child.kill(signal);
    // A paused (SIGSTOP) server only acts on SIGTERM once continued.
    if (signal !== 'SIGKILL') child.kill('SIGCONT');
  });
}



/** A test run that dies or exits early must not leave redis-servers behind. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
}
