import assert from 'node:assert/strict';
import { describe, it, before, after } from 'mocha';
import { renderChart } from '../../../bench/chart.js';
import { judge, TARGETS, type Figure } from '../../../bench/figures.js';
import { checkH1Run, checkRun, grpcFrame, h2loadArgs, parseH2loadOutput } from '../../../bench/h2load.js';
import { describeMachine } from '../../../bench/machine.js';
import { alternate, percentiles } from '../../../bench/measure.js';
import { runMemoryChild } from '../../../bench/memory.js';
import { benchSign, benchVerifyCached, benchVerifyUncached, createMicroContext, type MicroContext } from '../../../bench/micro.js';
import { consoleTable, markdownTable, summarize } from '../../../bench/report.js';
import { benchVerifyBound } from '../../../bench/verify-bound.js';
import { parseArgs, selector } from '../../../bench/run.js';

/**
 * A smoke run of the benchmark suite: every micro-benchmark for a fraction of a second, the memory
 * child on a small log, and the report writers. Speed is measured by `npm run bench`, never here:
 * these tests only check that the harness produces finite, well-formed results.
 */

function assertWellFormed(f: Figure, idPrefix: string): void {
  assert.ok(f.id.startsWith(idPrefix), `id ${f.id}`);
  assert.equal(f.status, 'measured', f.notes.join('; '));
  assert.ok(f.title.length > 0);
  assert.ok(f.measured && Number.isFinite(f.measured.value) && f.measured.value > 0, `measured ${JSON.stringify(f.measured)}`);
  assert.ok(f.baseline && Number.isFinite(f.baseline.value) && f.baseline.value > 0, `baseline ${JSON.stringify(f.baseline)}`);
  assert.ok(f.ratio !== undefined && Number.isFinite(f.ratio) && f.ratio > 0, `ratio ${f.ratio}`);
  assert.ok(f.rounds, 'per-round values kept');
  assert.equal(f.rounds.measured.length, f.rounds.baseline.length);
  assert.ok(f.rounds.ratios.every((r) => Number.isFinite(r) && r > 0));
  if (f.target) assert.equal(typeof f.met, 'boolean');
  else assert.equal(f.met, null);
  assert.ok(f.notes.length > 0, 'says how it was measured');
}

