/**
 * h2load (nghttp2) as the gRPC load generator: it posts one prebuilt gRPC frame as the body of
 * every request. It only sees HTTP statuses — a gRPC error is still "HTTP 200, succeeded" to it —
 * so every run is checked twice: a real grpc-js call with the same bytes before the run must
 * answer OK with the expected content, and h2load's DATA byte count per request must match the
 * size of that good answer (an error reply is trailers-only: no DATA at all).
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { findOnPath, pinned } from './processes.js';

/** The exact command that installs h2load on Debian/Ubuntu. */
export const H2LOAD_INSTALL = 'apt-get install -y nghttp2-client';

export function h2loadAvailable(): boolean {
  return findOnPath('h2load') !== undefined;
}

/** A gRPC length-prefixed message: flag 0 (uncompressed), 4-byte big-endian length, bytes. */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

export function writeFrame(path: string, message: Uint8Array): string {
  writeFileSync(path, grpcFrame(message));
  return path;
}

export interface H2loadOptions {
  /** Full URL: http://127.0.0.1:PORT/package.Service/Method */
  url: string;
  /** File holding one gRPC frame: the body of every request (gRPC); none for an HTTP/1.1 GET. */
  bodyFile?: string;
  /** HTTP/1.1 (h2load --h1: keep-alive connections, `streams` = pipelining depth, 1 = none) instead of gRPC over h2c. */
  h1?: boolean;
  /** Request headers (`name: value`): an HTTP/1.1 run's, or extra ones for a gRPC run (which always sends content-type and te). */
  headers?: string[];
  /** Connections (h2load -c). */
  clients: number;
  /** Concurrent streams per connection (h2load -m). */
  streams: number;
  /** Measured duration (h2load -D), seconds. */
  durationS: number;
  /** Warm-up before the measured duration (h2load --warm-up-time), seconds. */
  warmupS: number;
  /** CPU list for taskset, e.g. "1". */
  cpus?: string;
}

export interface H2loadResult {
  /** Completed requests per second over the measured duration, as h2load computes it. */
  reqPerSec: number;
  total: number;
  /** Requests started, including those still in flight when the run ended. */
  started: number;
  succeeded: number;
  failed: number;
  errored: number;
  timeout: number;
  status2xx: number;
  /** 3xx + 4xx + 5xx responses. */
  statusOther: number;
  /** DATA payload bytes received, all requests. */
  dataBytes: number;
  /** All bytes received (for HTTP/1.1: status lines, headers and bodies). */
  totalBytes: number;
  /** Mean/SD and extremes of request time (ms); h2load reports no percentiles. */
  latencyMs: { min: number; max: number; mean: number; sd: number };
  command: string;
}

export function h2loadArgs(o: H2loadOptions): string[] {
  return [
    'h2load',
    // h2load takes whole seconds unless a unit is given.
    '-D', `${Math.round(o.durationS * 1000)}ms`,
    '--warm-up-time', `${Math.round(o.warmupS * 1000)}ms`,
    '-c', String(o.clients),
    '-m', String(o.streams),
    '-t', '1',
    ...(o.h1
      ? ['--h1', ...(o.headers ?? []).flatMap((h) => ['--header', h])]
      : ['--header', 'content-type: application/grpc', '--header', 'te: trailers', ...(o.headers ?? []).flatMap((h) => ['--header', h])]),
    ...(o.bodyFile !== undefined ? ['-d', o.bodyFile] : []),
    o.url,
  ];
}

export async function runH2load(o: H2loadOptions): Promise<H2loadResult> {
  const argv = pinned(o.cpus, h2loadArgs(o));
  const [cmd, ...args] = argv as [string, ...string[]];
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`h2load exited with ${code}:\n${out.slice(-2000)}`))));
  });
  return { ...parseH2loadOutput(output), command: argv.map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' ') };
}

