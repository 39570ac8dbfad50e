/**
 * RPC figures: servers under test as separate processes (the CLI's `serve` and `sidecar`, with
 * Redis), driven by a separate load generator, each figure alternating round by round with the
 * bare grpc-js echo server (bench/echo-server.ts) driven the same way.
 *
 * Pinning (2-core machine): every server under test and the echo server run on core 0
 * (`taskset -c 0`); h2load, the Node load generator and redis-server run on core 1, so the load
 * generator never shares the measured core. Servers log at TA_LOG_LEVEL=warn (no access lines)
 * unless `--log-level` says otherwise (`info` is the product's default).
 *
 * Every h2load figure is checked for grpc-status, since h2load counts any HTTP 200 as success: a
 * grpc-js call with the same request before and after the runs must answer OK with the expected
 * content, and h2load's DATA bytes per request must match the size of that good reply.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import {
  IssueRequest,
  IssueResponse,
  RefreshRequest,
  RevokeRequest,
  VerifyRequest,
  VerifyResponse,
} from '../src/gen/tokenauthority/v1/token_authority.js';
import { OPTIONS } from '../src/config/options.js';
import { authorityClient, type AuthorityClient } from '../test/helpers/grpc-client.js';
import { createPki } from '../test/helpers/pki.js';
import { ECHO_PATH } from './echo-server.js';
import { failed, judge, notMeasured, TARGETS, type Figure, type Target } from './figures.js';
import type { GeneratorResult } from './grpc-load-generator.js';
import { readSavedReplies } from './grpc-load-generator.js';
import { checkH1Run, checkRun, grpcFrame, runH2load, writeFrame, type H2loadOptions, type H2loadResult } from './h2load.js';
import { rawGet } from './http-baseline-server.js';
import { alternate, median, round } from './measure.js';
import { benchScript, pinned, processTreeCpuMs, startChild, startCliServer, startEchoServer, waitForJsonLine, type Child, type CliServer } from './processes.js';
import { summarizeProfile, type ProfileSummary } from './profile-summary.js';
import { BENCH_AUDIENCE, BENCH_ISSUER } from './fixtures.js';
import { startOtlpSink } from './otlp-sink.js';

const SERVICE = 'tokenauthority.v1.TokenAuthorityService';

export interface RpcSettings {
  /** Measured seconds per round per side. */
  durationS: number;
  rounds: number;
  /** One unmeasured run per side first, seconds. */
  warmupS: number;
  /** h2load -c and -m (the generator uses clients × streams calls in flight over `clients` connections). */
  clients: number;
  streams: number;
  /** Cores for the servers under test and for the load generators (taskset lists). */
  serverCpus: string;
  loadCpus: string;
  redisUrl: string;
  /** redis-server's pid, to record how busy it was during each run (it shares the load core). */
  redisPid?: number;
  /** When set, servers under test run with --cpu-prof into this directory and figures carry a summary. */
  profileDir?: string;
  /** Revocations for the Revoke latency figure. */
  revokeSamples: number;
  /** TA_LOG_LEVEL of the servers under test (warn unless --log-level says otherwise). */
  logLevel: string;
}

/** What a scenario hands the h2load pair runner. */
interface LoadTarget {
  url: string;
  /** The gRPC frame posted by every request; HTTP/1.1 targets send a GET without a body. */
  bodyFile?: string;
  /** Size of a good reply's gRPC frame (DATA bytes per request); for HTTP/1.1, of the whole response. */
  goodReplyBytes: number;
  /**
   * HTTP/1.1 targets (h2load --h1): clients × streams keep-alive connections with one request in
   * flight on each (no pipelining, as nginx auth_request and Caddy forward_auth send), the same
   * number of calls in flight as the gRPC runs; these request headers.
   */
  h1?: { headers: string[] };
  /** gRPC targets: extra request headers (metadata), e.g. a `traceparent`. */
  grpcHeaders?: string[];
  /** A real grpc-js call with the same request; throws unless it answers OK as expected. */
  validate(): Promise<void>;
  /** The server process (tree), whose CPU time is read around every run. */
  pid: number | undefined;
}

interface Env {
  s: RpcSettings;
  work: string;
  keyDir: string;
  echoPort: number;
  echoPid: number | undefined;
}

/**
 * Settings of every authority under test beyond the defaults: its key directory, and the per-caller
 * rate limits off, since the whole load comes from one loopback caller (the load generator) and a
 * limit would measure the limiter, not the server.
 */
function authorityEnv(env: Env): Record<string, string> {
  const env2: Record<string, string> = { TA_KEY_DIR: env.keyDir };
  for (const name of ['TA_RATE_LIMIT_ISSUE', 'TA_RATE_LIMIT_REFRESH', 'TA_RATE_LIMIT_REVOKE']) {
    if (OPTIONS.some((o) => o.env === name)) env2[name] = 'off';
  }
  return env2;
}

/** Servers under test: pinned, optionally profiled. */
async function startServer(env: Env, command: 'serve' | 'sidecar', extra: Record<string, string>, tag: string, cpus = env.s.serverCpus, tls?: { ca: Buffer }): Promise<CliServer> {
  const nodeArgs = env.s.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(env.s.profileDir, tag)}`] : [];
  return startCliServer(command, { TA_ISSUER: BENCH_ISSUER, TA_REDIS_URL: env.s.redisUrl, TA_LOG_LEVEL: env.s.logLevel, ...(command === 'serve' ? authorityEnv(env) : {}), ...extra }, cpus, nodeArgs, tls);
}

/** Stop a server; with profiling on, summarise the profile it wrote. */
async function stopServer(env: Env, server: CliServer, tag: string): Promise<ProfileSummary | undefined> {
  await server.stop();
  if (!env.s.profileDir) return undefined;
  const dir = join(env.s.profileDir, tag);
  const file = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort().pop();
  return file ? summarizeProfile(join(dir, file), 15) : undefined;
}

function h2Options(env: Env, t: { url: string; bodyFile?: string; h1?: { headers: string[] }; grpcHeaders?: string[] }, durationS: number): H2loadOptions {
  if (t.h1) return { url: t.url, h1: true, headers: t.h1.headers, clients: env.s.clients * env.s.streams, streams: 1, durationS, warmupS: 0, cpus: env.s.loadCpus };
  return { url: t.url, ...(t.bodyFile !== undefined ? { bodyFile: t.bodyFile } : {}), ...(t.grpcHeaders ? { headers: t.grpcHeaders } : {}), clients: env.s.clients, streams: env.s.streams, durationS, warmupS: 0, cpus: env.s.loadCpus };
}

function echoTarget(env: Env, bodyFile: string): LoadTarget {
  return {
    url: `http://127.0.0.1:${env.echoPort}${ECHO_PATH}`,
    bodyFile,
    pid: env.echoPid,
    goodReplyBytes: readFileSync(bodyFile).length,
    async validate() {
      /* the echo server answers every request with its own bytes; DATA size is the check */
    },
  };
}

interface PairOutcome {
  figure: Omit<Figure, 'id' | 'title' | 'met'>;
}

/** ", plus redis-server at N%" when Redis did measurable work during these runs. */
function redisBusy(rs: readonly CheckedRun[]): string {
  const r = median(rs.map((x) => x.redisUtilization ?? NaN).filter(Number.isFinite));
  return Number.isFinite(r) && r >= 0.05 ? `, plus redis-server at ${Math.round(r * 100)}%` : '';
}

/** One h2load run, with the server's CPU use over it. */
interface CheckedRun {
  h2: H2loadResult;
  /** Server CPU time / wall time over the run (1 = one core fully busy); undefined without /proc. */
  utilization: number | undefined;
  /** The same for redis-server, which shares the load generator's core. */
  redisUtilization: number | undefined;
}

