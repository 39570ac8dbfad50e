import type { ServerUnaryCall } from '@grpc/grpc-js';
import { isLoopback } from '../config/config.js';

/** Who is calling, as far as the transport can tell. */
export interface Caller {
  /** The peer address as grpc-js reports it (e.g. "127.0.0.1:53422" or "ipv6:[::1]:5000"). */
  readonly peer: string;
  /** The connection comes from a loopback address. */
  readonly loopback: boolean;
  /** Identities from a verified client certificate (mutual TLS): SAN URIs and DNS names, or else the CN. */
  readonly identities: readonly string[];
}

export function callerOf(call: ServerUnaryCall<unknown, unknown>): Caller {
  const peer = call.getPeer();
  const auth = call.getAuthContext?.();
  const cert = auth?.sslPeerCertificate;
  const identities: string[] = [];
  if (cert && Object.keys(cert).length > 0) identities.push(...certificateIdentities(cert.subjectaltname, cert.subject?.CN));
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

/**
 * The identities a client certificate asserts, in order: SAN URIs (SPIFFE IDs), SAN DNS names, and
 * the subject CN only when there is neither (RFC 6125 §6.4.4: a CN is not an identity beside SANs).
 * `subjectAltName` is Node's string form ("DNS:a, URI:b"), where a value holding a comma or a
 * quote is JSON-quoted; a quoted value that does not parse is dropped rather than guessed at.
 */
export function certificateIdentities(subjectAltName: string | undefined, cn: string | string[] | undefined): string[] {
  const uris: string[] = [];
  const dns: string[] = [];
  for (const m of (subjectAltName ?? '').matchAll(/(?:^|,)\s*([A-Za-z][A-Za-z ]*):("(?:[^"\\]|\\.)*"|[^,]*)/g)) {
    let value = m[2]!.trim();
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        continue;
      }
    }
    if (value.length === 0) continue;
    if (m[1] === 'URI') uris.push(value);
    else if (m[1] === 'DNS') dns.push(value);
  }
  const out = [...uris, ...dns];
  // Several CNs are ambiguous: none of them is taken.
  if (out.length === 0 && typeof cn === 'string' && cn.length > 0) out.push(cn);
  return out;
}
