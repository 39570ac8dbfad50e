/**
 * The presenting client's certificate, for certificate-bound tokens (RFC 8705 §3), from what a
 * proxy in front of the sidecar tells it. The sidecar never sees the client's TLS connection: the
 * proxy terminated it, so the proxy is the only witness. What it says counts only when it cannot
 * be forged by the client:
 *
 *  - Envoy's `attributes.source.certificate` (ext_authz `include_peer_certificate`) comes from
 *    Envoy itself over the ext_authz gRPC call: always used.
 *  - A header (`x-forwarded-client-cert` from Envoy, `X-Client-Cert` from nginx and others) is
 *    trustworthy only behind a proxy that removes the client's own copy of it, so it is used only
 *    with TA_TRUST_FORWARDED_CLIENT_CERT=true. Envoy's peer certificate wins over the header.
 */

import type { VerifyRequirements } from '../shared/claims.js';

/** What the proxy says: the certificate itself (PEM), or only its x5t#S256 thumbprint. */
export type PresentedCertificate = { certificate: string } | { thumbprint: string };

/** The verifier's requirement for a presented certificate (none when there is none). */
export function certificateRequirement(pc: PresentedCertificate | undefined): Pick<VerifyRequirements, 'clientCertificate'> {
  if (pc === undefined) return {};
  return { clientCertificate: 'certificate' in pc ? pc.certificate : { x5tS256: pc.thumbprint } };
}

const PEM_CERTIFICATE = /^-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----\s*$/;

/**
 * A URL-encoded PEM certificate (Envoy's `Peer.certificate`, nginx's `$ssl_client_escaped_cert`),
 * or undefined when the value is empty or not one PEM certificate. Chains: the first certificate
 * is the client's (the leaf), as both proxies send it.
 */
export function urlEncodedPem(value: string | undefined): string | undefined {
  if (!value) return undefined;
  let pem: string;
  try {
    pem = decodeURIComponent(value);
  } catch {
    return undefined;
  }
  const end = pem.indexOf('-----END CERTIFICATE-----');
  const leaf = end < 0 ? pem : pem.slice(0, end + '-----END CERTIFICATE-----'.length) + '\n';
  return PEM_CERTIFICATE.test(leaf.trimStart()) ? leaf.trimStart() : undefined;
}

/**
 * The `Hash` of Envoy's `x-forwarded-client-cert` (lowercase hex SHA-256 of the client
 * certificate's DER) as an x5t#S256 thumbprint (base64url of the same digest). The header holds
 * one element per proxy hop (`,`-separated, `;`-separated `Key=Value` pairs, values optionally
 * quoted); the last element is the one the nearest proxy, the one that talks to the sidecar,
 * added about its own client. An element without a well-formed Hash gives undefined.
 */
export function forwardedCertificateThumbprint(xfcc: string | undefined): string | undefined {
  if (!xfcc) return undefined;
  const elements = splitOutsideQuotes(xfcc, ',');
  const last = elements[elements.length - 1] ?? '';
  for (const pair of splitOutsideQuotes(last, ';')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq).trim().toLowerCase() !== 'hash') continue;
    const hex = pair.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
    return /^[0-9a-f]{64}$/.test(hex) ? Buffer.from(hex, 'hex').toString('base64url') : undefined;
  }
  return undefined;
}

function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let quoted = false;
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && quoted) i++;
    else if (c === '"') quoted = !quoted;
    else if (c === separator && !quoted) {
      parts.push(text.slice(from, i));
      from = i + 1;
    }
  }
  parts.push(text.slice(from));
  return parts;
}
