/**
 * An OTLP/HTTP sink for the tracing benchmark, in its own process: answers every POST /v1/traces
 * with 200 and an empty ExportTraceServiceResponse, as a collector that keeps up would, and counts
 * requests and bytes (GET /stats). Prints `{"port":N}` once bound.
 *
 *   node dist/bench/otlp-sink.js
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { benchScript, pinned, startChild, waitForJsonLine } from './processes.js';

/** Start the sink pinned to `cpus`; `url` is an OTEL_EXPORTER_OTLP_ENDPOINT. */
export async function startOtlpSink(cpus?: string): Promise<{ url: string; stats(): Promise<{ requests: number; bytes: number }>; stop(): Promise<void> }> {
  const child = startChild('otlp-sink', pinned(cpus, [process.execPath, benchScript('otlp-sink.js')]));
  const { port } = await waitForJsonLine<{ port: number }>(child, (v) => typeof v.port === 'number');
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    stats: async () => (await (await fetch(`${url}/stats`)).json()) as { requests: number; bytes: number },
    stop: () => child.stop(),
  };
}

function main(): void {
  let requests = 0;
  let bytes = 0;
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/stats') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ requests, bytes }));
      return;
    }
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      requests++;
      bytes += n;
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`));
  const stop = () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
