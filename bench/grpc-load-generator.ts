/**
 * A small gRPC load generator over node:http2 for what h2load cannot do: send a *different*
 * request body each call (Refresh spends its refresh token, so every call needs a fresh one;
 * Revoke of a new id each time) and read every reply's grpc-status and latency.
 *
 *   node dist/bench/grpc-load-generator.js --url http://127.0.0.1:PORT/pkg.Service/Method \
 *        --frames frames.bin [--repeat N] --concurrency 16 [--connections 4] [--duration 3] [--save replies.bin]
 *        [--tls-ca ca.pem --tls-cert client.pem --tls-key client.key] [--connection-per-call]
 *
 * With an https:// URL it speaks TLS (the CA to trust, and a client certificate for mutual TLS);
 * `--connection-per-call` opens a new connection for every call (a full TLS handshake each time,
 * no session resumption) and closes it after the reply, `concurrency` of them at once.
 * `frames.bin` is a concatenation of gRPC frames (each: flag byte, 4-byte length, message); each is
 * sent exactly once, in order, with `concurrency` calls in flight, until the frames run out or
 * `duration` seconds pass. `--repeat N` sends the single frame in the file N times. Prints one JSON
 * line (GeneratorResult). With `--save`, the reply frames are written in request order (a failed
 * call leaves an empty frame), so the caller can decode them (e.g. Issue replies → refresh tokens).
 *
 * It runs in its own process, pinned away from the server under test. Being JavaScript it is far
 * slower than h2load, so the figures it produces are checked against its own ceiling (the echo
 * server driven by it) and compared with the echo figure h2load measures — the conservative
 * denominator.
 */
import { connect, constants, type ClientHttp2Session, type SecureClientSessionOptions } from 'node:http2';
import { readFileSync, writeFileSync } from 'node:fs';

export interface GeneratorResult {
  /** Calls completed (any status). */
  completed: number;
  /** Calls that ended with grpc-status 0. */
  ok: number;
  /** grpc-status → count ("http-<code>" or "reset" when no gRPC status came back). */
  statuses: Record<string, number>;
  elapsedMs: number;
  /** ok / elapsed. */
  okPerSec: number;
  /** Latency of OK calls, ms. */
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  /** Frames left unsent when the duration ended (0 means the frames ran out first or exactly). */
  unsent: number;
}

/** Split a buffer of concatenated gRPC frames. */
export function splitFrames(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at + 5 <= buf.length) {
    const len = buf.readUInt32BE(at + 1);
    out.push(buf.subarray(at, at + 5 + len));
    at += 5 + len;
  }
  if (at !== buf.length) throw new Error('frames file ends inside a frame');
  return out;
}

