import type { IncomingMessage } from 'node:http';
import type { ServerOptions } from 'node:https';
import { TLSSocket } from 'node:tls';
import type { Config } from '../config/config.js';
import { isLoopback } from '../config/config.js';
import { callerFrom, normalizeAddress, type Caller } from '../grpc/caller.js';
import { readServerTls } from '../grpc/credentials.js';
import type { Logger } from '../shared/logger.js';

/**
 * HTTPS options for the authority's HTTP listener from TA_TLS_CERT/TA_TLS_KEY (checked as for
 * gRPC), or undefined for plain HTTP. With TA_TLS_CLIENT_CA a client certificate is requested but
 * not required: JWKS, discovery, health and the refresh and revocation endpoints serve clients
 * without one, and an endpoint that needs a caller identity takes it only from a certificate whose
 * chain verified against TA_TLS_CLIENT_CA (httpCaller).
 */
export function authorityHttpsOptions(config: Pick<Config, 'tlsCert' | 'tlsKey' | 'tlsClientCa'>): ServerOptions | undefined {
  const tls = readServerTls(config);
  if (!tls) return undefined;
  return {
    cert: tls.certPem,
    key: tls.keyPem,
    minVersion: 'TLSv1.2',
    ...(tls.clientCaPem ? { ca: tls.clientCaPem, requestCert: true, rejectUnauthorized: false } : {}),
  };
}

/**
 * The caller of an HTTP request, derived as for gRPC (caller.ts): the peer address, whether it is
 * loopback, and the identities of a verified client certificate (SAN URIs, SAN DNS names, or the
 * CN when there are none). A certificate that did not verify against the client CA gives none.
 */
export function httpCaller(req: IncomingMessage): Caller {
  const socket = req.socket;
  const address = normalizeAddress(socket.remoteAddress ?? '');
  const peer = address.includes(':') ? `[${address}]:${socket.remotePort}` : `${address}:${socket.remotePort}`;
  // Only a certificate whose chain verified against the client CA names the caller.
  return callerFrom(peer, address, socket instanceof TLSSocket && socket.authorized ? socket.getPeerCertificate() : undefined);
}

/**
 * The OAuth endpoints carry refresh and access tokens: say so at start when they are served over
 * plaintext HTTP beyond loopback (fine behind a TLS-terminating proxy on a trusted network, a
 * token leak anywhere else).
 */
export function warnIfPlaintextOAuth(config: Pick<Config, 'tlsCert' | 'httpAddr'>, logger: Logger): void {
  if (config.tlsCert !== undefined || isLoopback(config.httpAddr.host)) return;
  logger.warn(
    { http: config.httpAddr.text },
    'the OAuth endpoints (token, introspection, revocation) are served over plaintext HTTP on a non-loopback address: set TA_TLS_CERT/TA_TLS_KEY, or keep the port reachable only from a TLS-terminating proxy',
  );
}
