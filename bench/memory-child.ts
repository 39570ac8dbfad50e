/**
 * Child process of the memory benchmark (run with `node --expose-gc`, so heap figures are taken
 * after full collections and nothing else lives in the heap):
 *
 *   node --expose-gc dist/bench/memory-child.js --entries 1000000 [--redis redis://… --prefix ta:bench:]
 *
 * Starts a verifier (createVerifier + RevocationSync, the production path) on a revocation log of
 * `entries` jti revocations and reports, as one JSON line on stdout:
 *   loadMs         time from verifier.start() to the state being loaded (every page read, parsed and applied)
 *   bytesPerEntry  heapUsed after − before, divided by the entries, after full GCs
 * The log is either an in-process source that serves JSON lines and parses them exactly as the
 * Redis store does (parseFeedMessageBytes on each entry's bytes), or a real Redis log filled
 * beforehand by the parent.
 */
import { newId } from '../src/authority/session-records.js';
import { parseFeedMessageBytes, type RevocationEvent } from '../src/shared/revocation-event.js';
import { RedisTokenStore } from '../src/store/redis-token-store.js';
import { createVerifier } from '../src/verifier/create-verifier.js';
import type { RevocationLogPage, RevocationSource } from '../src/verifier/revocation-source.js';
import { createStaticKeyResolver } from '../src/verifier/key-resolvers.js';

export interface MemoryChildResult {
  source: 'json' | 'redis';
  entries: number;
  loadMs: number;
  bytesPerEntry: number;
  heapBeforeBytes: number;
  heapAfterBytes: number;
  /** RSS growth over the load, for comparison (includes allocator slack). */
  rssDeltaBytes: number;
  idChars: number;
}

/**
 * An in-process log of JSON lines, kept outside the JS heap (one Buffer, as Redis would send it):
 * each read parses its page's entries from their bytes, exactly as the Redis store's reads do
 * (parseFeedMessageBytes), so whatever the parsed events keep alive is charged to the state.
 */
export class JsonLinesLog implements RevocationSource {
  private readonly text: Buffer;
  /** Byte offset where line i starts; line i holds seq i+1. */
  private readonly starts: Uint32Array;

  constructor(lines: readonly string[]) {
    this.text = Buffer.from(lines.join('\n') + '\n', 'latin1');
    this.starts = new Uint32Array(lines.length + 1);
    let at = 0;
    for (let i = 0; i < lines.length; i++) {
      this.starts[i] = at;
      at += (lines[i] as string).length + 1;
    }
    this.starts[lines.length] = at;
  }

  get length(): number {
    return this.starts.length - 1;
  }

  async readLog(afterSeq: number, limit: number): Promise<RevocationLogPage> {
    const end = Math.min(this.length, afterSeq + limit);
    const events: RevocationEvent[] = [];
    for (let i = afterSeq; i < end; i++) {
      // A copy, as every Redis reply is its own buffer (a view would keep nothing alive either).
      const line = Buffer.from(this.text.subarray(this.starts[i] as number, (this.starts[i + 1] as number) - 1));
      const m = parseFeedMessageBytes(line);
      if (!m || m.type !== 'rev') throw new Error('bad log line');
      events.push(m);
    }
    return { events, headSeq: this.length };
  }

  async subscribe(listener: Parameters<RevocationSource['subscribe']>[0]) {
    queueMicrotask(() => listener.onReady());
    return { close: async () => undefined };
  }
}

/** `n` jti revocation log lines shaped like the store's: ids as the authority mints them, untils spread over 15 min. */
export function revocationLines(n: number, nowMs = Date.now()): string[] {
  const lines = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    lines[i] = JSON.stringify({ v: 1, type: 'rev', seq: i + 1, kind: 'jti', id: newId(), until: nowMs + 60_000 + ((i * 7919) % 900_000), at: nowMs });
  }
  return lines;
}

function heapUsed(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

export async function measureLoad(source: RevocationSource, entries: number, kind: 'json' | 'redis'): Promise<MemoryChildResult> {
  const verifier = createVerifier({
    issuer: 'https://issuer.bench.example',
    keys: createStaticKeyResolver([]),
    revocations: source,
    tokenCacheSize: 0,
    startTimeoutMs: 120_000,
  });
  const before = heapUsed();
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  await verifier.start();
  const loadMs = performance.now() - t0;
  const after = heapUsed();
  const status = verifier.status();
  if (status.revocation.entries.jti !== entries || !status.revocation.synced) {
    throw new Error(`loaded ${status.revocation.entries.jti} of ${entries} entries (synced: ${status.revocation.synced})`);
  }
  const result: MemoryChildResult = {
    source: kind,
    entries,
    loadMs,
    bytesPerEntry: (after - before) / entries,
    heapBeforeBytes: before,
    heapAfterBytes: after,
    rssDeltaBytes: process.memoryUsage().rss - rssBefore,
    idChars: newId().length,
  };
  await verifier.stop();
  return result;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const entries = Number(arg('entries') ?? 1_000_000);
  const redisUrl = arg('redis');
  let result: MemoryChildResult;
  if (redisUrl) {
    const store = new RedisTokenStore({ url: redisUrl, keyPrefix: arg('prefix') ?? 'ta:v1:', retentionMs: 3_600_000, commandTimeoutMs: 10_000 });
    try {
      result = await measureLoad(store, entries, 'redis');
    } finally {
      await store.close();
    }
  } else {
    const log = new JsonLinesLog(revocationLines(entries));
    result = await measureLoad(log, entries, 'json');
    if (log.length !== entries) throw new Error('unreachable'); // keeps the log alive across both heap readings
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`memory-child: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}
