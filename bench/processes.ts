/**
 * Separate processes for the RPC benchmarks: servers under test (the CLI's `serve` and `sidecar`,
 * the echo baseline), pinned to CPU cores with taskset so the load generator never shares the
 * measured core.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { fileURLToPath } from 'node:url';
import { freePort, findOnPath } from '../test/helpers/local-ports.js';
export { freePort, findOnPath };

/** The compiled CLI and bench entry points. */
export const CLI_JS = fileURLToPath(new URL('../src/cli.js', import.meta.url));
export const benchScript = (name: string): string => fileURLToPath(new URL(`./${name}`, import.meta.url));


/** Whether taskset exists and may set affinity here (containers sometimes forbid it). */
let tasksetOk: boolean | undefined;
export function canPin(): boolean {
  if (tasksetOk === undefined) {
    tasksetOk = findOnPath('taskset') !== undefined && spawnSync('taskset', ['-c', '0', 'true']).status === 0;
  }
  return tasksetOk;
}

/** argv prefixed with `taskset -c <cpus>` when pinning is possible and asked for. */
export function pinned(cpus: string | undefined, argv: string[]): string[] {
  return cpus !== undefined && canPin() ? ['taskset', '-c', cpus, ...argv] : argv;
}


/** A child process we started, with its output kept for error messages. */
export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
  readonly exited: Promise<number | string>;
}

const live = new Set<ChildProcess>();
let hookInstalled = false;

/** Start a child; its stdout/stderr are kept (last 64 KiB) and it dies with the bench run. */
export function startChild(name: string, argv: string[], env: NodeJS.ProcessEnv = process.env, options: { ipc?: boolean } = {}): Child {
  if (!hookInstalled) {
    hookInstalled = true;
    process.on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  const [cmd, ...args] = argv as [string, ...string[]];
  const child = spawn(cmd, args, { env, stdio: options.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let out = '';
  const keep = (chunk: Buffer) => {
    out = (out + chunk.toString()).slice(-65_536);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve(code ?? signal ?? -1);
    }),
  );
  return {
    name,
    process: child,
    output: () => out,
    exited,
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Resolves with the first stdout line that parses as JSON and satisfies `pred`. */
export function waitForJsonLine<T>(child: Child, pred: (v: Record<string, unknown>) => boolean, timeoutMs = 20_000): Promise<T> {
  return new Promise((resolve, reject) => {
    let partial = '';
    const onData = (chunk: Buffer) => {
      partial += chunk.toString();
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        try {
          const v = JSON.parse(line) as Record<string, unknown>;
          if (pred(v)) {
            done();
            resolve(v as T);
            return;
          }
        } catch {
          // not JSON
        }
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${child.name}: no ready line within ${timeoutMs} ms; output:\n${child.output().slice(-3000)}`));
    }, timeoutMs);
    const onExit = () => {
      done();
      reject(new Error(`${child.name} exited before it was ready; output:\n${child.output().slice(-3000)}`));
    };
    const done = () => {
      clearTimeout(timer);
      child.process.stdout!.off('data', onData);
      child.process.off('exit', onExit);
    };
    child.process.stdout!.on('data', onData);
    child.process.once('exit', onExit);
  });
}

function httpStatus(url: string, ca?: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const req = (url.startsWith('https:') ? httpsRequest : request)(url, { timeout: 1000, ...(ca ? { ca } : {}) }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => {
      req.destroy();
      resolve(0);
    });
    req.end();
  });
}

/** Poll an HTTP URL until it answers 200 (servers at TA_LOG_LEVEL=warn print no ready line). */
export async function waitForHttp200(child: Child, url: string, timeoutMs = 20_000, ca?: Buffer): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.process.exitCode !== null) throw new Error(`${child.name} exited (${child.process.exitCode}):\n${child.output().slice(-3000)}`);
    if ((await httpStatus(url, ca)) === 200) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${child.name}: ${url} did not answer 200 within ${timeoutMs} ms; output:\n${child.output().slice(-3000)}`);
}

/** A server under test started from the CLI. */
export interface CliServer {
  readonly child: Child;
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly httpBase: string;
  stop(): Promise<void>;
}

/**
 * `node dist/src/cli.js <command>` with TA_* settings (nothing else of this process's env leaks in
 * beyond PATH/HOME), on free loopback ports, pinned to `cpus`; resolves once /healthz answers 200.
 */
export async function startCliServer(command: 'serve' | 'sidecar', env: Record<string, string>, cpus?: string, nodeArgs: string[] = [], tls?: { ca: Buffer }): Promise<CliServer> {
  const grpcPort = await freePort();
  const httpPort = await freePort();
  const child = startChild(
    `token-authority ${command}`,
    pinned(cpus, [process.execPath, ...nodeArgs, CLI_JS, command]),
    {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      TA_GRPC_ADDR: `127.0.0.1:${grpcPort}`,
      TA_HTTP_ADDR: `127.0.0.1:${httpPort}`,
      TA_LOG_LEVEL: 'warn',
      ...env,
    },
  );
  // With TA_TLS_CERT the authority's HTTP port speaks HTTPS too (tls: the CA that signed it).
  const httpBase = `${tls ? 'https' : 'http'}://127.0.0.1:${httpPort}`;
  try {
    await waitForHttp200(child, `${httpBase}/healthz`, 20_000, tls?.ca);
  } catch (err) {
    await child.stop(1000);
    throw err;
  }
  return { child, grpcPort, httpPort, httpBase, stop: () => child.stop() };
}

/** The bare grpc-js echo server (bench/echo-server.ts), pinned to `cpus`. */
export async function startEchoServer(cpus?: string): Promise<{ child: Child; port: number; stop(): Promise<void> }> {
  const child = startChild('echo-server', pinned(cpus, [process.execPath, benchScript('echo-server.js')]));
  const { port } = await waitForJsonLine<{ port: number }>(child, (v) => typeof v.port === 'number');
  return { child, port, stop: () => child.stop() };
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on every mainstream Linux). */
const USER_HZ = 100;

/** utime + stime of one /proc/<pid>/stat line, and its parent pid. */
function parseStat(text: string): { ppid: number; cpuMs: number } | undefined {
  // The command name is in parentheses and may contain spaces: fields start after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const ppid = Number(rest[1]);
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(ppid) || !Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return { ppid, cpuMs: ((utime + stime) * 1000) / USER_HZ };
}

/**
 * CPU time (user + system, ms) used so far by a process and all its live descendants (a cluster
 * primary and its workers), from /proc. Undefined where /proc is not available.
 */
export function processTreeCpuMs(rootPid: number): number | undefined {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return undefined;
  }
  const stats = new Map<number, { ppid: number; cpuMs: number }>();
  for (const e of entries) {
    try {
      const s = parseStat(readFileSync(`/proc/${e}/stat`, 'utf8'));
      if (s) stats.set(Number(e), s);
    } catch {
      // exited meanwhile
    }
  }
  if (!stats.has(rootPid)) return undefined;
  let total = 0;
  const stack = [rootPid];
  while (stack.length) {
    const pid = stack.pop() as number;
    total += stats.get(pid)?.cpuMs ?? 0;
    for (const [child, s] of stats) if (s.ppid === pid) stack.push(child);
  }
  return total;
}
