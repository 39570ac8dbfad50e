/**
 * `npm run bench`: every figure of the performance issue, each next to its baseline measured in
 * the same run, written to bench/results/<date>.{json,md,svg} (and latest.{md,svg}).
 *
 *   npm run bench                       everything, ~4 minutes
 *   npm run bench -- --quick            a few seconds per section (~30 s): checks the harness, not for figures
 *   npm run bench -- --only verify,rpc.issue,memory
 *   npm run bench -- --duration 5       seconds per RPC round per side (default 2, 5 rounds)
 *   npm run bench -- --profile          servers under test run with --cpu-prof; summaries go into the results
 *   npm run bench -- --log-level info   servers under test at the product's default log level (default: warn)
 *   npm run bench -- --update-readme    also refresh the figures table in docs/performance.md
 *
 * Needs redis-server (for the blacklist baseline, the RPC servers and propagation) and h2load
 * (Debian/Ubuntu: apt-get install -y nghttp2-client) for the RPC figures; without them those rows
 * say "not measured" and why.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startRedis, type RedisServer } from '../test/helpers/redis-server.js';
import { failed, notMeasured, TARGETS, type Figure } from './figures.js';
import { H2LOAD_INSTALL, h2loadAvailable } from './h2load.js';
import { describeMachine } from './machine.js';
import { benchMemory, benchRedisLoad } from './memory.js';
import { benchMixed, benchVerifyUncached, createMicroContext, runMicro } from './micro.js';
import { benchVerifyBound } from './verify-bound.js';
import { canPin, findOnPath } from './processes.js';
import { benchPropagation } from './propagation.js';
import { consoleTable, summarize, updateReadme, writeResults, type RunResults } from './report.js';
import { RPC_SCENARIOS, runRpcBenchmarks } from './rpc.js';
import { benchReplicaWait } from './replica-wait.js';

export interface BenchOptions {
  quick: boolean;
  /** Figure ids or id prefixes to run (e.g. "verify", "rpc.issue"); empty = all. */
  only: string[];
  /** Seconds per RPC round per side. */
  durationS: number;
  rpcRounds: number;
  microRoundMs: number;
  microRounds: number;
  memoryEntries: number;
  verifiers: number;
  revocations: number;
  profile: boolean;
  updateReadme: boolean;
  allAlgorithms: boolean;
  /** TA_LOG_LEVEL of the servers under test (default warn: no access lines; `info` is the product default). */
  logLevel: string;
  outDir: string;
}

const RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url));
const README = fileURLToPath(new URL('../../docs/performance.md', import.meta.url));

export function parseArgs(argv: readonly string[]): BenchOptions {
  const has = (f: string) => argv.includes(`--${f}`);
  const value = (f: string): string | undefined => {
    const i = argv.indexOf(`--${f}`);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`--${f} needs a value`);
    return v;
  };
  const num = (f: string, dflt: number): number => {
    const v = value(f);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${f} must be a positive number, got "${v}"`);
    return n;
  };
  const known = new Set(['quick', 'only', 'duration', 'rounds', 'profile', 'update-readme', 'all-algs', 'log-level', 'out', 'memory-entries', 'verifiers', 'revocations', 'help']);
  for (const a of argv) if (a.startsWith('--') && !known.has(a.slice(2))) throw new Error(`unknown option ${a} (see bench/run.ts)`);
  const quick = has('quick');
  return {
    quick,
    only: (value('only') ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    durationS: num('duration', quick ? 0.5 : 2),
    rpcRounds: num('rounds', quick ? 1 : 5),
    microRoundMs: quick ? 60 : 250,
    microRounds: quick ? 4 : 12,
    memoryEntries: num('memory-entries', quick ? 100_000 : 1_000_000),
    verifiers: num('verifiers', quick ? 3 : 10),
    revocations: num('revocations', quick ? 20 : 200),
    profile: has('profile'),
    updateReadme: has('update-readme'),
    allAlgorithms: has('all-algs'),
    logLevel: logLevelArg(value('log-level')),
    outDir: value('out') ?? RESULTS_DIR,
  };
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
function logLevelArg(v: string | undefined): string {
  if (v === undefined) return 'warn';
  if (!LOG_LEVELS.includes(v)) throw new Error(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got "${v}"`);
  return v;
}

/** Does the --only list select this figure id? */
export function selector(only: readonly string[]): (id: string) => boolean {
  if (only.length === 0) return () => true;
  return (id) => only.some((n) => id === n || id.startsWith(`${n}.`) || n.startsWith(`${id}.`));
}