describe('bench smoke', function () {
  this.timeout(60_000);
  let ctx: MicroContext;
  const opts = { roundMs: 25, rounds: 2 };

  before(async () => {
    ctx = await createMicroContext({ cacheCapacity: 200, revocations: 100 });
  });
  after(async () => {
    await ctx.close();
  });

  it('uncached verify: every call misses the cache, against raw crypto.verify', async () => {
    const f = await benchVerifyUncached(ctx, opts);
    assertWellFormed(f, 'verify.uncached');
    assert.deepEqual(f.target, TARGETS.verifyUncached);
    assert.equal(f.details?.cacheHits, 0, 'the pool is larger than the cache, so nothing is a hit');
    assert.ok((f.details?.calls as number) > 0);
  });

  it('uncached verify with the cache off is its own figure without a target', async () => {
    const f = await benchVerifyUncached(ctx, { ...opts, cacheOff: true });
    assertWellFormed(f, 'verify.uncached.cache-off');
    assert.equal(f.target, undefined);
  });

  it('cached verify: every call hits the cache', async () => {
    const f = await benchVerifyCached(ctx, opts);
    assertWellFormed(f, 'verify.cached');
    assert.equal(f.details?.cacheMisses, 0);
  });

  it('bound-token rows: mTLS against the unbound cached path, DPoP against raw crypto.verify of its proofs, with the floor', async () => {
    const figures = await benchVerifyBound(ctx.key, opts, () => true);
    assert.deepEqual(figures.map((f) => f.id), ['verify.bound.mtls', 'verify.bound.dpop']);
    for (const f of figures) assertWellFormed(f, 'verify.bound');
    assert.ok(Number.isFinite(figures[1]!.details?.vsFloor) && (figures[1]!.details?.replayCacheSize as number) > 0, JSON.stringify(figures[1]!.details));
  });

  it('sign: the Issue signer against raw crypto.sign', async () => {
    assertWellFormed(await benchSign(ctx, opts), 'sign');
  });

  it('memory child: loads a log through the verifier and reports bytes per entry', async () => {
    const r = await runMemoryChild(5000);
    assert.equal(r.entries, 5000);
    assert.ok(Number.isFinite(r.loadMs) && r.loadMs > 0);
    assert.ok(Number.isFinite(r.bytesPerEntry) && r.bytesPerEntry > 0);
  });

  it('alternate() pairs rounds and takes medians', async () => {
    let a = 0;
    let b = 0;
    const r = await alternate(3, () => ++a * 10, () => ++b);
    assert.deepEqual(r.a, [10, 20, 30]);
    assert.deepEqual(r.b, [1, 2, 3]);
    assert.deepEqual(r.ratios, [10, 10, 10]);
    assert.equal(r.ratioMedian, 10);
    const p = percentiles([5, 1, 4, 2, 3]);
    assert.equal(p.p50, 3);
    assert.equal(p.max, 5);
  });

  it('judge() marks targets met or missed', () => {
    const base = { id: 'x', title: 'x', status: 'measured' as const, notes: [] };
    assert.equal(judge({ ...base, ratio: 0.95, target: TARGETS.verifyUncached }).met, true);
    assert.equal(judge({ ...base, ratio: 0.85, target: TARGETS.verifyUncached }).met, false);
    assert.equal(judge({ ...base, measured: { value: 6, unit: 'ms' }, target: TARGETS.propagationP99 }).met, false);
    assert.equal(judge({ ...base, ratio: 2 }).met, null);
  });

  it('h2load output is parsed, and a gRPC error hidden behind HTTP 200 is caught by its missing DATA', () => {
    const out = [
      'finished in 2.00s, 24160.00 req/s, 14.74MB/s',
      'requests: 48320 total, 48448 started, 48320 done, 48320 succeeded, 0 failed, 0 errored, 0 timeout',
      'status codes: 48320 2xx, 0 3xx, 0 4xx, 0 5xx',
      'traffic: 29.48MB (30909388) total, 237.16KB (242848) headers (space savings 96.39%), 27.90MB (29252960) data',
      '                     min         max         mean         sd        +/- sd',
      'time for request:      402us     48.93ms      1.93ms      2.25ms    88.74%',
    ].join('\n');
    const r = { ...parseH2loadOutput(out), command: 'h2load …' };
    assert.equal(r.reqPerSec, 24160);
    assert.equal(r.succeeded, 48320);
    assert.equal(r.dataBytes, 29252960);
    assert.equal(r.latencyMs.min, 0.402);
    assert.equal(r.latencyMs.mean, 1.93);
    assert.equal(checkRun(r, 605, 128), undefined, '605-byte replies: consistent');
    assert.match(checkRun({ ...r, dataBytes: 0 }, 605, 128) ?? '', /DATA/, 'all errors: no DATA');
    assert.match(checkRun({ ...r, dataBytes: Math.round(r.dataBytes * 0.9) }, 605, 128) ?? '', /DATA/, '10% errors');
    assert.deepEqual([...grpcFrame(Uint8Array.from([7, 8]))], [0, 0, 0, 0, 2, 7, 8]);
  });

  it('HTTP/1.1 runs (forward-auth): h2load --h1 with headers and no body; a 200 without the claim headers or a denial is caught', () => {
    const args = h2loadArgs({ url: 'http://127.0.0.1:1/authz', h1: true, headers: ['authorization: Bearer t'], clients: 128, streams: 1, durationS: 2, warmupS: 0 });
    assert.ok(args.includes('--h1') && args.includes('authorization: Bearer t'));
    assert.ok(!args.includes('-d') && !args.includes('content-type: application/grpc'));
    const out = [
      'finished in 2.01s, 19404.00 req/s, 3.52MB/s',
      'requests: 39000 total, 39128 started, 39000 done, 39000 succeeded, 0 failed, 0 errored, 0 timeout',
      'status codes: 39000 2xx, 0 3xx, 0 4xx, 0 5xx',
      'traffic: 7.07MB (7410000) total, 5.28MB (5538000) headers (space savings 0.00%), 0B (0) data',
      '                     min         max         mean         sd        +/- sd',
      'time for request:       98us     26.66ms      1.36ms      1.84ms    96.00%',
    ].join('\n');
    const r = { ...parseH2loadOutput(out), command: 'h2load --h1 …' };
    assert.equal(r.totalBytes, 7410000);
    assert.equal(checkH1Run(r, 190, 128), undefined, '190-byte responses: consistent');
    assert.match(checkH1Run(r, 400, 128) ?? '', /do not match/, 'responses shorter than the good one (no claim headers)');
    assert.match(checkH1Run({ ...r, statusOther: 5 }, 190, 128) ?? '', /non-2xx/, 'denials');
  });

  it('reports: the table, the chart and the summary carry every figure', () => {
    const figures: Figure[] = [
      judge({ id: 'verify.cached', title: 'Cached <verify>', status: 'measured', measured: { value: 1e6, unit: 'verifies/s' }, baseline: { name: 'raw', value: 2e4, unit: 'verifies/s' }, ratio: 50, target: TARGETS.verifyCached, notes: ['n'] }),
      judge({ id: 'propagation.p99', title: 'Propagation', status: 'measured', measured: { value: 1.2, unit: 'ms' }, latency: { p50: 0.5, p90: 0.9, p99: 1.2, max: 3, count: 10, unit: 'ms' }, target: TARGETS.propagationP99, notes: ['n'] }),
      { id: 'rpc.scaling.verify', title: 'Scaling', status: 'not-measured', met: null, notes: ['no worker mode'] },
    ];
    const md = markdownTable(figures);
    assert.equal(md.split('\n').length, 2 + figures.length);
    assert.match(md, /\| Cached <verify> \| 1\.00 M verifies\/s .*\| 50× \| ≥ 50× raw crypto\.verify \| met \|/);
    assert.match(md, /\| Scaling \| not measured \|/);
    const svg = renderChart(figures, describeMachine(), 'npm run bench');
    assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(svg, /<\/svg>\n$/);
    assert.ok(svg.includes('Cached &lt;verify&gt;'), 'text is escaped');
    assert.ok(svg.includes('Propagation'));
    assert.ok(consoleTable(figures).includes('not-measured'));
    assert.deepEqual(summarize(figures), { met: 2, missed: 0, noTarget: 0, notMeasured: 1, failed: 0 });
  });

  it('options: --quick, --only and --duration', () => {
    const o = parseArgs(['--quick', '--only', 'verify,rpc.issue', '--duration', '3']);
    assert.equal(o.quick, true);
    assert.equal(o.durationS, 3);
    const only = selector(o.only);
    assert.ok(only('verify.cached') && only('verify.uncached.cache-off') && only('rpc.issue'));
    assert.ok(!only('rpc.refresh') && !only('memory.load'));
    assert.throws(() => parseArgs(['--durration', '3']), /unknown option/);
    assert.ok(selector([])('anything'));
  });
});
