/**
 * The baseline of the forward-auth figure: a bare node:http server answering every request with
 * 200, an empty body and the headers it is given (the sidecar's own answer for the same token, so
 * both send comparable responses), in its own process.
 *
 *   node dist/bench/http-baseline-server.js --headers <file.json> [--port 0]
 *
 * No routing, no query parsing, no token: what node:http itself costs per keep-alive request on
 * one core, the ceiling for any forward-auth endpoint served by Node. Prints `{"port":N}` once bound.
 */
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';

/** The raw response to one HTTP/1.1 keep-alive GET: status, headers (lower-case) and its size on the wire. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  /** Bytes of the whole response (status line, headers, body), as h2load counts them. */
  bytes: number;
}

/** One GET over a fresh keep-alive connection, read off the socket (h2load counts these bytes). */
export function rawGet(port: number, path: string, headers: Record<string, string>): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`GET ${path}: no complete response within 5 s (got ${JSON.stringify(buf.toString('latin1').slice(0, 500))})`));
    }, 5000);
    const finish = (r: RawResponse) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('connect', () => {
      const lines = [`GET ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine, ...fields] = buf.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? '')?.[1]);
      const h: Record<string, string> = {};
      for (const f of fields) {
        const i = f.indexOf(':');
        h[f.slice(0, i).trim().toLowerCase()] = f.slice(i + 1).trim();
      }
      const bodyStart = end + 4;
      if (h['content-length'] !== undefined) {
        const total = bodyStart + Number(h['content-length']);
        if (buf.length >= total) finish({ status, headers: h, bytes: total });
      } else if (/chunked/i.test(h['transfer-encoding'] ?? '')) {
        const term = buf.indexOf('0\r\n\r\n', bodyStart);
        if (term >= 0) finish({ status, headers: h, bytes: term + 5 });
      } else {
        finish({ status, headers: h, bytes: bodyStart });
      }
    });
  });
}

function main(): void {
  const arg = (name: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const headers = JSON.parse(readFileSync(arg('headers') ?? '', 'utf8')) as Record<string, string>;
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, headers);
    res.end('');
  });
  server.listen(Number(arg('port') ?? 0), '127.0.0.1', () => {
    const address = server.address();
    process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