/** CPU share of a process over a wall-clock span, from two readings. */
function share(before: number | undefined, after: number | undefined, wallMs: number): number | undefined {
  return before !== undefined && after !== undefined ? (after - before) / wallMs : undefined;
}

async function runChecked(env: Env, t: LoadTarget, durationS: number, problems: string[], label: string): Promise<CheckedRun> {
  const cpu0 = t.pid ? processTreeCpuMs(t.pid) : undefined;
  const r0 = env.s.redisPid ? processTreeCpuMs(env.s.redisPid) : undefined;
  const w0 = performance.now();
  const h2 = await runH2load(h2Options(env, t, durationS));
  const wall = performance.now() - w0;
  const cpu1 = t.pid ? processTreeCpuMs(t.pid) : undefined;
  const r1 = env.s.redisPid ? processTreeCpuMs(env.s.redisPid) : undefined;
  const problem = (t.h1 ? checkH1Run : checkRun)(h2, t.goodReplyBytes, env.s.clients * env.s.streams);
  if (problem) problems.push(`${label}: ${problem}`);
  return { h2, utilization: share(cpu0, cpu1, wall), redisUtilization: share(r0, r1, wall) };
}

/**
 * Alternate h2load runs on the target and on its baseline; check every run. Besides calls/s, each
 * run records how busy the server was (CPU time over wall time, from /proc): a server under 100%
 * was not saturated (or lost its core to other work), and calls per CPU-second is recorded too.
 */
async function h2Pair(env: Env, target: LoadTarget, baseline: LoadTarget, baselineName: string): Promise<PairOutcome> {
  const problems: string[] = [];
  const runs: { a: CheckedRun[]; b: CheckedRun[] } = { a: [], b: [] };
  await target.validate();
  await baseline.validate();
  await runChecked(env, target, env.s.warmupS, problems, 'target warm-up');
  await runChecked(env, baseline, env.s.warmupS, problems, 'baseline warm-up');
  const rounds = await alternate(
    env.s.rounds,
    async () => {
      const r = await runChecked(env, target, env.s.durationS, problems, 'target');
      runs.a.push(r);
      return r.h2.reqPerSec;
    },
    async () => {
      const r = await runChecked(env, baseline, env.s.durationS, problems, 'baseline');
      runs.b.push(r);
      return r.h2.reqPerSec;
    },
  );
  await target.validate();
  const util = (rs: CheckedRun[]) => rs.map((r) => (r.utilization === undefined ? NaN : round(r.utilization, 3)));
  const busy = (rs: CheckedRun[]) => median(util(rs).filter(Number.isFinite));
  const notes = [...problems];
  for (const [label, rs] of [['the server under test', runs.a], ['the baseline server', runs.b]] as const) {
    const u = busy(rs);
    // A single-process server that is the bottleneck shows ~100% of its core; well below means the
    // load generator bounded it, or other work on the machine took the core (see the per-round values).
    if (Number.isFinite(u) && u < 0.9) notes.push(`${label} was only ${Math.round(u * 100)}% busy (median over rounds): not saturated — the load core (h2load${redisBusy(rs)}) was the limit — or its core was shared with other work during this run`);
  }
  const perCpu = runs.a.map((r, i) => {
    const b = runs.b[i] as CheckedRun;
    return r.utilization && b.utilization ? r.h2.reqPerSec / r.utilization / (b.h2.reqPerSec / b.utilization) : NaN;
  });
  return {
    figure: {
      status: problems.length ? 'failed' : 'measured',
      measured: { value: rounds.aMedian, unit: 'calls/s' },
      baseline: { name: baselineName, value: rounds.bMedian, unit: 'calls/s' },
      ratio: rounds.ratioMedian,
      rounds: { measured: rounds.a, baseline: rounds.b, ratios: rounds.ratios },
      notes,
      details: {
        h2load: runs.a[0]?.h2.command,
        meanLatencyMs: round(median(runs.a.map((r) => r.h2.latencyMs.mean)), 3),
        baselineMeanLatencyMs: round(median(runs.b.map((r) => r.h2.latencyMs.mean)), 3),
        serverUtilization: util(runs.a),
        baselineUtilization: util(runs.b),
        redisUtilization: runs.a.map((r) => (r.redisUtilization === undefined ? NaN : round(r.redisUtilization, 3))),
        ratioPerCpuSecond: round(median(perCpu.filter(Number.isFinite)), 3),
        grpcStatusCheck: 'a grpc-js call with the same request before and after the runs answered OK with the expected content; DATA bytes per request matched that reply in every run',
      },
    },
  };
}

/**
 * Run the Node load generator (bench/grpc-load-generator.ts) pinned to the load cores. With `pid`,
 * also how busy that server was over the run (its CPU time over the generator's elapsed time; the
 * server idles while the generator starts, so that time adds nothing).
 */
async function generate(
  env: Env,
  args: {
    url: string; framesFile: string; concurrency: number; connections: number; durationS?: number; save?: string; repeat?: number; pid?: number | undefined;
    /** PEM files: the CA, and the client certificate and key (https:// URLs). */
    tls?: { ca: string; cert: string; key: string };
    connectionPerCall?: boolean;
  },
): Promise<GeneratorResult & { utilization?: number; redisUtilization?: number }> {
  const argv = [
    process.execPath,
    benchScript('grpc-load-generator.js'),
    '--url', args.url,
    '--frames', args.framesFile,
    '--concurrency', String(args.concurrency),
    '--connections', String(args.connections),
    '--duration', String(args.durationS ?? 3600),
    ...(args.save ? ['--save', args.save] : []),
    ...(args.repeat ? ['--repeat', String(args.repeat)] : []),
    ...(args.tls ? ['--tls-ca', args.tls.ca, '--tls-cert', args.tls.cert, '--tls-key', args.tls.key] : []),
    ...(args.connectionPerCall ? ['--connection-per-call'] : []),
  ];
  const cpu0 = args.pid ? processTreeCpuMs(args.pid) : undefined;
  const r0 = env.s.redisPid ? processTreeCpuMs(env.s.redisPid) : undefined;
  const child = startChild('grpc-load-generator', pinned(env.s.loadCpus, argv));
  const result = await waitForJsonLine<GeneratorResult>(child, (v) => typeof v.completed === 'number', 600_000);
  const cpu1 = args.pid ? processTreeCpuMs(args.pid) : undefined;
  const r1 = env.s.redisPid ? processTreeCpuMs(env.s.redisPid) : undefined;
  const u = share(cpu0, cpu1, result.elapsedMs);
  const ru = share(r0, r1, result.elapsedMs);
  return { ...result, ...(u !== undefined ? { utilization: round(u, 3) } : {}), ...(ru !== undefined ? { redisUtilization: round(ru, 3) } : {}) };
}

function writeFrames(path: string, messages: Uint8Array[]): string {
  writeFileSync(path, Buffer.concat(messages.map((m) => grpcFrame(m))));
  return path;
}

function profileNote(p: ProfileSummary | undefined): Record<string, unknown> {
  return p ? { profile: p } : {};
}

/** One RPC figure: an id, a title, a target, and how to measure it. */
interface RpcScenario {
  id: string;
  title: string;
  target?: Target;
  /** Why it cannot run here, if it cannot. */
  unavailable?: () => string | undefined;
  /** One figure, or several measured in the same run (ids starting with the scenario's). */
  run(env: Env): Promise<Omit<Figure, 'met'> | Array<Omit<Figure, 'met'>>>;
}

