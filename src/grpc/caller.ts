import { isIP } from 'node:net';
import type { ServerUnaryCall } from '@grpc/grpc-js';
import { isLoopback } from '../config/config.js';
import type { CertificateIdentity, Principal } from '../shared/principal.js';

export type { CertificateIdentity, IdentityKind } from '../shared/principal.js';

/** Who is calling, as far as the transport can tell. */
export interface Caller {
  /** The peer as grpc-js reports it, for logs ("127.0.0.1:53422", "::1:45678": IPv6 without brackets). */
  readonly peer: string;
  /**
   * The connection's remote IP address, without the port; an IPv4-mapped IPv6 address
   * (`::ffff:10.0.0.1`) as the IPv4 address. Absent on hand-built callers: derived from `peer`.
   */
  readonly address?: string;
  /** The connection comes from a loopback address. */
  readonly loopback: boolean;
  /** The values of `certificateIdentities`, in the same order (for messages and the default client_id). */
  readonly identities: readonly string[];
  /**
   * The typed identities of a verified client certificate (mutual TLS): SAN URIs, then SAN DNS
   * names, or the CN of a certificate with no SAN at all. Absent on hand-built callers: inferred
   * from `identities` (a value with ":" is a URI, any other a DNS name).
   */
  readonly certificateIdentities?: readonly CertificateIdentity[];
}

/** What the installed grpc-js has under a ServerUnaryCall: the intercepting call, which knows its connection. */
interface WithConnection {
  call?: { getConnectionInfo?: () => { remoteAddress?: string | undefined } | undefined };
}

export function callerOf(call: ServerUnaryCall<unknown, unknown>): Caller {
  const peer = call.getPeer();
  // The socket's own remoteAddress when grpc-js lets us reach it, else grpc-js's peer string
  // ("<remoteAddress>:<remotePort>", IPv6 without brackets) without its port.
  const fromSocket = (call as unknown as WithConnection).call?.getConnectionInfo?.()?.remoteAddress;
  const address = normalizeAddress(fromSocket ?? hostOfPeer(peer));
  return callerFrom(peer, address, call.getAuthContext?.()?.sslPeerCertificate);
}

/**
 * A caller from what any transport knows of its connection: the peer (for logs), the remote
 * address, and the verified client certificate, if any (Node's peer-certificate object). gRPC
 * (callerOf) and the HTTPS listener (authority/http-caller.ts) both build callers here.
 */
export function callerFrom(peer: string, address: string, cert: { subjectaltname?: string | undefined; subject?: { CN?: string | string[] } } | undefined | null): Caller {
  const typed = cert && Object.keys(cert).length > 0 ? certificateIdentities(cert.subjectaltname, cert.subject?.CN) : [];
  return { peer, address, loopback: isLoopback(address), identities: typed.map((i) => i.value), certificateIdentities: typed };
}

/** The transport-neutral principal of a call, for the domain (TokenAuthority and the access policy). */
export function principalOf(caller: Caller): Principal {
  return { peer: caller.peer, address: addressOf(caller), loopback: caller.loopback, identities: typedIdentitiesOf(caller) };
}

/** The caller's address: `address` when the transport gave it, else parsed from `peer`. */
export function addressOf(caller: Caller): string {
  return caller.address ?? normalizeAddress(hostOfPeer(caller.peer));
}

/** The caller's typed identities (inferred for hand-built callers, see Caller.certificateIdentities). */
export function typedIdentitiesOf(caller: Caller): readonly CertificateIdentity[] {
  return caller.certificateIdentities ?? caller.identities.map((value) => ({ kind: value.includes(':') ? 'uri' : 'dns', value }));
}

/** `::ffff:10.0.0.1` → `10.0.0.1`; any other address as it is. */
export function normalizeAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped && isIP(mapped[1]!) === 4 ? mapped[1]! : address;
}

/**
 * The host of a peer string without its port. grpc-js reports `${remoteAddress}:${remotePort}`,
 * with no brackets around an IPv6 address ("::1:45678"); other forms ("ipv6:[::1]:5000",
 * "127.0.0.1:5") are accepted too. A trailing ":<digits>" is taken as the port whenever what
 * precedes it is an IP address; otherwise the string is returned as it is ("::1"). callerOf prefers
 * the socket's remoteAddress, which needs no parsing.
 */
export function hostOfPeer(peer: string): string {
  const p = peer.replace(/^ipv[46]:/, '');
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(p);
  if (bracket) return bracket[1]!;
  // Port first: "2001:db8::7:443" is also a valid address on its own, but grpc-js always appends
  // the port of a TCP peer.
  const port = /^(.*):\d{1,5}$/.exec(p);
  if (port && isIP(port[1]!) !== 0) return port[1]!;
  return p;
}

/**
 * The identities a client certificate asserts, typed, in order: SAN URIs (SPIFFE IDs), SAN DNS
 * names, and the subject CN only when the certificate has no subjectAltName at all (RFC 6125
 * §6.4.4: a CN is not an identity beside SANs, whatever their kind: an email or IP SAN excludes
 * the CN too). `subjectAltName` is Node's string form ("DNS:a, URI:b"), where a value holding a
 * comma or a quote is JSON-quoted; a quoted value that does not parse is dropped rather than
 * guessed at.
 */
export function certificateIdentities(subjectAltName: string | undefined, cn: string | string[] | undefined): CertificateIdentity[] {
  const uris: CertificateIdentity[] = [];
  const dns: CertificateIdentity[] = [];
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
    if (m[1] === 'URI') uris.push({ kind: 'uri', value });
    else if (m[1] === 'DNS') dns.push({ kind: 'dns', value });
  }
  const out = [...uris, ...dns];
  // Several CNs are ambiguous: none of them is taken.
  if ((subjectAltName ?? '').trim() === '' && typeof cn === 'string' && cn.length > 0) out.push({ kind: 'cn', value: cn });
  return out;
}