/** Pin a running redis-server (all its threads) to `cpus`, found by the pid it reports; returns the pid. */
async function pinRedis(url: string, cpus: string): Promise<number | undefined> {
  const r = new Redis(url, { lazyConnect: true });
  try {
    await r.connect();
    const pid = /process_id:(\d+)/.exec(await r.info('server'))?.[1];
    if (pid && canPin()) execFileSync('taskset', ['-a', '-p', '-c', cpus, pid], { stdio: 'ignore' });
    return pid ? Number(pid) : undefined;
  } finally {
    r.disconnect();
  }
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

export async function runBench(o: BenchOptions): Promise<RunResults> {
  const started = performance.now();
  const only = selector(o.only);
  const machine = describeMachine();
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  log(`token-authority benchmarks: ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.nodeVersion}, load average ${machine.loadAverageAtStart}${o.quick ? ' (quick run: harness check, not figures)' : ''}`);
  const figures: Figure[] = [];
  const redisAvailable = findOnPath('redis-server') !== undefined;
  const noRedis = 'not measured: redis-server is not on PATH (apt-get install -y redis-server)';
  const h2ok = h2loadAvailable();
  if (!h2ok) {
    log(`\nh2load is not installed: the RPC figures need it. Install it with:\n\n    ${H2LOAD_INSTALL}\n\n(Debian/Ubuntu, as root; the package is nghttp2-client). Continuing without the RPC figures.\n`);
  }
  if (!canPin()) log('taskset is not available: servers and load generators will not be pinned to separate cores (the results say so).');

  // 1. In-process micro-benchmarks (first, while nothing else runs).
  const microIds = ['verify.uncached', 'verify.uncached.cache-off', 'verify.cached', 'verify.bound.mtls', 'verify.bound.dpop', 'sign', 'verify.mixed'];
  let redis: RedisServer | undefined;
  let redisPid: number | undefined;
  const needsRedis = ['verify.mixed', ...RPC_SCENARIOS.map((s) => s.id), 'propagation.p99', 'propagation.max'].some(only);
  try {
    if (needsRedis && redisAvailable) {
      redis = await startRedis();
      redisPid = await pinRedis(redis.url, '1');
    }
    if (microIds.some(only)) {
      log('micro-benchmarks (in-process, alternating rounds against raw node:crypto) …');
      const ctx = await createMicroContext({ alg: 'ES256', ...(o.quick ? { cacheCapacity: 1000, revocations: 1000 } : {}) });
      const mo = { roundMs: o.microRoundMs, rounds: o.microRounds };
      try {
        figures.push(...(await runMicro(ctx, mo, only)));
        figures.push(...(await benchVerifyBound(ctx.key, mo, only)));
        if (only('verify.mixed')) {
          if (!redis) figures.push(notMeasured('verify.mixed', 'Mixed workload vs the blacklist design', TARGETS.mixed, noRedis));
          else {
            try {
              figures.push(await benchMixed(ctx, { ...mo, roundMs: o.quick ? 100 : 500, rounds: o.quick ? 2 : 6, redisUrl: redis.url }));
            } catch (err) {
              figures.push(failed('verify.mixed', 'Mixed workload vs the blacklist design', TARGETS.mixed, err));
            }
          }
        }
      } finally {
        await ctx.close();
      }
      if (o.allAlgorithms) {
        for (const alg of ['EdDSA', 'RS256'] as const) {
          // RS256 signs ~2k/s: a smaller cache keeps the token pool quick to make.
          const c = await createMicroContext({ alg, cacheCapacity: alg === 'RS256' || o.quick ? 1000 : 10_000, revocations: 1000 });
          try {
            figures.push(await benchVerifyUncached(c, mo));
          } finally {
            await c.close();
          }
        }
      }
    }

    // 2. Memory and log load (child process with --expose-gc).
    if (['memory.per-revocation', 'memory.load'].some(only)) {
      log(`memory: ${o.memoryEntries.toLocaleString('en-US')} revocations in a verifier …`);
      try {
        figures.push(...(await benchMemory(o.memoryEntries)));
      } catch (err) {
        figures.push(failed('memory.per-revocation', 'Verifier memory per active revocation', TARGETS.memoryPerRevocation, err));
      }
    }

    // 3. RPC figures (separate processes, pinned, h2load).
    const rpcSelected = RPC_SCENARIOS.filter((s) => only(s.id));
    if (rpcSelected.length) {
      if (!h2ok || !redis) {
        for (const s of rpcSelected) figures.push(notMeasured(s.id, s.title, s.target, !h2ok ? `not measured: h2load is missing (${H2LOAD_INSTALL})` : noRedis));
      } else {
        log(`RPC figures (servers on core 0, load generators and redis-server on core 1; ${o.rpcRounds} rounds of ${o.durationS} s per side) …`);
        const profileDir = o.profile ? join(o.outDir, 'profiles') : undefined;
        if (profileDir) mkdirSync(profileDir, { recursive: true });
        figures.push(
          ...(await runRpcBenchmarks(
            {
              durationS: o.durationS,
              rounds: o.rpcRounds,
              warmupS: o.quick ? 0.3 : 1,
              clients: 8,
              streams: 16,
              serverCpus: '0',
              loadCpus: '1',
              redisUrl: redis.url,
              revokeSamples: o.quick ? 200 : 2000,
              logLevel: o.logLevel,
              ...(redisPid ? { redisPid } : {}),
              ...(profileDir ? { profileDir } : {}),
            },
            only,
            log,
          )),
        );
      }
    }

    // 4. Revocation propagation to N verifier processes.
    if (['propagation.p99', 'propagation.max'].some(only)) {
      if (!redis) {
        figures.push(notMeasured('propagation.p99', 'Revocation propagation, p99', TARGETS.propagationP99, noRedis));
      } else {
        log(`propagation: ${o.revocations} revocations to ${o.verifiers} verifier processes …`);
        try {
          figures.push(...(await benchPropagation({ redisUrl: redis.url, verifiers: o.verifiers, revocations: o.revocations })));
        } catch (err) {
          figures.push(failed('propagation.p99', 'Revocation propagation, p99', TARGETS.propagationP99, err));
        }
      }
    }
  } finally {
    await redis?.stop();
  }

  // 5. Loading a large log from a real Redis (its own redis-server: 1M entries take ~0.5 GB there).
  if (only('memory.load-redis')) {
    if (!redisAvailable) figures.push(notMeasured('memory.load-redis', 'Load revocations from the Redis log', TARGETS.load1M, noRedis));
    else {
      // Filling Redis runs at ~25k revocations/s: a quick run keeps it to a second.
      const entries = o.quick ? Math.min(o.memoryEntries, 20_000) : o.memoryEntries;
      log(`memory: filling a Redis log with ${entries.toLocaleString('en-US')} revocations, then loading it …`);
      const big = await startRedis();
      try {
        await pinRedis(big.url, '1');
        figures.push(await benchRedisLoad(entries, big.url));
      } catch (err) {
        figures.push(failed('memory.load-redis', 'Load revocations from the Redis log', TARGETS.load1M, err));
      } finally {
        await big.stop();
      }
    }
  }

  // 6. What waiting for a replica costs Revoke and Refresh (its own primary and replica).
  if (['replica.revoke', 'replica.refresh'].some(only)) {
    const titles = { 'replica.revoke': 'Revoke RPC latency waiting for a replica', 'replica.refresh': 'Refresh RPC latency waiting for a replica' } as const;
    if (!redisAvailable) for (const [id, title] of Object.entries(titles)) figures.push(notMeasured(id, title, undefined, noRedis));
    else {
      const calls = o.quick ? 100 : 1000;
      log(`replica wait: ${calls} sequential Revoke and Refresh calls with TA_REDIS_WAIT_REPLICAS=1 and =0 …`);
      try {
        figures.push(...(await benchReplicaWait(calls)));
      } catch (err) {
        for (const [id, title] of Object.entries(titles)) figures.push(failed(id, title, undefined, err));
      }
    }
  }

  const results: RunResults = {
    command,
    machine,
    settings: { ...o, outDir: undefined },
    durationSeconds: (performance.now() - started) / 1000,
    figures,
    summary: summarize(figures),
  };
  return results;
}

const USAGE = `npm run bench [-- options]
  --quick               a few seconds per section (~30 s): checks the harness; results go to <date>-quick.*
  --only <ids>          comma-separated figure ids or prefixes: verify, sign, memory, rpc, rpc.issue, propagation …
  --duration <s>        seconds per RPC round and side (default 2; 5 rounds)
  --rounds <n>          RPC rounds per side (default 5)
  --memory-entries <n>  revocations for the memory and load figures (default 1000000)
  --verifiers <n>       verifier processes for propagation (default 10)
  --revocations <n>     revocations timed for propagation (default 200)
  --profile             run servers under test with node --cpu-prof; summaries go into the results
  --log-level <level>   TA_LOG_LEVEL of the servers under test (default warn; info is the product's default)
  --all-algs            also the uncached verify figure for EdDSA and RS256
  --update-readme       rewrite the figures table in docs/performance.md (full runs)
  --out <dir>           where results go (default bench/results)
`;

async function main(): Promise<void> {
  if (process.argv.includes('--help')) {
    process.stdout.write(USAGE);
    return;
  }
  let o: BenchOptions;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const results = await runBench(o);
  const date = results.machine.date.slice(0, 10);
  const name = o.quick ? `${date}-quick` : o.only.length ? `${date}-partial` : date;
  const paths = writeResults(results, o.outDir, name, !o.quick && o.only.length === 0);
  log(`\n${consoleTable(results.figures)}\n`);
  const s = results.summary;
  log(`targets: ${s.met} met, ${s.missed} missed, ${s.failed} failed, ${s.notMeasured} not measured (${Math.round(results.durationSeconds)} s)`);
  log(`wrote ${paths.join(', ')}`);
  if (o.updateReadme) log(updateReadme(README, results) ? 'updated the figures table in docs/performance.md' : 'docs/performance.md has no bench markers: not updated');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`bench: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}
