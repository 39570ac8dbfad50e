/**
 * A same-run A/B of two builds of the authority: this build's `token-authority serve` against
 * another build's (another checkout, built), Verify RPC with the same token shape, alternating
 * h2load rounds, both pinned to core 0 with h2load and redis-server on core 1 (`--rpc issue`: the
 * Issue RPC instead, a new session per call, as the rpc.issue row). Prints calls/s and
 * calls per CPU-second of each, per round, and their median ratios. For questions such as "does
 * this change cost anything while its feature is off" (docs/performance.md, Tracing off and on).
 *
 *   git archive <commit> | tar -x -C /tmp/base && ln -s $PWD/node_modules /tmp/base/ && (cd /tmp/base && npx tsc -p .)
 *   node dist/bench/compare-builds.js --other /tmp/base/dist/src/cli.js [--rounds 15] [--duration 2] [--rpc verify|issue]
 *   node dist/bench/compare-builds.js --other dist/src/cli.js --node-flags '--max-semi-space-size=64'   (a V8 flag, same build)
 *   node dist/bench/compare-builds.js --other dist/src/cli.js          (A/A: the noise floor)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { IssueRequest, IssueResponse, VerifyRequest, VerifyResponse } from '../src/gen/tokenauthority/v1/token_authority.js';
import { authorityClient } from '../test/helpers/grpc-client.js';
import { startRedis } from '../test/helpers/redis-server.js';
import { BENCH_AUDIENCE, BENCH_ISSUER } from './fixtures.js';
import { checkRun, runH2load, writeFrame } from './h2load.js';
import { median, round } from './measure.js';
import { CLI_JS, freePort, pinned, processTreeCpuMs, startChild, waitForHttp200 } from './processes.js';

function arg(name: string, dflt?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : dflt;
  if (v === undefined) throw new Error(`--${name} is required (see bench/compare-builds.ts)`);
  return v;
}

async function main(): Promise<void> {
  const clis = { this: CLI_JS, other: resolve(arg('other')) };
  const rounds = Number(arg('rounds', '15'));
  const durationS = Number(arg('duration', '2'));
  const rpc = arg('rpc', 'verify');
  // Node/V8 flags for this build's process only (e.g. --max-semi-space-size=64): an A/B of a flag.
  const nodeFlags = arg('node-flags', '').split(' ').filter((f) => f.length > 0);
  if (rpc !== 'verify' && rpc !== 'issue') throw new Error('--rpc is verify or issue');
  const redis = await startRedis();
  const work = mkdtempSync(join(tmpdir(), 'ta-compare-'));
  const start = async (name: 'this' | 'other') => {
    const grpcPort = await freePort();
    const httpPort = await freePort();
    const child = startChild(`${name} build`, pinned('0', [process.execPath, ...(name === 'this' ? nodeFlags : []), clis[name], 'serve']), {
      PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', TA_GRPC_ADDR: `127.0.0.1:${grpcPort}`, TA_HTTP_ADDR: `127.0.0.1:${httpPort}`,
      TA_LOG_LEVEL: 'warn', TA_ISSUER: BENCH_ISSUER, TA_REDIS_URL: redis.url, TA_KEY_DIR: join(work, name), TA_RATE_LIMIT_ISSUE: 'off',
    });
    await waitForHttp200(child, `http://127.0.0.1:${httpPort}/healthz`);
    const client = authorityClient(grpcPort);
    const issued = await client.issue({ subject: 'bench-user', audience: [BENCH_AUDIENCE], scopes: ['orders:read'] });
    const request = VerifyRequest.fromPartial({ token: issued.accessToken, audience: BENCH_AUDIENCE, requiredScopes: ['orders:read'] });
    const res = await client.verify(request);
    if (!res.valid) throw new Error(`${name} build: Verify answered valid=false (${res.detail})`);
    const issueRequest = IssueRequest.fromPartial({ subject: 'bench-user', audience: [BENCH_AUDIENCE], scopes: ['orders:read'] });
    const issueReply = rpc === 'issue' ? await client.issue(issueRequest) : undefined;
    client.close();
    const method = rpc === 'issue' ? 'Issue' : 'Verify';
    return {
      name, child, pid: child.process.pid!,
      good: (issueReply ? IssueResponse.encode(issueReply).finish().length : VerifyResponse.encode(res).finish().length) + 5,
      url: `http://127.0.0.1:${grpcPort}/tokenauthority.v1.TokenAuthorityService/${method}`,
      bodyFile: writeFrame(join(work, `${name}.bin`), rpc === 'issue' ? IssueRequest.encode(issueRequest).finish() : VerifyRequest.encode(request).finish()),
    };
  };
  const servers = [await start('other'), await start('this')];
  const out = { other: [] as number[], this: [] as number[], otherPerCpu: [] as number[], thisPerCpu: [] as number[], problems: [] as string[] };
  const run = async (s: (typeof servers)[number], d: number) => {
    const c0 = processTreeCpuMs(s.pid);
    const w0 = performance.now();
    const r = await runH2load({ url: s.url, bodyFile: s.bodyFile, clients: 8, streams: 16, durationS: d, warmupS: 0, cpus: '1' });
    const util = ((processTreeCpuMs(s.pid) ?? NaN) - (c0 ?? NaN)) / (performance.now() - w0);
    const problem = checkRun(r, s.good, 128);
    if (problem) out.problems.push(`${s.name}: ${problem}`);
    return { rps: r.reqPerSec, perCpu: r.reqPerSec / util };
  };
  try {
    for (const s of servers) await run(s, 1);
    for (let i = 0; i < rounds; i++) {
      for (const s of i % 2 === 0 ? servers : [...servers].reverse()) {
        const r = await run(s, durationS);
        out[s.name].push(r.rps);
        out[`${s.name}PerCpu`].push(r.perCpu);
      }
    }
  } finally {
    for (const s of servers) await s.child.stop();
    await redis.stop();
    rmSync(work, { recursive: true, force: true });
  }
  const ratios = out.this.map((x, i) => x / out.other[i]!);
  const perCpu = out.thisPerCpu.map((x, i) => x / out.otherPerCpu[i]!);
  process.stdout.write(`${JSON.stringify({
    other: clis.other, rpc, rounds, durationS,
    callsPerSecond: { other: out.other, this: out.this, ratios: ratios.map((r) => round(r, 3)), medianRatio: round(median(ratios), 3) },
    perCpuSecond: { ratios: perCpu.map((r) => round(r, 3)), medianRatio: round(median(perCpu.filter(Number.isFinite)), 3) },
    problems: out.problems,
  }, null, 1)}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
