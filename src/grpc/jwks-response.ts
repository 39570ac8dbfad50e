import type { GetJwksResponse } from '../gen/tokenauthority/v1/token_authority.js';

/**
 * The GetJwks answer, the same from the authority and from a sidecar: the JWKS document as served
 * at /.well-known/jwks.json, and each key with its kid, alg and JWK text.
 * @param keys the document's keys when the caller has them parsed already; else read from `jwksJson`.
 */
export function jwksResponse(jwksJson: string, keys?: ReadonlyArray<Readonly<Record<string, unknown>>> | ReadonlyArray<object>): GetJwksResponse {
  const list = (keys ?? (JSON.parse(jwksJson) as { keys: object[] }).keys) as ReadonlyArray<Readonly<Record<string, unknown>>>;
  return { jwksJson, keys: list.map((k) => ({ keyId: String(k.kid ?? ''), algorithm: String(k.alg ?? ''), jwkJson: JSON.stringify(k) })) };
}
