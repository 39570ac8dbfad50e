/**
 * One verifier process of the propagation benchmark: the embeddable verifier (createVerifier)
 * fed by the Redis store's revocation source, exactly as a service embedding the library runs it.
 * Records when each sequence is applied, as epoch milliseconds with sub-millisecond resolution
 * (performance.timeOrigin + performance.now(): the same machine clock as the parent's), and
 * reports them only when asked, so that no IPC work competes for the CPU while revocations
 * propagate.
 *
 *   (forked by bench/propagation.ts)  propagation-worker.js --redis redis://… --issuer …
 *
 * To the parent: {type:'ready', seq} once the log is loaded; {type:'report', applied: [[seq, at], …]}
 * in answer to {type:'report'}. From the parent: {type:'report'} and {type:'stop'}.
 */
import { RedisTokenStore } from '../src/store/redis-token-store.js';
import { createInternalVerifier } from '../src/verifier/create-verifier.js';
import { createStaticKeyResolver } from '../src/verifier/key-resolvers.js';

export type WorkerMessage = { type: 'ready'; seq: number } | { type: 'report'; applied: Array<[number, number]> };

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const url = arg('redis');
  if (!url || !process.send) throw new Error('run by bench/propagation.ts: needs --redis and an IPC channel');
  const send = (m: WorkerMessage) => process.send?.(m);
  const applied: Array<[number, number]> = [];
  const store = new RedisTokenStore({ url, retentionMs: 3_600_000 });
  const verifier = createInternalVerifier({
    issuer: arg('issuer') ?? 'https://issuer.bench.example',
    keys: createStaticKeyResolver([]),
    revocations: store,
  }, {
    onApplied: (seq) => {
      applied.push([seq, performance.timeOrigin + performance.now()]);
    },
  });
  await verifier.start();
  send({ type: 'ready', seq: verifier.status().revocation.appliedSeq });
  process.on('message', (m: { type?: string }) => {
    if (m?.type === 'report') send({ type: 'report', applied });
    if (m?.type !== 'stop') return;
    void verifier
      .stop()
      .then(() => store.close())
      .finally(() => process.exit(0));
  });
  process.on('disconnect', () => process.exit(0));
}

main().catch((err: unknown) => {
  process.stderr.write(`propagation-worker: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