function pct(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

export interface GenerateOptions {
  url: string;
  frames: Buffer[];
  concurrency: number;
  connections: number;
  durationMs: number;
  save: boolean;
  /** For https:// URLs: the CA, and the client certificate and key (mutual TLS). */
  tls?: { ca: Buffer; cert?: Buffer; key?: Buffer };
  /** A new connection (and handshake) per call instead of `connections` long-lived ones. */
  connectionPerCall?: boolean;
}

function open(origin: string, tls: GenerateOptions['tls']): Promise<ClientHttp2Session> {
  const options: SecureClientSessionOptions = tls ? { ca: tls.ca, ...(tls.cert ? { cert: tls.cert } : {}), ...(tls.key ? { key: tls.key } : {}) } : {};
  const s = connect(origin, options);
  return new Promise((resolve, reject) => {
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

export async function generate(o: GenerateOptions): Promise<{ result: GeneratorResult; replies: Buffer[] }> {
  const u = new URL(o.url);
  const sessions: ClientHttp2Session[] = [];
  if (!o.connectionPerCall) for (let i = 0; i < o.connections; i++) sessions.push(await open(u.origin, o.tls));
  const headers = {
    [constants.HTTP2_HEADER_METHOD]: 'POST',
    [constants.HTTP2_HEADER_PATH]: u.pathname,
    'content-type': 'application/grpc',
    te: 'trailers',
  };
  const statuses: Record<string, number> = {};
  const latencies = new Float64Array(o.frames.length);
  const replies: Buffer[] = o.save ? new Array<Buffer>(o.frames.length).fill(Buffer.alloc(0)) : [];
  let okCount = 0;
  let completed = 0;
  let next = 0;
  const start = performance.now();
  const deadline = start + o.durationMs;

  const one = async (index: number): Promise<void> => {
    const t0 = performance.now();
    let own: ClientHttp2Session | undefined;
    if (o.connectionPerCall) {
      try {
        own = await open(u.origin, o.tls);
      } catch {
        statuses['connect-failed'] = (statuses['connect-failed'] ?? 0) + 1;
        completed++;
        return;
      }
    }
    return new Promise((resolve) => {
      const req = (own ?? sessions[index % sessions.length]!).request(headers);
      const chunks: Buffer[] = [];
      let grpcStatus: string | undefined;
      req.on('response', (h) => {
        // Trailers-only replies (errors) carry grpc-status in the headers.
        if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
        else if (h[':status'] !== 200) grpcStatus = `http-${String(h[':status'])}`;
      });
      req.on('trailers', (t) => {
        if (t['grpc-status'] !== undefined) grpcStatus = String(t['grpc-status']);
      });
      req.on('data', (c: Buffer) => {
        if (o.save) chunks.push(c);
      });
      req.on('close', () => {
        const status = grpcStatus ?? 'reset';
        statuses[status] = (statuses[status] ?? 0) + 1;
        completed++;
        if (status === '0') {
          latencies[okCount++] = performance.now() - t0;
          if (o.save) replies[index] = Buffer.concat(chunks);
        }
        own?.close();
        resolve();
      });
      req.on('error', () => undefined);
      req.end(o.frames[index]);
    });
  };

  const worker = async () => {
    while (next < o.frames.length && performance.now() < deadline) await one(next++);
  };
  await Promise.all(Array.from({ length: Math.max(1, o.concurrency) }, worker));
  const elapsedMs = performance.now() - start;
  for (const s of sessions) s.close();
  const ok = latencies.subarray(0, okCount).sort();
  let sum = 0;
  for (const x of ok) sum += x;
  return {
    result: {
      completed,
      ok: okCount,
      statuses,
      elapsedMs,
      okPerSec: okCount / (elapsedMs / 1000),
      latencyMs: { p50: pct(ok, 50), p90: pct(ok, 90), p99: pct(ok, 99), max: ok.length ? (ok[ok.length - 1] as number) : NaN, mean: ok.length ? sum / ok.length : NaN },
      unsent: o.frames.length - next,
    },
    replies,
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string, dflt?: string): string | undefined => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : dflt;
  };
  const url = arg('url');
  const file = arg('frames');
  if (!url || !file) throw new Error('--url and --frames are required');
  let frames = splitFrames(readFileSync(file));
  const repeat = Number(arg('repeat', '0'));
  if (repeat > 0) frames = Array.from({ length: repeat }, () => frames[0] as Buffer);
  const save = arg('save');
  const { result, replies } = await generate({
    url,
    frames,
    concurrency: Number(arg('concurrency', '16')),
    connections: Number(arg('connections', '4')),
    durationMs: Number(arg('duration', '3600')) * 1000,
    save: save !== undefined,
    ...(arg('tls-ca') ? { tls: { ca: readFileSync(arg('tls-ca')!), ...(arg('tls-cert') ? { cert: readFileSync(arg('tls-cert')!) } : {}), ...(arg('tls-key') ? { key: readFileSync(arg('tls-key')!) } : {}) } } : {}),
    connectionPerCall: args.includes('--connection-per-call'),
  });
  if (save) writeFileSync(save, Buffer.concat(replies.flatMap((r) => [lengthPrefix(r.length), r])));
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** Replies are saved as [u32 length][reply bytes] records, since a failed call's reply is empty. */
function lengthPrefix(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** Read a file written with --save: the reply bytes of each call (gRPC frames), in request order. */
export function readSavedReplies(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at + 4 <= buf.length) {
    const n = buf.readUInt32BE(at);
    out.push(buf.subarray(at + 4, at + 4 + n));
    at += 4 + n;
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`grpc-load-generator: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}
