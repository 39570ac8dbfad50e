import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, type ServerOptions as TlsServerOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { ListenAddress } from '../config/config.js';
import type { Logger } from '../shared/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { ServerSpan, SpanAttributes, Tracing } from '../telemetry/tracing.js';

/**
 * A route answers with a status, a body and headers; anything thrown becomes a logged 500. `span`:
 * the request's span while tracing is on, for outcome attributes (telemetry/tracing.ts says which).
 */
export type Route = (req: IncomingMessage, span?: SpanAttributes) => Promise<HttpAnswer> | HttpAnswer;
export interface HttpAnswer {
  status: number;
  body: string;
  contentType?: string;
  headers?: Record<string, string>;
}

export interface HttpServerOptions {
  address: ListenAddress;
  /** Exact paths, GET and HEAD only. */
  routes: Record<string, Route>;
  /**
   * Paths that also match everything below them (`/authz` matches `/authz` and `/authz/…`), for
   * any method: forward-auth proxies send the original request's method. Bodies are never read.
   */
  prefixRoutes?: Record<string, Route>;
  /**
   * Exact paths served for POST only (GET/HEAD answer 405). The route reads its own body, with a
   * bounded reader such as readFormBody (form-body.ts).
   */
  postRoutes?: Record<string, Route>;
  /** Serve HTTPS with these options (key, cert; ca + requestCert for mutual TLS) instead of HTTP. */
  tls?: TlsServerOptions;
  logger: Logger;
  /** OpenTelemetry tracing: a span per request; undefined (off) costs one check. */
  tracing?: Tracing;
}

/**
 * The small HTTP side: JWKS, discovery, metrics, health, forward-auth and the OAuth endpoints. Only
 * POST routes read a body, each through a reader with a hard size limit, so a hostile client
 * cannot make it buffer more than that.
 */
export class HttpServer {
  private readonly server: Server;

  constructor(private readonly opts: HttpServerOptions) {
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    this.server = opts.tls ? createTlsServer(opts.tls, handler) : createServer(handler);
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 10_000;
    this.server.keepAliveTimeout = 5_000;
  }

  async start(): Promise<number> {
    const { host, port } = this.opts.address;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return (this.server.address() as AddressInfo).port;
  }

  get port(): number {
    return (this.server.address() as AddressInfo | null)?.port ?? 0;
  }

  async stop(): Promise<void> {
    this.server.closeIdleConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    const prefix = this.prefixOf(path);
    const prefixed = prefix === undefined ? undefined : this.opts.prefixRoutes![prefix];
    const post = prefixed ? undefined : this.opts.postRoutes?.[path];
    const route = prefixed ?? post ?? this.opts.routes[path];
    const traced: ServerSpan | undefined = this.opts.tracing?.startHttp(req, route ? (prefix ?? path) : undefined, this.opts.tls ? 'https' : 'http');
    let answer: HttpAnswer;
    if (!route) answer = { status: 404, body: JSON.stringify({ error: 'not found' }) };
    else if (post && req.method !== 'POST') answer = { status: 405, body: JSON.stringify({ error: 'method not allowed' }), headers: { allow: 'POST' } };
    else if (!prefixed && !post && req.method !== 'GET' && req.method !== 'HEAD') answer = { status: 405, body: JSON.stringify({ error: 'method not allowed' }), headers: { allow: 'GET, HEAD' } };
    else {
      try {
        answer = traced ? await traced.run(() => route(req, traced.span)) : await route(req);
      } catch (err) {
        this.opts.logger.error({ err, path }, 'http route failed');
        answer = { status: 500, body: JSON.stringify({ error: 'internal error' }) };
      }
    }
    res.writeHead(answer.status, { 'content-type': answer.contentType ?? 'application/json', ...answer.headers });
    res.end(req.method === 'HEAD' ? undefined : answer.body);
    traced?.endHttp(answer.status);
  }

  /** The prefix route `path` falls under, if any. */
  private prefixOf(path: string): string | undefined {
    const prefixes = this.opts.prefixRoutes;
    if (!prefixes) return undefined;
    for (const prefix in prefixes) {
      if (path === prefix || path.startsWith(prefix + '/')) return prefix;
    }
    return undefined;
  }
}

export function metricsRoute(metrics: Metrics): Route {
  return async () => ({ status: 200, body: await metrics.registry.metrics(), contentType: metrics.registry.contentType });
}

export function jwksRoute(read: () => { json: string; maxAgeSec: number }): Route {
  return () => {
    const { json, maxAgeSec } = read();
    return {
      status: 200,
      body: json,
      contentType: 'application/jwk-set+json',
      headers: { 'cache-control': `public, max-age=${maxAgeSec}`, 'access-control-allow-origin': '*' },
    };
  };
}

export function healthRoute(check: () => Promise<{ ok: boolean; details: Record<string, unknown> }>): Route {
  return async () => {
    const { ok, details } = await check();
    return { status: ok ? 200 : 503, body: JSON.stringify({ status: ok ? 'ok' : 'unavailable', ...details }), headers: { 'cache-control': 'no-store' } };
  };
}
