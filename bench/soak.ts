/**
 * Soak: sustained mixed load for a long time, to find what only time shows — memory that grows,
 * latency that creeps up, errors that start after a while. Not part of CI.
 *
 *   npm run soak                       # 600 s
 *   npm run soak -- --duration 30      # a quick run
 *   node dist/bench/soak.js --duration 60 --loops 4 --interval 10
 *
 * It starts its own redis-server, one `token-authority serve` and one `token-authority sidecar`
 * (real processes, loopback only), then runs the fault suite's mixed load (test/helpers/load.ts:
 * Issue → Verify at the authority and at the sidecar → Refresh → Revoke → Verify) from `--loops`
 * concurrent loops. Every `--interval` seconds it prints ops/s by method, errors by code, p99
 * latency by method, the RSS of the authority, the sidecar and redis-server (VmRSS from
 * /proc/<pid>/status) and the V8 heap in use of the two Node processes (from their /metrics), and
 * at the end the RSS trend (average of the first third of the samples against the last third).
 * Everything goes to bench/results/soak-<date>.json.
 *
 * Heap snapshots: both Node children run with --heapsnapshot-signal=SIGUSR2 in a directory of
 * their own (printed at start; `--heap-dir <dir>` to choose it). The soak signals the sidecar and
 * the authority once the warm-up is over, at half time and just before the end, so the three
 * snapshots can be compared in Chrome DevTools (Memory → Comparison) for objects that only
 * accumulate. `--no-heap-snapshots` turns this off.
 *
 * Lifetimes are short by default (access tokens 30 s, sessions 2 min, leeway 5 s): the state the
 * design keeps on purpose — revocation entries until the tokens they cover expire, sessions until
 * they end — then reaches its steady size within about a minute, so what still grows after that is
 * a leak, not the design.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { authorityClient } from '../test/helpers/grpc-client.js';
import { grpcVerifier, MixedLoad, type MethodSummary } from '../test/helpers/load.js';
import { startRedis } from '../test/helpers/redis-server.js';
import { parseDurationMs } from '../src/shared/duration.js';
import { freePort } from '../test/helpers/local-ports.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url));
const ISSUER = 'https://soak.test';

interface Options {
  durationS: number;
  intervalS: number;
  loops: number;
  accessTtl: string;
  sessionLifetime: string;
  clockSkew: string;
  out: string | undefined;
  heapDir: string | undefined;
  heapSnapshots: boolean;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '600' },
      interval: { type: 'string', default: '10' },
      loops: { type: 'string', default: '4' },
      'access-ttl': { type: 'string', default: '30s' },
      'session-lifetime': { type: 'string', default: '2m' },
      'clock-skew': { type: 'string', default: '5s' },
      out: { type: 'string' },
      'heap-dir': { type: 'string' },
      'no-heap-snapshots': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: soak [--duration <s>=600] [--interval <s>=10] [--loops <n>=4] [--access-ttl 30s] [--session-lifetime 2m] [--clock-skew 5s] [--out <file.json>] [--heap-dir <dir>] [--no-heap-snapshots]\n');
    process.exit(0);
  }
  for (const name of ['access-ttl', 'session-lifetime', 'clock-skew'] as const) {
    if (parseDurationMs(values[name]) === undefined) {
      process.stderr.write(`soak: --${name} must be a duration such as 30s or 2m (got "${values[name]}")\n`);
      process.exit(2);
    }
  }
  const num = (name: string, text: string, min: number) => {
    const n = Number(text);
    if (!Number.isFinite(n) || n < min) {
      process.stderr.write(`soak: --${name} must be a number ≥ ${min} (got "${text}")\n`);
      process.exit(2);
    }
    return n;
  };
  return {
    durationS: num('duration', values.duration, 1),
    intervalS: num('interval', values.interval, 1),
    loops: Math.floor(num('loops', values.loops, 1)),
    accessTtl: values['access-ttl'],
    sessionLifetime: values['session-lifetime'],
    clockSkew: values['clock-skew'],
    out: values.out,
    heapDir: values['heap-dir'],
    heapSnapshots: !values['no-heap-snapshots'],
  };
}


/** A CLI child whose output is kept only as a short tail (the run must not grow with its logs). */
interface Server {
  name: string;
  child: ChildProcess;
  grpcPort: number;
  httpPort: number;
  tail(): string;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

async function startServer(name: string, command: 'serve' | 'sidecar', env: Record<string, string>, heapDir?: string): Promise<Server> {
  const grpcPort = await freePort();
  const httpPort = await freePort();
  // With heapDir: SIGUSR2 writes a heap snapshot into it (the child's working directory).
  const cwd = heapDir ? join(heapDir, name) : undefined;
  if (cwd) mkdirSync(cwd, { recursive: true });
  const child = spawn(process.execPath, [...(cwd ? ['--heapsnapshot-signal=SIGUSR2'] : []), CLI, command], {
    cwd,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      TA_GRPC_ADDR: `127.0.0.1:${grpcPort}`,
      TA_HTTP_ADDR: `127.0.0.1:${httpPort}`,
      TA_ISSUER: ISSUER,
      // Warnings and errors only: an access line per call would be most of the work.
      TA_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-16_384);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => children.delete(child));
  // Ready when /healthz answers 200 (keys loaded, store reachable, revocations loaded).
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${tail}`);
    try {
      const res = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${name} not healthy within 30 s:\n${tail}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    name,
    child,
    grpcPort,
    httpPort,
    tail: () => tail,
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Resident set size of a process in MiB, from /proc (Linux); NaN elsewhere or once it has exited. */
function rssMiB(pid: number | undefined): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : NaN;
  } catch {
    return NaN;
  }
}

/** V8 heap in use (MiB) from a Node child's Prometheus /metrics; NaN when it does not answer. */
async function heapUsedMiB(httpPort: number): Promise<number> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    const m = /^ta_process_nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)/m.exec(text);
    return m ? r1(Number(m[1]) / 1024 / 1024) : NaN;
  } catch {
    return NaN;
  }
}

interface Sample {
  /** Seconds since the load started. */
  t: number;
  opsPerSec: Record<string, number>;
  errors: Record<string, Record<string, number>>;
  p99Ms: Record<string, number>;
  rssMiB: { authority: number; sidecar: number; redis: number };
  heapUsedMiB: { authority: number; sidecar: number };
  redisUsedMiB: number;
  sidecar: { appliedSeq: number; revocationEntries: number; cacheSize: number };
}

const avg = (xs: number[]) => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);
const r1 = (x: number) => Math.round(x * 10) / 10;

/** First, middle and last third of the samples: averages and growth. */
function trend(values: number[]): { firstThird: number; middleThird: number; lastThird: number; growthMiB: number; growthPct: number; verdict: string } {
  const n = values.length;
  const third = Math.max(1, Math.floor(n / 3));
  const first = avg(values.slice(0, third));
  const middle = avg(values.slice(third, n - third));
  const last = avg(values.slice(n - third));
  const growth = last - first;
  const pct = (growth / first) * 100;
  // Flat: within 5 % or 5 MiB, whichever is larger; growth past the middle third says it is still rising.
  const flat = growth <= Math.max(5, first * 0.05);
  const stillRising = Number.isFinite(middle) && last - middle > Math.max(5, middle * 0.05);
  const verdict = flat ? 'flat' : stillRising ? 'growing (still rising in the last third)' : 'grew, then levelled off (warm-up)';
  return { firstThird: r1(first), middleThird: r1(middle), lastThird: r1(last), growthMiB: r1(growth), growthPct: r1(pct), verdict };
}

async function main(): Promise<void> {
  const opts = options();
  const startedAt = new Date();
  console.log(`soak: ${opts.durationS} s of mixed load from ${opts.loops} loops, a sample every ${opts.intervalS} s (access tokens ${opts.accessTtl}, sessions ${opts.sessionLifetime}, leeway ${opts.clockSkew})`);

  const redis = await startRedis();
  const keyDir = mkdtempSync(join(tmpdir(), 'ta-soak-keys-'));
  const heapDir = opts.heapSnapshots ? (opts.heapDir ?? mkdtempSync(join(tmpdir(), 'ta-soak-heap-'))) : undefined;
  let authority: Server | undefined;
  let sidecar: Server | undefined;
  const admin = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  const cleanup = async () => {
    await sidecar?.stop().catch(() => undefined);
    await authority?.stop().catch(() => undefined);
    admin.disconnect();
    await redis.stop();
    rmSync(keyDir, { recursive: true, force: true });
  };

  try {
    authority = await startServer('authority', 'serve', {
      TA_REDIS_URL: redis.url,
      TA_KEY_DIR: keyDir,
      TA_ACCESS_TTL: opts.accessTtl,
      TA_MAX_ACCESS_TTL: opts.accessTtl,
      TA_REFRESH_TTL: opts.sessionLifetime,
      TA_SESSION_MAX_LIFETIME: opts.sessionLifetime,
      TA_CLOCK_SKEW: opts.clockSkew,
      // One loopback caller makes all the load: the per-caller limits would cap it.
      TA_RATE_LIMIT_ISSUE: 'off',
      TA_RATE_LIMIT_REFRESH: 'off',
      TA_RATE_LIMIT_REVOKE: 'off',
    }, heapDir);
    sidecar = await startServer('sidecar', 'sidecar', {
      TA_REDIS_URL: redis.url,
      TA_AUTHORITY_URL: `http://127.0.0.1:${authority.httpPort}`,
      TA_MAX_ACCESS_TTL: opts.accessTtl,
      TA_CLOCK_SKEW: opts.clockSkew,
      TA_INSTANCE_ID: 'soak-sidecar',
      TA_AUDIENCE: '*',
    }, heapDir);
    await admin.connect();
    const redisPid = Number(/process_id:(\d+)/.exec(await admin.info('server'))?.[1]);
    if (heapDir) console.log(`soak: heap snapshots (SIGUSR2) go to ${heapDir}/{authority,sidecar}`);
    const snapshots: { t: number; label: string }[] = [];
    const snapshot = (label: string, t: number) => {
      if (!heapDir) return;
      authority!.child.kill('SIGUSR2');
      sidecar!.child.kill('SIGUSR2');
      snapshots.push({ t, label });
      console.log(`soak: heap snapshot "${label}" requested at ${t} s`);
    };
    console.log(`soak: redis ${redis.url}, authority pid ${authority.child.pid} (gRPC ${authority.grpcPort}), sidecar pid ${sidecar.child.pid} (gRPC ${sidecar.grpcPort})`);

    const authorityRpc = authorityClient(authority.grpcPort, { deadlineMs: 10_000 });
    const sidecarRpc = authorityClient(sidecar.grpcPort, { deadlineMs: 10_000 });
    const load = new MixedLoad({ authority: authorityRpc, verifiers: [grpcVerifier('sidecar', sidecarRpc)], loops: opts.loops });
    const samples: Sample[] = [];
    const totals: Record<string, { calls: number; errors: Record<string, number>; worstP99Ms: number }> = {};

    // Snapshot times: after the warm-up (the state kept by design is full), half time, the end.
    const warmUpS = Math.max(parseDurationMs(opts.accessTtl)! + parseDurationMs(opts.clockSkew)!, parseDurationMs(opts.sessionLifetime)!) / 1000 + opts.intervalS;
    const pendingSnapshots =
      opts.durationS > 3 * warmUpS
        ? [{ at: warmUpS, label: 'after-warm-up' }, { at: opts.durationS / 2, label: 'half-time' }, { at: opts.durationS - 2 * opts.intervalS, label: 'end' }]
        : [];
    const t0 = performance.now();
    load.start();
    const endAt = t0 + opts.durationS * 1000;
    let lastAt = t0;
    while (performance.now() < endAt) {
      const wait = Math.min(opts.intervalS * 1000, endAt - performance.now());
      await new Promise((r) => setTimeout(r, Math.max(0, wait)));
      const now = performance.now();
      const windowS = (now - lastAt) / 1000;
      lastAt = now;
      const summary: Record<string, MethodSummary> = load.stats.summary(true);
      const status = (await (await fetch(`http://127.0.0.1:${sidecar.httpPort}/status`)).json()) as {
        revocation: { appliedSeq: number; entries: { jti: number; sid: number; sub: number } };
        cache: { size: number };
      };
      const usedRss = /used_memory_rss:(\d+)/.exec(await admin.info('memory'));
      const sample: Sample = {
        t: Math.round((now - t0) / 100) / 10,
        opsPerSec: {},
        errors: {},
        p99Ms: {},
        rssMiB: { authority: rssMiB(authority.child.pid), sidecar: rssMiB(sidecar.child.pid), redis: rssMiB(redisPid) },
        heapUsedMiB: { authority: await heapUsedMiB(authority.httpPort), sidecar: await heapUsedMiB(sidecar.httpPort) },
        redisUsedMiB: usedRss ? r1(Number(usedRss[1]) / 1024 / 1024) : NaN,
        sidecar: {
          appliedSeq: status.revocation.appliedSeq,
          revocationEntries: status.revocation.entries.jti + status.revocation.entries.sid + status.revocation.entries.sub,
          cacheSize: status.cache.size,
        },
      };
      for (const [method, s] of Object.entries(summary)) {
        sample.opsPerSec[method] = Math.round(s.calls / windowS);
        sample.p99Ms[method] = s.p99Ms;
        if (Object.keys(s.errors).length > 0) sample.errors[method] = s.errors;
        const tot = (totals[method] ??= { calls: 0, errors: {}, worstP99Ms: 0 });
        tot.calls += s.calls;
        for (const [code, n] of Object.entries(s.errors)) tot.errors[code] = (tot.errors[code] ?? 0) + n;
        tot.worstP99Ms = Math.max(tot.worstP99Ms, s.p99Ms);
      }
      samples.push(sample);
      while (pendingSnapshots.length > 0 && sample.t >= pendingSnapshots[0]!.at) snapshot(pendingSnapshots.shift()!.label, sample.t);
      const errs = Object.entries(sample.errors).map(([m, e]) => `${m} ${JSON.stringify(e)}`).join(' ');
      console.log(
        `[${sample.t.toFixed(0).padStart(4)} s] ops/s ${Object.entries(sample.opsPerSec).map(([m, v]) => `${m} ${v}`).join(', ')} | ` +
          `p99 ms ${Object.entries(sample.p99Ms).map(([m, v]) => `${m} ${v}`).join(', ')} | errors ${errs || 'none'} | ` +
          `RSS MiB authority ${sample.rssMiB.authority}, sidecar ${sample.rssMiB.sidecar}, redis ${sample.rssMiB.redis} | heap MiB authority ${sample.heapUsedMiB.authority}, sidecar ${sample.heapUsedMiB.sidecar} | redis used ${sample.redisUsedMiB} MiB | sidecar entries ${sample.sidecar.revocationEntries}`,
      );
    }
    await load.stop();
    authorityRpc.close();
    sidecarRpc.close();

    const rss = {
      authority: trend(samples.map((s) => s.rssMiB.authority)),
      sidecar: trend(samples.map((s) => s.rssMiB.sidecar)),
      redis: trend(samples.map((s) => s.rssMiB.redis)),
      authorityHeap: trend(samples.map((s) => s.heapUsedMiB.authority)),
      sidecarHeap: trend(samples.map((s) => s.heapUsedMiB.sidecar)),
    };
    // The state kept by design fills up for the longest lifetime (revocation entries: access TTL +
    // leeway; sessions in Redis: the session lifetime). Only growth after that can be a leak.
    const steady = samples.filter((s) => s.t >= warmUpS);
    const rssSteady =
      steady.length >= 6
        ? {
            fromS: warmUpS,
            authority: trend(steady.map((s) => s.rssMiB.authority)),
            sidecar: trend(steady.map((s) => s.rssMiB.sidecar)),
            redis: trend(steady.map((s) => s.rssMiB.redis)),
            authorityHeap: trend(steady.map((s) => s.heapUsedMiB.authority)),
            sidecarHeap: trend(steady.map((s) => s.heapUsedMiB.sidecar)),
          }
        : undefined;
    const elapsedS = (performance.now() - t0) / 1000;
    const result = {
      kind: 'soak',
      startedAt: startedAt.toISOString(),
      durationS: r1(elapsedS),
      options: opts,
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, platform: process.platform },
      totals: Object.fromEntries(Object.entries(totals).map(([m, t]) => [m, { ...t, opsPerSec: Math.round(t.calls / elapsedS) }])),
      rounds: load.totals.rounds,
      revocationsAcked: load.totals.revocationsAcked,
      surprises: load.surprises,
      rssTrendMiB: rss,
      heapSnapshots: heapDir ? { dir: heapDir, taken: snapshots } : undefined,
      rssTrendAfterWarmUpMiB: rssSteady ?? `not enough samples: run longer than ${warmUpS + 6 * opts.intervalS} s`,
      samples,
    };
    const out = opts.out ?? join(RESULTS_DIR, `soak-${startedAt.toISOString().slice(0, 19).replace(/:/g, '-')}.json`);
    mkdirSync(join(out, '..'), { recursive: true });
    writeFileSync(out, JSON.stringify(result, null, 2) + '\n');

    console.log(`\nsoak: ${r1(elapsedS)} s, ${load.totals.rounds} rounds, ${load.totals.revocationsAcked} revocations acknowledged`);
    for (const [m, t] of Object.entries(result.totals)) {
      console.log(`  ${m.padEnd(15)} ${String(t.opsPerSec).padStart(6)} ops/s  worst p99 ${t.worstP99Ms} ms  errors ${Object.keys(t.errors).length ? JSON.stringify(t.errors) : 'none'}`);
    }
    if (Object.keys(load.surprises).length > 0) console.log(`  unexpected Verify answers: ${JSON.stringify(load.surprises)}`);
    const printTrend = (who: string, tr: ReturnType<typeof trend>) =>
      console.log(`  ${who} ${who.endsWith('Heap') ? 'V8 heap used' : 'RSS'} (MiB): first third ${tr.firstThird}, middle ${tr.middleThird}, last third ${tr.lastThird} → ${tr.growthMiB >= 0 ? '+' : ''}${tr.growthMiB} MiB (${tr.growthPct}%): ${tr.verdict}`);
    console.log('  whole run:');
    for (const [who, tr] of Object.entries(rss)) printTrend(who, tr);
    if (rssSteady) {
      console.log(`  after the warm-up (t ≥ ${warmUpS} s, once the state kept by design is full):`);
      for (const who of ['authority', 'sidecar', 'redis', 'authorityHeap', 'sidecarHeap'] as const) printTrend(who, rssSteady[who]);
    } else {
      console.log(`  (no trend after the warm-up of ${warmUpS} s: run longer than ${warmUpS + 6 * opts.intervalS} s for one)`);
    }
    console.log(`  written to ${out}`);
  } catch (err) {
    console.error(`soak failed: ${(err as Error).message}`);
    if (authority) console.error(`authority output (tail):\n${authority.tail()}`);
    if (sidecar) console.error(`sidecar output (tail):\n${sidecar.tail()}`);
    process.exitCode = 1;
  } finally {
    await cleanup();
  }
}

await main();
