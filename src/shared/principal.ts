/**
 * Who is calling, whatever the transport: what the access policy decides on and what Issue takes
 * a token's default `client_id` from. The transport adapters build it from their connection (gRPC:
 * `principalOf` in src/grpc/caller.ts; the HTTPS listener: src/authority/http-caller.ts); the
 * domain (TokenAuthority, the access policies) never sees a transport's own types.
 */

/** The kinds of identity a client certificate can assert: a SAN URI, a SAN DNS name, or the subject CN. */
export type IdentityKind = 'uri' | 'dns' | 'cn';

export interface CertificateIdentity {
  readonly kind: IdentityKind;
  readonly value: string;
}

export interface Principal {
  /** The peer as the transport reports it, for messages ("10.0.0.7:4242"). */
  readonly peer: string;
  /** The remote IP address, without the port; an IPv4-mapped IPv6 address as the IPv4 address. */
  readonly address: string;
  /** The connection comes from a loopback address. */
  readonly loopback: boolean;
  /**
   * The identities of a verified client certificate (mutual TLS), in order: SAN URIs, then SAN DNS
   * names, or the CN of a certificate with no SAN at all. Empty: the caller is not authenticated.
   */
  readonly identities: readonly CertificateIdentity[];
}

/** How messages name a principal: its first identity, else its peer. */
export function principalName(principal: Principal): string {
  return principal.identities[0]?.value ?? principal.peer;
}