async function issueOne(client: AuthorityClient) {
  return client.issue({ subject: 'bench-user', audience: [BENCH_AUDIENCE], scopes: ['orders:read', 'orders:write'] });
}

/** Verify of one token, repeated (the cached path), at a server on `port`. */
function verifyTarget(env: Env, server: { grpcPort: number; child: Child }, token: string, tag: string): { target: GrpcTarget; close(): void } {
  const port = server.grpcPort;
  const request = VerifyRequest.fromPartial({ token, audience: BENCH_AUDIENCE, requiredScopes: ['orders:read'] });
  const bodyFile = writeFrame(join(env.work, `${tag}-verify.bin`), VerifyRequest.encode(request).finish());
  const client = authorityClient(port);
  let good = 0;
  return {
    target: {
      url: `http://127.0.0.1:${port}/${SERVICE}/Verify`,
      bodyFile,
      pid: server.child.process.pid,
      get goodReplyBytes() {
        return good;
      },
      async validate() {
        const res = await client.verify(request);
        if (!res.valid) throw new Error(`Verify validation call answered valid=false (${res.reason}: ${res.detail})`);
        good = VerifyResponse.encode(res).finish().length + 5;
      },
    },
    close: () => client.close(),
  };
}

const verifyAtAuthority: RpcScenario = {
  id: 'rpc.verify.authority',
  title: 'Verify RPC at the authority (same token repeatedly: cached path)',
  target: TARGETS.verifyRpc,
  async run(env) {
    const server = await startServer(env, 'serve', {}, 'verify-authority');
    let profile: ProfileSummary | undefined;
    const client = authorityClient(server.grpcPort);
    try {
      const issued = await issueOne(client);
      const v = verifyTarget(env, server, issued.accessToken, 'authority');
      try {
        const pair = await h2Pair(env, v.target, echoTarget(env, v.target.bodyFile), 'bare grpc-js echo, same request, same h2load settings');
        profile = await stopServer(env, server, 'verify-authority');
        return { id: this.id, title: this.title, target: this.target, ...pair.figure, details: { ...pair.figure.details, ...profileNote(profile) } };
      } finally {
        v.close();
      }
    } finally {
      client.close();
      await server.stop();
    }
  },
};

const verifyAtSidecar: RpcScenario = {
  id: 'rpc.verify.sidecar',
  title: 'Verify RPC at the sidecar (same token repeatedly: cached path)',
  target: TARGETS.verifyRpc,
  async run(env) {
    // The authority serves the JWKS and heartbeats (so the sidecar stays fresh); it idles meanwhile.
    const authority = await startServer(env, 'serve', {}, 'sidecar-authority');
    const client = authorityClient(authority.grpcPort);
    let sidecar: CliServer | undefined;
    try {
      const issued = await issueOne(client);
      sidecar = await startServer(env, 'sidecar', { TA_AUTHORITY_URL: authority.httpBase, TA_AUDIENCE: '*' }, 'verify-sidecar');
      const v = verifyTarget(env, sidecar, issued.accessToken, 'sidecar');
      try {
        const pair = await h2Pair(env, v.target, echoTarget(env, v.target.bodyFile), 'bare grpc-js echo, same request, same h2load settings');
        const profile = await stopServer(env, sidecar, 'verify-sidecar');
        return { id: this.id, title: this.title, target: this.target, ...pair.figure, details: { ...pair.figure.details, ...profileNote(profile) } };
      } finally {
        v.close();
      }
    } finally {
      client.close();
      await sidecar?.stop();
      await authority.stop();
    }
  },
};

/** The W3C trace context every call of the tracing figures carries (a sampled caller span). */
const BENCH_TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

/**
 * Tracing off (the default: no OTEL_* variable) and on, at the authority's Verify RPC, measured in
 * the same run: `rpc.tracing.off` is the default authority against bare echo — the same figure as
 * rpc.verify.authority, so the two rows (run them together: `--only rpc.verify.authority,rpc.tracing`)
 * show whether the tracing seams cost anything while off; `rpc.tracing.on` is the authority with
 * every call traced (a `traceparent` on every call, parentbased_always_on: all sampled), exporting
 * over OTLP/HTTP protobuf to a local sink (bench/otlp-sink.ts, on the load core), against the
 * same authority with tracing off. Both get the same requests, traceparent included.
 */
const tracingOnOff: RpcScenario = {
  id: 'rpc.tracing',
  title: 'Verify RPC at the authority, tracing off and on',
  async run(env) {
    const sink = await startOtlpSink(env.s.loadCpus);
    const off = await startServer(env, 'serve', {}, 'tracing-off');
    let on: CliServer | undefined;
    const closers: Array<() => void> = [];
    const client = authorityClient(off.grpcPort);
    try {
      on = await startServer(env, 'serve', { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url }, 'tracing-on');
      const issued = await issueOne(client);
      const vOff = verifyTarget(env, off, issued.accessToken, 'tracing-off');
      const vOn = verifyTarget(env, on, issued.accessToken, 'tracing-on');
      closers.push(vOff.close, vOn.close);
      // Set on the targets themselves: a copy would freeze their goodReplyBytes getter before validate().
      const offTarget = vOff.target;
      const onTarget = vOn.target;
      offTarget.grpcHeaders = onTarget.grpcHeaders = [`traceparent: ${BENCH_TRACEPARENT}`];
      const echo = echoTarget(env, vOff.target.bodyFile);
      echo.grpcHeaders = offTarget.grpcHeaders;
      const offPair = await h2Pair(env, offTarget, echo, 'bare grpc-js echo, same request and traceparent, same h2load settings');
      const before = await sink.stats();
      const onPair = await h2Pair(env, onTarget, offTarget, 'the same authority with tracing off (no OTEL_* variable), same requests');
      await on.stop();
      on = undefined; // stopped: its last spans are flushed
      const after = await sink.stats();
      const exported = { requests: after.requests - before.requests, bytes: after.bytes - before.bytes };
      const onFigure = { ...onPair.figure };
      if (exported.requests === 0) {
        onFigure.status = 'failed';
        onFigure.notes = [...onFigure.notes, 'the OTLP sink received no export: tracing was not on'];
      }
      return [
        {
          id: 'rpc.tracing.off',
          title: 'Verify RPC at the authority, tracing off (default; traceparent sent)',
          target: TARGETS.verifyRpc,
          ...offPair.figure,
          notes: [...offPair.figure.notes, 'no OTEL_* variable: the tracing seams hold undefined; compare the ratio with rpc.verify.authority measured in the same run'],
        },
        {
          id: 'rpc.tracing.on',
          title: 'Verify RPC at the authority, tracing on (every call sampled, OTLP/HTTP protobuf)',
          ...onFigure,
          notes: [
            ...onFigure.notes,
            `OTEL_EXPORTER_OTLP_ENDPOINT at a local sink on core ${env.s.loadCpus} (bench/otlp-sink.ts); every call carries a sampled traceparent, so every call is a span; default batch settings (queue 2048, batch 512, 5 s): spans past a full queue are dropped by design`,
            `the sink received ${exported.requests.toLocaleString('en-US')} export requests, ${(exported.bytes / 1e6).toFixed(1)} MB, during the tracing-on runs`,
          ],
          details: { ...onFigure.details, exportRequests: exported.requests, exportBytes: exported.bytes },
        },
      ];
    } finally {
      for (const c of closers) c();
      client.close();
      await on?.stop();
      await off.stop();
      await sink.stop();
    }
  },
};

/** A gRPC target: every request posts the frame in bodyFile. */
type GrpcTarget = LoadTarget & { bodyFile: string };

