/**
 * Revocation propagation: N verifier processes (bench/propagation-worker.ts, the embeddable
 * verifier on the Redis revocation source) and a real authority process with Redis. The parent
 * revokes (gRPC Revoke by token_id at the authority) one at a time and, per revocation and
 * verifier, takes the time from Revoke returning to the verifier having applied that sequence —
 * both read from the same machine clock (epoch ms with sub-ms resolution).
 *
 * Nothing is pinned here: 10 verifier processes, the authority, redis-server and the parent
 * share the machine's cores, as they would on a small host.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OPTIONS } from '../src/config/options.js';
import { authorityClient } from '../test/helpers/grpc-client.js';
import { BENCH_ISSUER } from './fixtures.js';
import { judge, TARGETS, type Figure } from './figures.js';
import { epochMs, percentiles, round } from './measure.js';
import { benchScript, startChild, startCliServer, type Child } from './processes.js';
import type { WorkerMessage } from './propagation-worker.js';

export interface PropagationOptions {
  redisUrl: string;
  /** Verifier processes. Default 10. */
  verifiers: number;
  /** Revocations, one at a time. Default 200. */
  revocations: number;
  /** Pause between revocations, ms. Default 10. */
  gapMs?: number;
}

interface Worker {
  child: Child;
  readySeq: number;
}

function startWorker(redisUrl: string, index: number): Promise<Worker> {
  const child = startChild(`propagation-worker-${index}`, [process.execPath, benchScript('propagation-worker.js'), '--redis', redisUrl, '--issuer', BENCH_ISSUER], process.env, { ipc: true });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`propagation worker ${index} not ready in 20 s:\n${child.output()}`)), 20_000);
    child.process.once('message', (m: WorkerMessage) => {
      clearTimeout(timer);
      if (m.type === 'ready') resolve({ child, readySeq: m.seq });
      else reject(new Error(`propagation worker ${index}: unexpected first message`));
    });
    void child.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`propagation worker ${index} exited (${code}):\n${child.output()}`));
    });
  });
}

/** Every (seq, appliedAt) a worker recorded so far. */
function report(w: Worker): Promise<Array<[number, number]>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('propagation worker did not report within 5 s')), 5000);
    const onMessage = (m: WorkerMessage) => {
      if (m.type !== 'report') return;
      clearTimeout(timer);
      w.child.process.off('message', onMessage);
      resolve(m.applied);
    };
    w.child.process.on('message', onMessage);
    w.child.process.send({ type: 'report' });
  });
}

export async function benchPropagation(o: PropagationOptions): Promise<Figure[]> {
  const work = mkdtempSync(join(tmpdir(), 'ta-bench-prop-'));
  const authority = await startCliServer('serve', {
    TA_ISSUER: BENCH_ISSUER,
    TA_REDIS_URL: o.redisUrl,
    TA_KEY_DIR: join(work, 'keys'),
    // One caller revokes everything here; the limit is not what is measured.
    ...(OPTIONS.some((x) => x.env === 'TA_RATE_LIMIT_REVOKE') ? { TA_RATE_LIMIT_REVOKE: 'off' } : {}),
  });
  const client = authorityClient(authority.grpcPort);
  const workers: Worker[] = [];
  try {
    workers.push(...(await Promise.all(Array.from({ length: o.verifiers }, (_, i) => startWorker(o.redisUrl, i)))));
    const revocations: Array<{ seq: number; calledAt: number; returnedAt: number }> = [];
    // Spaced, not waited for: the workers report only at the end, so nothing but the revocation
    // itself runs while it propagates. The gap is far longer than any propagation, so none queue.
    for (let i = 0; i < o.revocations; i++) {
      const calledAt = epochMs();
      const res = await client.revoke({ target: { $case: 'tokenId', tokenId: randomBytes(16).toString('base64url') }, reason: 'bench' });
      const returnedAt = epochMs();
      revocations.push({ seq: Number(res.sequence), calledAt, returnedAt });
      await new Promise((r) => setTimeout(r, o.gapMs ?? 10));
    }
    const last = revocations[revocations.length - 1]?.seq ?? 0;
    let applied: Array<Array<[number, number]>> = [];
    for (let attempt = 0; attempt < 20; attempt++) {
      applied = await Promise.all(workers.map(report));
      if (applied.every((a) => a.some(([seq]) => seq >= last))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const fromReturn: number[] = [];
    const fromCall: number[] = [];
    let unseen = 0;
    for (const r of revocations) {
      for (const a of applied) {
        // onApplied reports the contiguous applied sequence: the first report at or past r.seq is when r was applied.
        const hit = a.find(([seq]) => seq >= r.seq);
        if (!hit) {
          unseen++;
          continue;
        }
        fromReturn.push(hit[1] - r.returnedAt);
        fromCall.push(hit[1] - r.calledAt);
      }
    }
    const ret = percentiles(fromReturn);
    const call = percentiles(fromCall);
    const rpc = percentiles(revocations.map((r) => r.returnedAt - r.calledAt));
    const samples = fromReturn.length;
    const common = {
      status: (unseen > 0 ? 'failed' : 'measured') as Figure['status'],
      latency: { p50: ret.p50, p90: ret.p90, p99: ret.p99, max: ret.max, count: samples, unit: 'ms' },
      notes: [
        ...(unseen > 0 ? [`${unseen} (revocation, verifier) pairs never applied`] : []),
        `${o.revocations} revocations (gRPC Revoke by token_id at a separate authority process with Redis), ${o.gapMs ?? 10} ms apart, each timed at ${o.verifiers} verifier processes (createVerifier + the Redis revocation source), which record the time each sequence is applied and report only after the run: ${samples} samples`,
        `from Revoke returning to applied: p50 ${ret.p50.toFixed(3)} ms, p99 ${ret.p99.toFixed(3)} ms, max ${ret.max.toFixed(3)} ms (negative: the verifier applied it before the caller had the reply — Redis publishes within the same script that answers)`,
        `from Revoke being called: p50 ${call.p50.toFixed(3)} ms, p99 ${call.p99.toFixed(3)} ms, max ${call.max.toFixed(3)} ms; the Revoke call itself: p50 ${rpc.p50.toFixed(3)} ms, p99 ${rpc.p99.toFixed(3)} ms`,
        'nothing pinned: verifiers, authority, redis-server and the bench share both cores',
      ],
      details: {
        fromReturnMs: mapRound(ret),
        fromCallMs: mapRound(call),
        revokeRpcMs: mapRound(rpc),
        verifiers: o.verifiers,
        revocations: o.revocations,
      },
    };
    return [
      judge({ id: 'propagation.p99', title: `Revocation propagation to ${o.verifiers} verifier processes, p99`, measured: { value: ret.p99, unit: 'ms' }, target: TARGETS.propagationP99, ...common }),
      judge({ id: 'propagation.max', title: `Revocation propagation to ${o.verifiers} verifier processes, max`, measured: { value: ret.max, unit: 'ms' }, target: TARGETS.propagationMax, ...common, notes: ['same samples as the p99 row'], details: undefined }),
    ];
  } finally {
    client.close();
    await Promise.all(
      workers.map(async (w) => {
        if (w.child.process.connected) w.child.process.send({ type: 'stop' });
        const timer = setTimeout(() => w.child.process.kill('SIGKILL'), 3000);
        await w.child.exited;
        clearTimeout(timer);
      }),
    );
    await authority.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

function mapRound(p: ReturnType<typeof percentiles>): Record<string, number> {
  return Object.fromEntries(Object.entries(p).map(([k, v]) => [k, k === 'count' ? v : round(v, 3)]));
}