function toMs(value: string, unit: string): number {
  const v = Number(value);
  if (unit === 'us') return v / 1000;
  if (unit === 's') return v * 1000;
  return v;
}

/** Parse h2load's summary. Throws if the lines it needs are missing. */
export function parseH2loadOutput(out: string): Omit<H2loadResult, 'command'> {
  const finished = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out);
  const req = /requests: (\d+) total, (\d+) started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  const traffic = /traffic: [\d.]+\w* \((\d+)\) total, .*? headers .*?, [\d.]+\w* \((\d+)\) data/.exec(out);
  const time = /time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)/.exec(out);
  if (!finished || !req || !codes || !traffic || !time) throw new Error(`unexpected h2load output:\n${out.slice(-2000)}`);
  return {
    reqPerSec: Number(finished[1]),
    total: Number(req[1]),
    started: Number(req[2]),
    succeeded: Number(req[3]),
    failed: Number(req[4]),
    errored: Number(req[5]),
    timeout: Number(req[6]),
    status2xx: Number(codes[1]),
    statusOther: Number(codes[2]) + Number(codes[3]) + Number(codes[4]),
    dataBytes: Number(traffic[2]),
    totalBytes: Number(traffic[1]),
    latencyMs: {
      min: toMs(time[1]!, time[2]!),
      max: toMs(time[3]!, time[4]!),
      mean: toMs(time[5]!, time[6]!),
      sd: toMs(time[7]!, time[8]!),
    },
  };
}

/**
 * Check a run against the size of a known-good reply frame. Returns a problem, or undefined.
 * Every succeeded request must have brought a good reply's DATA (a gRPC error brings none, so even
 * 2% of errors fail this); calls still in flight when the run stopped may add DATA of their own,
 * at most `inFlight` replies' worth. 2% slack covers replies whose size varies slightly.
 */
export function checkRun(r: H2loadResult, goodReplyFrameBytes: number, inFlight: number): string | undefined {
  if (r.total === 0) return 'h2load completed no request';
  if (r.failed + r.errored + r.timeout > 0) return `h2load: ${r.failed} failed, ${r.errored} errored, ${r.timeout} timed out of ${r.total}`;
  // Requests cut off at the end of the run may have their 200 headers without being done.
  if (r.statusOther > 0 || r.status2xx < r.succeeded) return `h2load: ${r.statusOther} non-2xx HTTP statuses`;
  const low = r.succeeded * goodReplyFrameBytes * 0.98;
  const high = (r.started + inFlight) * goodReplyFrameBytes * 1.02;
  if (r.dataBytes < low || r.dataBytes > high) {
    return `DATA bytes ${r.dataBytes} for ${r.succeeded} succeeded requests do not match good replies of ${goodReplyFrameBytes} bytes (gRPC errors carry no DATA)`;
  }
  return undefined;
}

/**
 * Check an HTTP/1.1 run against a known-good response of `goodResponseBytes` (status line, headers
 * and body, as read off the socket): every response must be a 2xx, and the bytes received must be
 * that many per response, so a 200 without the expected headers (or a denial) cannot pass.
 */
export function checkH1Run(r: H2loadResult, goodResponseBytes: number, inFlight: number): string | undefined {
  if (r.total === 0) return 'h2load completed no request';
  if (r.failed + r.errored + r.timeout > 0) return `h2load: ${r.failed} failed, ${r.errored} errored, ${r.timeout} timed out of ${r.total}`;
  if (r.statusOther > 0 || r.status2xx < r.succeeded) return `h2load: ${r.statusOther} non-2xx HTTP statuses`;
  const low = r.succeeded * goodResponseBytes * 0.98;
  const high = (r.started + inFlight) * goodResponseBytes * 1.02;
  if (r.totalBytes < low || r.totalBytes > high) {
    return `${r.totalBytes} bytes for ${r.succeeded} succeeded requests do not match good responses of ${goodResponseBytes} bytes`;
  }
  return undefined;
}