/** Response headers that depend on the connection or the moment, not on the answer. */
const TRANSPORT_HEADERS = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding', 'content-length']);

/**
 * Forward-auth at the sidecar's HTTP port (`/authz`, as nginx auth_request calls it), one token
 * repeatedly: every response must be 200 with `x-auth-subject` = the token's subject, and every
 * response of a run exactly the size of that validated one.
 */
function forwardAuthTarget(env: Env, sidecar: CliServer, token: string, extraHeaders: Record<string, string> = {}): { target: LoadTarget; answerHeaders(): Record<string, string> } {
  const path = `/authz?audience=${encodeURIComponent(BENCH_AUDIENCE)}&required_scopes=orders:read`;
  const request = { authorization: `Bearer ${token}`, 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/orders/42', ...extraHeaders };
  let good = 0;
  let headers: Record<string, string> = {};
  return {
    target: {
      url: `http://127.0.0.1:${sidecar.httpPort}${path}`,
      h1: { headers: Object.entries(request).map(([k, v]) => `${k}: ${v}`) },
      pid: sidecar.child.process.pid,
      get goodReplyBytes() {
        return good;
      },
      async validate() {
        const r = await rawGet(sidecar.httpPort, path, request);
        if (r.status !== 200 || r.headers['x-auth-subject'] !== 'bench-user') {
          throw new Error(`forward-auth validation: HTTP ${r.status}, x-auth-subject ${JSON.stringify(r.headers['x-auth-subject'])} (want 200 and "bench-user"; www-authenticate ${JSON.stringify(r.headers['www-authenticate'])})`);
        }
        good = r.bytes;
        headers = Object.fromEntries(Object.entries(r.headers).filter(([k]) => !TRANSPORT_HEADERS.has(k)));
      },
    },
    answerHeaders: () => headers,
  };
}

const forwardAuth: RpcScenario = {
  id: 'rpc.forward-auth',
  title: 'Forward-auth /authz at the sidecar, HTTP/1.1 (same token repeatedly: cached path)',
  async run(env) {
    const authority = await startServer(env, 'serve', {}, 'forward-auth-authority');
    const client = authorityClient(authority.grpcPort);
    let sidecar: CliServer | undefined;
    let baseline: Child | undefined;
    const closers: Array<() => void> = [];
    try {
      const issued = await issueOne(client);
      sidecar = await startServer(env, 'sidecar', { TA_AUTHORITY_URL: authority.httpBase, TA_AUDIENCE: '*' }, 'forward-auth-sidecar');
      const fa = forwardAuthTarget(env, sidecar, issued.accessToken);
      await fa.target.validate();
      const headersFile = join(env.work, 'forward-auth-headers.json');
      writeFileSync(headersFile, JSON.stringify(fa.answerHeaders()));
      baseline = startChild('http-baseline-server', pinned(env.s.serverCpus, [process.execPath, benchScript('http-baseline-server.js'), '--headers', headersFile]));
      const { port } = await waitForJsonLine<{ port: number }>(baseline, (v) => typeof v.port === 'number');
      let baseGood = 0;
      const bare: LoadTarget = {
        url: `http://127.0.0.1:${port}/authz`,
        h1: fa.target.h1!,
        pid: baseline.process.pid,
        get goodReplyBytes() {
          return baseGood;
        },
        async validate() {
          const r = await rawGet(port, '/authz', {});
          if (r.status !== 200 || r.headers['x-auth-subject'] !== 'bench-user') throw new Error(`node:http baseline answered ${r.status}`);
          baseGood = r.bytes;
        },
      };
      const h1Note = `h2load --h1 on core ${env.s.loadCpus}: ${env.s.clients * env.s.streams} keep-alive HTTP/1.1 connections, one request in flight on each (no pipelining, as nginx auth_request and Caddy forward_auth send), GET ${fa.target.url.replace(/^http:\/\/[^/]+/, '')} with the bearer token and X-Forwarded-Method/-Uri; every response checked: a 2xx, and exactly the bytes of a validated answer (200 with x-auth-subject of the token) before and after`;
      const http = await h2Pair(env, fa.target, bare, 'bare node:http server answering 200 with the same headers, same h2load settings');
      const v = verifyTarget(env, sidecar, issued.accessToken, 'forward-auth-grpc');
      closers.push(v.close);
      const grpc = await h2Pair(env, fa.target, v.target, `gRPC Verify at the same sidecar, same token, audience and scope (h2load, ${env.s.clients} connections × ${env.s.streams} streams)`);
      const profile = await stopServer(env, sidecar, 'forward-auth-sidecar');
      return [
        {
          id: this.id,
          title: this.title,
          ...http.figure,
          notes: [...http.figure.notes, h1Note, `bench/http-baseline-server.ts: node:http answering every request with 200, an empty body and the sidecar's own answer headers (${Object.keys(fa.answerHeaders()).join(', ')}), on core ${env.s.serverCpus}; no target (issue 14 asks for the comparison)`],
          details: { ...http.figure.details, grpcStatusCheck: undefined, ...profileNote(profile) },
        },
        {
          id: `${this.id}.grpc`,
          title: 'Forward-auth /authz (HTTP/1.1) vs gRPC Verify at the same sidecar',
          ...grpc.figure,
          notes: [...grpc.figure.notes, h1Note, 'the same sidecar process answers both (one verifier, cache and counters); the gRPC side is checked as the Verify rows are (valid=true before and after, DATA bytes of that reply in every run); no target (issue 12 asks for the comparison)'],
        },
      ];
    } finally {
      for (const c of closers) c();
      client.close();
      await baseline?.stop();
      await sidecar?.stop();
      await authority.stop();
    }
  },
};

/**
 * Forward-auth of a certificate-bound token (`cnf.x5t#S256`) with its certificate in `X-Client-Cert`
 * (URL-encoded PEM, as nginx's `$ssl_client_escaped_cert`; TA_TRUST_FORWARDED_CLIENT_CERT=true) vs
 * an unbound token with the same header at the same sidecar: what the binding costs on the path
 * (decoding the header, the certificate's thumbprint, the comparison). DPoP-bound tokens have no
 * such row: h2load repeats one request, and a DPoP proof is single-use (bench/verify-bound.ts
 * measures the DPoP check in process).
 */
const forwardAuthMtls: RpcScenario = {
  id: 'rpc.forward-auth.mtls',
  title: 'Forward-auth /authz with a certificate-bound token (X-Client-Cert) vs an unbound one, same sidecar',
  async run(env) {
    const pki = createPki();
    const authority = await startServer(env, 'serve', {}, 'forward-auth-mtls-authority');
    const client = authorityClient(authority.grpcPort);
    let sidecar: CliServer | undefined;
    try {
      const pem = pki.createCa('bench-ca').issue('bench-client', { san: ['URI:spiffe://bench/client'] }).certPem.toString('utf8');
      const x5tS256 = createHash('sha256').update(new X509Certificate(pem).raw).digest('base64url');
      const bound = await client.issue({ subject: 'bench-user', audience: [BENCH_AUDIENCE], scopes: ['orders:read', 'orders:write'], confirmation: { binding: { $case: 'x5tS256', x5tS256 } } });
      const unbound = await issueOne(client);
      sidecar = await startServer(env, 'sidecar', { TA_AUTHORITY_URL: authority.httpBase, TA_AUDIENCE: '*', TA_TRUST_FORWARDED_CLIENT_CERT: 'true' }, 'forward-auth-mtls-sidecar');
      const header = { 'x-client-cert': encodeURIComponent(pem) };
      const b = forwardAuthTarget(env, sidecar, bound.accessToken, header);
      const u = forwardAuthTarget(env, sidecar, unbound.accessToken, header);
      const pair = await h2Pair(env, b.target, u.target, 'the same sidecar, an unbound token of the same subject and scopes with the same X-Client-Cert header (not looked at for it), same h2load settings');
      const profile = await stopServer(env, sidecar, 'forward-auth-mtls-sidecar');
      sidecar = undefined;
      return [{
        id: this.id,
        title: this.title,
        ...pair.figure,
        notes: [...pair.figure.notes, `h2load --h1 on core ${env.s.loadCpus}, as rpc.forward-auth; both sides send the ${pem.length}-character certificate URL-encoded, so request sizes are equal; a validated answer (200, x-auth-subject) checked before and after; no target`],
        details: { ...pair.figure.details, grpcStatusCheck: undefined, ...profileNote(profile) },
      }];
    } finally {
      client.close();
      await sidecar?.stop();
      await authority.stop();
      pki.cleanup();
    }
  },
};

/** Issue for one subject, repeated (each call a new session and token), at `server`. */
function issueTarget(env: Env, server: CliServer, tag: string): { target: GrpcTarget; close(): void } {
  const request = IssueRequest.fromPartial({ subject: 'bench-user', audience: [BENCH_AUDIENCE], scopes: ['orders:read', 'orders:write'] });
  const bodyFile = writeFrame(join(env.work, `${tag}-issue.bin`), IssueRequest.encode(request).finish());
  const client = authorityClient(server.grpcPort);
  let good = 0;
  return {
    target: {
      url: `http://127.0.0.1:${server.grpcPort}/${SERVICE}/Issue`,
      bodyFile,
      pid: server.child.process.pid,
      get goodReplyBytes() {
        return good;
      },
      async validate() {
        const res = await client.issue(request);
        if (!res.accessToken || !res.refreshToken.startsWith('tart_')) throw new Error('Issue validation call returned no tokens');
        good = IssueResponse.encode(res).finish().length + 5;
      },
    },
    close: () => client.close(),
  };
}

const verifyFloor: RpcScenario = {
  id: 'rpc.verify.floor',
  title: 'Verify RPC on bare grpc-js + protobuf + the verifier library, no service layer (diagnostic)',
  async run(env) {
    const authority = await startServer(env, 'serve', {}, 'floor-authority');
    const client = authorityClient(authority.grpcPort);
    let floor: Child | undefined;
    try {
      const issued = await issueOne(client);
      floor = startChild(
        'verify-floor-server',
        pinned(env.s.serverCpus, [process.execPath, benchScript('verify-floor-server.js'), '--jwks', `${authority.httpBase}/.well-known/jwks.json`, '--issuer', BENCH_ISSUER, '--redis', env.s.redisUrl]),
      );
      const { port } = await waitForJsonLine<{ port: number }>(floor, (v) => typeof v.port === 'number');
      const v = verifyTarget(env, { grpcPort: port, child: floor }, issued.accessToken, 'floor');
      try {
        const pair = await h2Pair(env, v.target, echoTarget(env, v.target.bodyFile), 'bare grpc-js echo, same request, same h2load settings');
        return {
          id: this.id,
          title: this.title,
          ...pair.figure,
          notes: [
            ...pair.figure.notes,
            'bench/verify-floor-server.ts: the sidecar\'s verifier (JWKS keys, Redis revocations) answering through verifySync and the shared toVerifyResponse, with nothing else around it; no target — it splits the Verify RPC gap into what protobuf and verification cost (floor vs echo) and what the service layer costs (authority or sidecar vs floor)',
          ],
        };
      } finally {
        v.close();
      }
    } finally {
      client.close();
      await floor?.stop();
      await authority.stop();
    }
  },
};

const issueWithRedis: RpcScenario = {
  id: 'rpc.issue',
  title: 'Issue RPC with Redis (new session + signed token per call)',
  target: TARGETS.issueRpc,
  async run(env) {
    const server = await startServer(env, 'serve', {}, 'issue');
    const t = issueTarget(env, server, 'issue');
    try {
      const pair = await h2Pair(env, t.target, echoTarget(env, t.target.bodyFile), 'bare grpc-js echo, same request, same h2load settings');
      const profile = await stopServer(env, server, 'issue');
      return { id: this.id, title: this.title, target: this.target, ...pair.figure, details: { ...pair.figure.details, ...profileNote(profile) } };
    } finally {
      t.close();
      await server.stop();
    }
  },
};

/**
 * Issue over mutual TLS (TA_TLS_CERT/KEY and TA_TLS_CLIENT_CA; certificates made at run time by
 * test/helpers/pki.ts), driven by the Node generator (h2load cannot present a client
 * certificate), two rows from alternating rounds against the same authority process:
 * - warm: `clients` long-lived mTLS connections, clients × streams calls in flight, against the
 *   same generator over plaintext to a plaintext authority on the same core (what TLS costs);
 * - a new connection per call: a full TLS handshake with a client certificate for every Issue
 *   (no session resumption), `streams` at once, against the warm mTLS channel (what handshakes
 *   cost: published Keycloak figures are dominated by them).
 */
const issueOverMtls: RpcScenario = {
  id: 'rpc.issue-mtls',
  title: 'Issue RPC over mutual TLS, warm channel',
  async run(env) {
    const pki = createPki();
    let plain: CliServer | undefined;
    let tls: CliServer | undefined;
    try {
      const ca = pki.createCa('bench-ca');
      const serverCert = ca.issue('server', { cn: 'token-authority', san: ['IP:127.0.0.1', 'DNS:localhost'], usage: 'server' });
      const client = ca.issue('client', { san: ['URI:spiffe://bench/login'] });
      const clientTls = { ca: ca.cert, cert: client.cert, key: client.key };
      tls = await startServer(env, 'serve', { TA_TLS_CERT: serverCert.cert, TA_TLS_KEY: serverCert.key, TA_TLS_CLIENT_CA: ca.cert }, 'issue-mtls', env.s.serverCpus, { ca: ca.certPem });
      plain = await startServer(env, 'serve', {}, 'issue-plain');
      const frame = writeFrame(join(env.work, 'issue-mtls.bin'), IssueRequest.encode(IssueRequest.fromPartial({ subject: 'bench-user', audience: [BENCH_AUDIENCE], scopes: ['orders:read', 'orders:write'] })).finish());
      const concurrency = env.s.clients * env.s.streams;
      const repeat = Math.ceil(env.s.durationS * 30_000);
      const tlsUrl = `https://127.0.0.1:${tls.grpcPort}/${SERVICE}/Issue`;
      const kinds = {
        warm: (s: CliServer, url: string, withTls: boolean) => generate(env, { url, framesFile: frame, repeat, concurrency, connections: env.s.clients, durationS: env.s.durationS, pid: s.child.process.pid, ...(withTls ? { tls: clientTls } : {}) }),
        perCall: (s: CliServer) => generate(env, { url: tlsUrl, framesFile: frame, repeat, concurrency: env.s.streams, connections: 1, durationS: env.s.durationS, pid: s.child.process.pid, tls: clientTls, connectionPerCall: true }),
      };
      const problems: string[] = [];
      const check = (label: string, g: GeneratorResult) => {
        if (g.ok !== g.completed || g.ok === 0) problems.push(`${label}: ${g.completed - g.ok} of ${g.completed} calls not OK (${JSON.stringify(g.statuses)})`);
      };
      type Run = GeneratorResult & { utilization?: number };
      const runs = { mtls: [] as Run[], plain: [] as Run[], perCall: [] as Run[] };
      const server = { tls, plain };
      // Warm-up, then rounds in rotating order so that machine load hits all three alike.
      await kinds.warm(server.tls, tlsUrl, true);
      await kinds.warm(server.plain, `http://127.0.0.1:${server.plain.grpcPort}/${SERVICE}/Issue`, false);
      await kinds.perCall(server.tls);
      const order = ['mtls', 'plain', 'perCall'] as const;
      for (let r = 0; r < env.s.rounds; r++) {
        for (let k = 0; k < order.length; k++) {
          const which = order[(r + k) % order.length]!;
          const g = which === 'mtls' ? await kinds.warm(server.tls, tlsUrl, true) : which === 'plain' ? await kinds.warm(server.plain, `http://127.0.0.1:${server.plain.grpcPort}/${SERVICE}/Issue`, false) : await kinds.perCall(server.tls);
          check(which, g);
          runs[which].push(g);
        }
      }
      const rate = (rs: Run[]) => rs.map((g) => g.okPerSec);
      const ratios = (a: Run[], b: Run[]) => a.map((g, i) => g.okPerSec / (b[i]?.okPerSec ?? NaN)).filter(Number.isFinite);
      const perCpu = (a: Run[], b: Run[]) => median(a.map((g, i) => (g.utilization && b[i]?.utilization ? g.okPerSec / g.utilization / (b[i]!.okPerSec / b[i]!.utilization!) : NaN)).filter(Number.isFinite));
      const util = (rs: Run[]) => rs.map((g) => g.utilization ?? NaN);
      const lat = (rs: Run[]) => ({ p50: median(rs.map((g) => g.latencyMs.p50)), p90: median(rs.map((g) => g.latencyMs.p90)), p99: median(rs.map((g) => g.latencyMs.p99)), max: Math.max(...rs.map((g) => g.latencyMs.max)), count: rs.reduce((n, g) => n + g.ok, 0), unit: 'ms' });
      const status = problems.length ? 'failed' as const : 'measured' as const;
      const driven = `driven by the Node generator (bench/grpc-load-generator.ts, core ${env.s.loadCpus}); certificates EC P-256 made at run time (test/helpers/pki.ts), the client's with a SAN URI; every reply's grpc-status read`;
      const r1 = ratios(runs.mtls, runs.plain);
      const r2 = ratios(runs.perCall, runs.mtls);
      return [
        {
          id: this.id,
          title: this.title,
          status,
          measured: { value: median(rate(runs.mtls)), unit: 'calls/s' },
          baseline: { name: `Issue over plaintext h2c, same generator and concurrency (${env.s.clients} connections × ${env.s.streams} in flight)`, value: median(rate(runs.plain)), unit: 'calls/s' },
          ratio: median(r1),
          rounds: { measured: rate(runs.mtls), baseline: rate(runs.plain), ratios: r1 },
          latency: lat(runs.mtls),
          notes: [...problems, driven, `per CPU-second of the authority the ratio is ${perCpu(runs.mtls, runs.plain).toFixed(2)}`],
          details: { serverUtilization: util(runs.mtls), baselineUtilization: util(runs.plain), ratioPerCpuSecond: round(perCpu(runs.mtls, runs.plain), 3) },
        },
        {
          id: `${this.id}.new-connection`,
          title: 'Issue RPC over mutual TLS, a new TLS connection (full handshake) per call',
          status,
          measured: { value: median(rate(runs.perCall)), unit: 'calls/s' },
          baseline: { name: 'Issue over the warm mutual-TLS channel, same run', value: median(rate(runs.mtls)), unit: 'calls/s' },
          ratio: median(r2),
          rounds: { measured: rate(runs.perCall), baseline: rate(runs.mtls), ratios: r2 },
          latency: lat(runs.perCall),
          notes: [...problems, driven, `${env.s.streams} calls at once, each on its own new connection (TLS 1.3 handshake with the client certificate, no session resumption), closed after the reply; latency counts the handshake; per CPU-second of the authority the ratio is ${perCpu(runs.perCall, runs.mtls).toFixed(2)}`],
          details: { serverUtilization: util(runs.perCall), baselineUtilization: util(runs.mtls), ratioPerCpuSecond: round(perCpu(runs.perCall, runs.mtls), 3) },
        },
      ];
    } finally {
      await tls?.stop();
      await plain?.stop();
      pki.cleanup();
    }
  },
};

/** Issue `n` sessions through `port` and return their refresh tokens (via the Node generator). */
async function issueRefreshTokens(env: Env, port: number, n: number, tag: string): Promise<string[]> {
  const frame = writeFrame(join(env.work, `${tag}-issue.bin`), IssueRequest.encode(IssueRequest.fromPartial({ subject: 'bench-refresh', audience: [BENCH_AUDIENCE], scopes: ['orders:read'] })).finish());
  const save = join(env.work, `${tag}-issued.bin`);
  const r = await generate(env, { url: `http://127.0.0.1:${port}/${SERVICE}/Issue`, framesFile: frame, repeat: n, concurrency: 64, connections: 4, save });
  if (r.ok !== n) throw new Error(`issuing ${n} sessions for Refresh: only ${r.ok} OK (${JSON.stringify(r.statuses)})`);
  return readSavedReplies(readFileSync(save)).map((reply) => IssueResponse.decode(reply.subarray(5)).refreshToken);
}

const refreshWithRedis: RpcScenario = {
  id: 'rpc.refresh',
  title: 'Refresh RPC with Redis (a distinct refresh token per call)',
  target: TARGETS.refreshRpc,
  async run(env) {
    const concurrency = env.s.clients * env.s.streams;
    // Sessions are issued through a separate, unpinned authority so the measured one does only Refresh.
    const issuer = await startCliServer('serve', { TA_ISSUER: BENCH_ISSUER, TA_REDIS_URL: env.s.redisUrl, ...authorityEnv(env) });
    let perRound: number;
    let tokens: string[];
    try {
      perRound = Math.max(2000, Math.ceil(env.s.durationS * 7000));
      tokens = await issueRefreshTokens(env, issuer.grpcPort, perRound * (env.s.rounds + 1), 'refresh');
    } finally {
      await issuer.stop();
    }
    const server = await startServer(env, 'serve', {}, 'refresh');
    try {
      const url = `http://127.0.0.1:${server.grpcPort}/${SERVICE}/Refresh`;
      const files: string[] = [];
      for (let r = 0; r <= env.s.rounds; r++) {
        const slice = tokens.slice(r * perRound, (r + 1) * perRound);
        files.push(writeFrames(join(env.work, `refresh-${r}.bin`), slice.map((t) => RefreshRequest.encode(RefreshRequest.fromPartial({ refreshToken: t })).finish())));
      }
      // Echo is driven by h2load (its true ceiling: the conservative denominator) with one Refresh request.
      const echo = echoTarget(env, writeFrame(join(env.work, 'refresh-one.bin'), RefreshRequest.encode(RefreshRequest.fromPartial({ refreshToken: tokens[0] as string })).finish()));
      const problems: string[] = [];
      const genRuns: Array<GeneratorResult & { utilization?: number; redisUtilization?: number }> = [];
      let nextFile = 0;
      const refresh = async () => {
        const g = await generate(env, { url, framesFile: files[nextFile++] as string, concurrency, connections: env.s.clients, durationS: env.s.durationS, pid: server.child.process.pid });
        if (g.ok !== g.completed) problems.push(`refresh: ${g.completed - g.ok} calls not OK (${JSON.stringify(g.statuses)})`);
        if (g.elapsedMs < 500 * env.s.durationS) problems.push(`refresh: a round lasted only ${Math.round(g.elapsedMs)} ms of ${env.s.durationS} s (frames ran out)`);
        genRuns.push(g);
        return g.okPerSec;
      };
      const echoRuns: CheckedRun[] = [];
      const echoRun = async () => {
        const r = await runChecked(env, echo, env.s.durationS, problems, 'echo');
        echoRuns.push(r);
        return r.h2.reqPerSec;
      };
      await refresh(); // warm-up round (its own tokens)
      await runH2load(h2Options(env, echo, env.s.warmupS));
      const rounds = await alternate(env.s.rounds, refresh, echoRun);
      const measuredRuns = genRuns.slice(1);
      const ceiling = await generate(env, { url: `http://127.0.0.1:${env.echoPort}${ECHO_PATH}`, framesFile: files[0] as string, concurrency, connections: env.s.clients, durationS: env.s.durationS });
      const util = median(measuredRuns.map((g) => g.utilization ?? NaN).filter(Number.isFinite));
      const redisUtil = median(measuredRuns.map((g) => g.redisUtilization ?? NaN).filter(Number.isFinite));
      const perCpu = median(
        measuredRuns
          .map((g, i) => {
            const e = echoRuns[i];
            return g.utilization && e?.utilization ? g.okPerSec / g.utilization / (e.h2.reqPerSec / e.utilization) : NaN;
          })
          .filter(Number.isFinite),
      );
      const pct = (x: number) => `${Math.round(x * 100)}%`;
      const ceilingNote =
        util >= 0.9
          ? `the authority was ${pct(util)} busy on its core, so it, not the load side, bounds Refresh (the same generator drives the bare echo at ${Math.round(ceiling.okPerSec).toLocaleString('en-US')}/s)`
          : `the authority was only ${pct(util)} busy: core ${env.s.loadCpus} (the generator, which drives the bare echo at ${Math.round(ceiling.okPerSec).toLocaleString('en-US')}/s at most, plus redis-server at ${pct(redisUtil)}) bounds this figure, so it is a floor; per CPU-second of the authority the ratio is ${perCpu.toFixed(2)}`;
      const profile = await stopServer(env, server, 'refresh');
      const p50s = measuredRuns.map((g) => g.latencyMs.p50);
      const p99s = measuredRuns.map((g) => g.latencyMs.p99);
      return {
        id: this.id,
        title: this.title,
        target: this.target,
        status: problems.length ? 'failed' : 'measured',
        measured: { value: rounds.aMedian, unit: 'calls/s' },
        baseline: { name: 'bare grpc-js echo driven by h2load, same concurrency', value: rounds.bMedian, unit: 'calls/s' },
        ratio: rounds.ratioMedian,
        rounds: { measured: rounds.a, baseline: rounds.b, ratios: rounds.ratios },
        latency: { p50: median(p50s), p90: median(measuredRuns.map((g) => g.latencyMs.p90)), p99: median(p99s), max: Math.max(...measuredRuns.map((g) => g.latencyMs.max)), count: measuredRuns.reduce((n, g) => n + g.ok, 0), unit: 'ms' },
        notes: [
          ...problems,
          `driven by the Node generator (bench/grpc-load-generator.ts, ${concurrency} calls in flight over ${env.s.clients} connections, core ${env.s.loadCpus}), since h2load repeats one body and a refresh token works once; every reply's grpc-status was read: all OK`,
          `${ceilingNote}; the ratio is taken against echo under h2load (${Math.round(rounds.bMedian).toLocaleString('en-US')}/s), the higher and so stricter denominator`,
        ],
        details: {
          generatorEchoCeiling: round(ceiling.okPerSec, 4),
          serverUtilization: measuredRuns.map((g) => g.utilization),
          redisUtilization: measuredRuns.map((g) => g.redisUtilization),
          baselineUtilization: echoRuns.map((r) => (r.utilization === undefined ? NaN : round(r.utilization, 3))),
          ratioPerCpuSecond: round(perCpu, 3),
          statuses: measuredRuns.map((g) => g.statuses),
          ...profileNote(profile),
        },
      };
    } finally {
      await server.stop();
    }
  },
};

const revokeLatency: RpcScenario = {
  id: 'rpc.revoke',
  title: 'Revoke RPC with Redis (by token_id): latency, one call at a time',
  async run(env) {
    const server = await startServer(env, 'serve', {}, 'revoke');
    try {
      const url = `http://127.0.0.1:${server.grpcPort}/${SERVICE}/Revoke`;
      const frames = (n: number, tag: string) =>
        writeFrames(
          join(env.work, `revoke-${tag}.bin`),
          Array.from({ length: n }, () => RevokeRequest.encode(RevokeRequest.fromPartial({ target: { $case: 'tokenId', tokenId: randomBytes(16).toString('base64url') }, reason: 'bench' })).finish()),
        );
      await generate(env, { url, framesFile: frames(Math.min(500, env.s.revokeSamples), 'warm'), concurrency: 8, connections: 1 });
      const serial = await generate(env, { url, framesFile: frames(env.s.revokeSamples, 'serial'), concurrency: 1, connections: 1 });
      const concurrency = env.s.clients * env.s.streams;
      const loaded = await generate(env, { url, framesFile: frames(Math.ceil(env.s.durationS * 15_000), 'loaded'), concurrency, connections: env.s.clients, durationS: env.s.durationS, pid: server.child.process.pid });
      const profile = await stopServer(env, server, 'revoke');
      const problems = [serial, loaded].filter((g) => g.ok !== g.completed).map((g) => `${g.completed - g.ok} calls not OK (${JSON.stringify(g.statuses)})`);
      return {
        id: this.id,
        title: this.title,
        status: problems.length ? 'failed' : 'measured',
        measured: { value: serial.latencyMs.p50, unit: 'ms' },
        latency: { p50: serial.latencyMs.p50, p90: serial.latencyMs.p90, p99: serial.latencyMs.p99, max: serial.latencyMs.max, count: serial.ok, unit: 'ms' },
        notes: [
          ...problems,
          `${serial.ok} revocations of distinct jtis, one in flight, measured by the client (Node generator) from request to trailers: p50 ${serial.latencyMs.p50.toFixed(3)} ms, p99 ${serial.latencyMs.p99.toFixed(3)} ms; the Revoke answers once the revocation is in the Redis log and published`,
          `under load (${concurrency} in flight): ${Math.round(loaded.okPerSec).toLocaleString('en-US')} revocations/s, p50 ${loaded.latencyMs.p50.toFixed(2)} ms, p99 ${loaded.latencyMs.p99.toFixed(2)} ms`,
        ],
        details: { underLoad: { okPerSec: round(loaded.okPerSec, 4), latencyMs: loaded.latencyMs, concurrency, serverUtilization: loaded.utilization }, ...profileNote(profile) },
      };
    } finally {
      await server.stop();
    }
  },
};

/** The authority's multi-worker setting, once it exists. */
const WORKERS_ENV = 'TA_WORKERS';
const hasWorkerMode = () => OPTIONS.some((o) => o.env === WORKERS_ENV);

/**
 * The authority with 2 workers on both cores vs 1 worker on one core, same load. With only 2 cores
 * the second worker necessarily shares its core with the load generator and redis-server.
 */
function scaling(rpc: 'Verify' | 'Issue'): RpcScenario {
  const id = `rpc.scaling.${rpc.toLowerCase()}`;
  return {
    id,
    title: `Authority on 2 cores vs 1 (${rpc} RPC, ${WORKERS_ENV}=2 vs 1)`,
    target: TARGETS.twoCores,
    unavailable: () => (hasWorkerMode() ? undefined : `not measured: no worker mode (${WORKERS_ENV} is not a setting in src/config/options.ts yet)`),
    async run(env) {
      const both = `${env.s.serverCpus},${env.s.loadCpus}`;
      const one = await startServer(env, 'serve', { [WORKERS_ENV]: '1' }, `${id}-1`, env.s.serverCpus);
      let two: CliServer | undefined;
      const closers: Array<() => void> = [];
      try {
        two = await startServer(env, 'serve', { [WORKERS_ENV]: '2' }, `${id}-2`, both);
        let a: LoadTarget;
        let b: LoadTarget;
        if (rpc === 'Verify') {
          const client = authorityClient(one.grpcPort);
          closers.push(() => client.close());
          const issued = await issueOne(client);
          const ta = verifyTarget(env, two, issued.accessToken, `${id}-2`);
          const tb = verifyTarget(env, one, issued.accessToken, `${id}-1`);
          closers.push(ta.close, tb.close);
          a = ta.target;
          b = tb.target;
        } else {
          const ta = issueTarget(env, two, `${id}-2`);
          const tb = issueTarget(env, one, `${id}-1`);
          closers.push(ta.close, tb.close);
          a = ta.target;
          b = tb.target;
        }
        const pair = await h2Pair(env, a, b, `the same authority with ${WORKERS_ENV}=1 on core ${env.s.serverCpus}`);
        return {
          id,
          title: this.title,
          target: this.target,
          ...pair.figure,
          notes: [
            ...pair.figure.notes,
            `${WORKERS_ENV}=2 runs on cores ${both} (taskset), so its second worker shares core ${env.s.loadCpus} with h2load and redis-server; ${WORKERS_ENV}=1 has core ${env.s.serverCpus} to itself. Same h2load settings (${env.s.clients} connections, handed out round-robin to the workers)`,
          ],
        };
      } finally {
        for (const c of closers) c();
        await two?.stop();
        await one.stop();
      }
    },
  };
}

/**
 * The sidecar with 2 workers on both cores vs 1 worker on core 0 (Verify RPC, the cached path),
 * two rows from the same rounds: calls/s, and calls per CPU-second of the server processes (the
 * primary and its workers, from /proc/<pid>/stat around every run), because the second worker
 * shares its core with h2load: the absolute ratio says what a user gets on this machine, the
 * per-CPU-second ratio what the workers cost.
 */
const sidecarScaling: RpcScenario = {
  id: 'rpc.scaling.sidecar',
  title: `Sidecar on 2 cores vs 1 (Verify RPC, ${WORKERS_ENV}=2 vs 1)`,
  target: TARGETS.twoCores,
  async run(env) {
    const both = `${env.s.serverCpus},${env.s.loadCpus}`;
    // The authority serves the JWKS and heartbeats; it idles during the runs (on the load core).
    const authority = await startServer(env, 'serve', {}, 'scaling-sidecar-authority', env.s.loadCpus);
    const client = authorityClient(authority.grpcPort);
    const sidecarEnv = { TA_AUTHORITY_URL: authority.httpBase, TA_AUDIENCE: '*' };
    let one: CliServer | undefined;
    let two: CliServer | undefined;
    const closers: Array<() => void> = [];
    try {
      const issued = await issueOne(client);
      one = await startServer(env, 'sidecar', { ...sidecarEnv, [WORKERS_ENV]: '1' }, 'scaling-sidecar-1');
      two = await startServer(env, 'sidecar', { ...sidecarEnv, [WORKERS_ENV]: '2' }, 'scaling-sidecar-2', both);
      const ta = verifyTarget(env, two, issued.accessToken, 'scaling-sidecar-2');
      const tb = verifyTarget(env, one, issued.accessToken, 'scaling-sidecar-1');
      closers.push(ta.close, tb.close);
      const pair = await h2Pair(env, ta.target, tb.target, `the same sidecar with ${WORKERS_ENV}=1 on core ${env.s.serverCpus}`);
      const f = pair.figure;
      const utilA = (f.details?.serverUtilization ?? []) as number[];
      const utilB = (f.details?.baselineUtilization ?? []) as number[];
      const perCpu = (xs: readonly number[], us: readonly number[]) => xs.map((x, i) => x / (us[i] ?? NaN)).filter(Number.isFinite);
      const aPerCpu = perCpu(f.rounds?.measured ?? [], utilA);
      const bPerCpu = perCpu(f.rounds?.baseline ?? [], utilB);
      const ratios = aPerCpu.map((a, i) => a / (bPerCpu[i] ?? NaN)).filter(Number.isFinite);
      const placement = `${WORKERS_ENV}=2 runs on cores ${both} (taskset), so its second worker shares core ${env.s.loadCpus} with h2load and redis-server; ${WORKERS_ENV}=1 has core ${env.s.serverCpus} to itself. Same h2load settings (${env.s.clients} connections, handed out round-robin to the workers); one token repeatedly (the cached path)`;
      return [
        { id: this.id, title: this.title, target: this.target, ...f, notes: [...f.notes, placement] },
        {
          id: `${this.id}.per-cpu`,
          title: `Sidecar on 2 cores vs 1, per CPU-second of the sidecar processes (Verify RPC, ${WORKERS_ENV}=2 vs 1)`,
          status: f.status,
          measured: { value: median(aPerCpu), unit: 'calls per CPU-s' },
          baseline: { name: `the same sidecar with ${WORKERS_ENV}=1, per CPU-second`, value: median(bPerCpu), unit: 'calls per CPU-s' },
          ratio: median(ratios),
          rounds: { measured: aPerCpu.map((x) => round(x, 4)), baseline: bPerCpu.map((x) => round(x, 4)), ratios: ratios.map((x) => round(x, 3)) },
          notes: [`the same rounds as ${this.id}, each divided by the CPU time of the server's process tree (primary and workers, /proc/<pid>/stat utime+stime) over the run: 1.0× means a second worker costs nothing beyond its share of the calls`, placement],
          details: { serverUtilization: utilA, baselineUtilization: utilB },
        },
      ];
    } finally {
      for (const c of closers) c();
      client.close();
      await two?.stop();
      await one?.stop();
      await authority.stop();
    }
  },
};

/** Every RPC figure, in table order. A new figure is one more entry here. */
export const RPC_SCENARIOS: readonly RpcScenario[] = [verifyAtAuthority, tracingOnOff, verifyAtSidecar, verifyFloor, forwardAuth, forwardAuthMtls, issueWithRedis, issueOverMtls, refreshWithRedis, revokeLatency, scaling('Verify'), scaling('Issue'), sidecarScaling];

export async function runRpcBenchmarks(s: RpcSettings, only: (id: string) => boolean, log: (line: string) => void): Promise<Figure[]> {
  const work = mkdtempSync(join(tmpdir(), 'ta-bench-'));
  const keyDir = join(work, 'keys');
  const echo = await startEchoServer(s.serverCpus);
  const env: Env = { s, work, keyDir, echoPort: echo.port, echoPid: echo.child.process.pid };
  const out: Figure[] = [];
  try {
    for (const sc of RPC_SCENARIOS) {
      if (!only(sc.id)) continue;
      const why = sc.unavailable?.();
      if (why) {
        out.push(notMeasured(sc.id, sc.title, sc.target, why));
        continue;
      }
      log(`  ${sc.id} …`);
      try {
        const r = await sc.run(env);
        for (const f of Array.isArray(r) ? r : [r]) out.push(judge(f));
      } catch (err) {
        out.push(failed(sc.id, sc.title, sc.target, err));
      }
    }
  } finally {
    await echo.stop();
    rmSync(work, { recursive: true, force: true });
  }
  return out;
}
