import type { ServerUnaryCall } from '@grpc/grpc-js';
import { isLoopback } from '../config/config.js';

/** Who is calling, as far as the transport can tell. */
export interface Caller {
  /** The peer address as grpc-js reports it (e.g. "127.0.0.1:53422" or "ipv6:[::1]:5000"). */
  readonly peer: string;
  /** The connection comes from a loopback address. */
  readonly loopback: boolean;
  /** Identities from a verified client certificate (mutual TLS): SAN URIs, DNS names, then CN. */
  readonly identities: readonly string[];
}

export function callerOf(call: ServerUnaryCall<unknown, unknown>): Caller {
  const peer = call.getPeer();
  const auth = call.getAuthContext?.();
  const cert = auth?.sslPeerCertificate;
  const identities: string[] = [];
  if (cert && Object.keys(cert).length > 0) {
    for (const part of (cert.subjectaltname ?? '').split(',')) {
      const m = /^\s*(URI|DNS):(.+)$/.exec(part);
      if (m) identities.push(m[2]!.trim());
    }
    const cn = cert.subject?.CN;
    if (typeof cn === 'string') identities.push(cn);
  }
  return { peer, loopback: isLoopback(hostOfPeer(peer)), identities };
}

export function hostOfPeer(peer: string): string {
  const p = peer.replace(/^ipv[46]:/, '');
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(p);
  if (bracket) return bracket[1]!;
  const lastColon = p.lastIndexOf(':');
  // "1.2.3.4:5" has one colon; a bare IPv6 without brackets has several.
  return lastColon > 0 && p.indexOf(':') === lastColon ? p.slice(0, lastColon) : p;
}
