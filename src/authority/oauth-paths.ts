/**
 * Where the OAuth endpoints live, below the issuer URL (TA_ISSUER must be the externally visible
 * base URL). Apart from the endpoints because Refresh needs the token endpoint's URL too: a DPoP
 * proof for Refresh names it as its `htu` (RFC 9449 §5), over gRPC as over HTTP.
 */
export const OAUTH_PATHS = {
  token: '/oauth2/token',
  introspection: '/oauth2/introspect',
  revocation: '/oauth2/revoke',
} as const;

/** The token endpoint URL the RFC 8414 metadata advertises. */
export function tokenEndpointUrl(issuer: string): string {
  return issuer + OAUTH_PATHS.token;
}
