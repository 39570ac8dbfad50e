/**
 * The JOSE rules of this project, in one place: which algorithms exist, which key each one needs
 * (type, curve, minimum RSA size), what a JWK of each looks like and which of its members are
 * private, the access-token `typ`, the `kid` bound, and how node:crypto signs and verifies each
 * algorithm.
 * The signer and key stores (`keys/`), the key resolvers and the hot-path verifier all ask here,
 * so a rule changed here changes everywhere at once.
 */
import type { KeyObject, SignKeyObjectInput, VerifyKeyObjectInput } from 'node:crypto';

/** The only JWS algorithms this project signs or accepts (RFC 8725 §3.1: an explicit allow-list). */
export const SIGNING_ALGORITHMS = ['ES256', 'EdDSA', 'RS256'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

export function isSigningAlgorithm(value: unknown): value is SigningAlgorithm {
  return typeof value === 'string' && (SIGNING_ALGORITHMS as readonly string[]).includes(value);
}

/** The JOSE `typ` of access tokens (RFC 9068 §2.1); the signer writes exactly this. */
export const ACCESS_TOKEN_TYP = 'at+jwt';

/**
 * Whether a header `typ` names an access token. RFC 9068 §4 / RFC 7515 §4.1.9: media types are
 * case-insensitive and the "application/" prefix may be omitted; nothing else (no parameters, no
 * whitespace) is accepted.
 */
export function isAccessTokenTyp(typ: unknown): boolean {
  if (typ === ACCESS_TOKEN_TYP) return true;
  if (typeof typ !== 'string' || typ.length > 18) return false;
  const t = typ.toLowerCase();
  return t === ACCESS_TOKEN_TYP || t === `application/${ACCESS_TOKEN_TYP}`;
}

/** Longest `kid` accepted; ours are far shorter, and this bounds what reaches resolvers and logs. */
export const MAX_KID_LENGTH = 128;

/** A `kid` this project accepts anywhere (token header, JWKS, key set): a non-empty string of at most MAX_KID_LENGTH. */
export function isAcceptableKid(kid: unknown): kid is string {
  return typeof kid === 'string' && kid.length > 0 && kid.length <= MAX_KID_LENGTH;
}

/** Smallest RSA modulus accepted, and the size generated (RFC 7518 §3.3, NIST SP 800-131A). */
export const MIN_RSA_BITS = 2048;

/** The key each algorithm needs, as a JWK and as node:crypto sees it. */
export interface AlgorithmKeyShape {
  /** JWK `kty`. */
  readonly kty: 'EC' | 'OKP' | 'RSA';
  /** JWK `crv`, for EC and OKP keys. */
  readonly crv?: string;
  /** The public JWK members besides `kty`, in the order a generated key publishes them. */
  readonly members: readonly string[];
  /** The private JWK members a stored private key carries. */
  readonly privateMembers: readonly string[];
  /** `KeyObject.asymmetricKeyType`. ('rsa-pss' keys would make node verify PSS, which is not RS256.) */
  readonly nodeType: 'ec' | 'ed25519' | 'rsa';
  /** `KeyObject.asymmetricKeyDetails.namedCurve` (EC only). */
  readonly nodeCurve?: string;
}

export const KEY_SHAPES: Readonly<Record<SigningAlgorithm, AlgorithmKeyShape>> = Object.freeze({
  ES256: Object.freeze({ kty: 'EC', crv: 'P-256', members: ['crv', 'x', 'y'], privateMembers: ['d'], nodeType: 'ec', nodeCurve: 'prime256v1' }),
  EdDSA: Object.freeze({ kty: 'OKP', crv: 'Ed25519', members: ['crv', 'x'], privateMembers: ['d'], nodeType: 'ed25519' }),
  RS256: Object.freeze({ kty: 'RSA', members: ['n', 'e'], privateMembers: ['d', 'p', 'q', 'dp', 'dq', 'qi'], nodeType: 'rsa' }),
} as const);

/**
 * JWK members that only private (or symmetric) keys carry (RFC 7518 §6.2.2, §6.3.2, §6.4.1): a
 * published key (a JWKS member, a DPoP proof's `jwk`) must carry none of them.
 */
export const PRIVATE_JWK_MEMBERS: readonly string[] = Object.freeze(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']);

/** The first private member a JWK carries, or undefined if it carries none. */
export function privateJwkMember(jwk: Readonly<Record<string, unknown>>): string | undefined {
  return PRIVATE_JWK_MEMBERS.find((m) => jwk[m] !== undefined);
}

/** The one algorithm a JWK's kty/crv can mean here, or undefined if none. */
export function algorithmForJwk(jwk: Readonly<Record<string, unknown>>): SigningAlgorithm | undefined {
  return SIGNING_ALGORITHMS.find((alg) => {
    const shape = KEY_SHAPES[alg];
    return jwk.kty === shape.kty && (shape.crv === undefined || jwk.crv === shape.crv);
  });
}

/**
 * Why `key` (public or private) cannot be used with `alg` — wrong type or curve, RSA below
 * MIN_RSA_BITS, an algorithm not in SIGNING_ALGORITHMS — or undefined if it can.
 */
export function keyAlgorithmProblem(key: KeyObject, alg: SigningAlgorithm): string | undefined {
  if (!isSigningAlgorithm(alg)) return `algorithm ${String(alg)} is not supported`;
  if (key.type !== 'public' && key.type !== 'private') return `key is ${key.type}, expected an asymmetric key`;
  const shape = KEY_SHAPES[alg];
  const d = key.asymmetricKeyDetails ?? {};
  switch (alg) {
    case 'ES256':
      return key.asymmetricKeyType === shape.nodeType && d.namedCurve === shape.nodeCurve ? undefined : 'ES256 needs an EC P-256 key';
    case 'EdDSA':
      return key.asymmetricKeyType === shape.nodeType ? undefined : 'EdDSA needs an Ed25519 key';
    case 'RS256': {
      if (key.asymmetricKeyType !== shape.nodeType) return 'RS256 needs an RSA key';
      const bits = d.modulusLength ?? 0;
      return bits >= MIN_RSA_BITS ? undefined : `RS256 needs an RSA key of at least ${MIN_RSA_BITS} bits (this one has ${bits} bits)`;
    }
  }
}

/** The digest and key arguments node:crypto's `sign` and `verify` take for one JWS algorithm. */
export interface JwsCryptoArgs {
  /** The digest argument (null for EdDSA, which hashes internally). */
  readonly digest: 'sha256' | null;
  /** The key argument: ES256 carries `dsaEncoding`, since JWS carries R||S (RFC 7518 §3.4), not DER. */
  readonly input: KeyObject | (VerifyKeyObjectInput & SignKeyObjectInput);
}

/** How node:crypto signs or verifies `alg` with `key` (public or private); one object per key, not per call. */
export function jwsCryptoArgs(key: KeyObject, alg: SigningAlgorithm): JwsCryptoArgs {
  switch (alg) {
    case 'ES256':
      return { digest: 'sha256', input: { key, dsaEncoding: 'ieee-p1363' } };
    case 'EdDSA':
      return { digest: null, input: key };
    case 'RS256':
      return { digest: 'sha256', input: key };
  }
}

/** How node:crypto's `verify` checks a JWS signature of one key: its arguments, and the signature's length. */
export interface JwsVerifyPlan extends JwsCryptoArgs {
  /** The exact length of a valid signature. */
  readonly signatureBytes: number;
}

/** How to verify `alg` signatures with `key`, or null if the key does not fit `alg` (keyAlgorithmProblem). */
export function jwsVerifyPlan(key: KeyObject, alg: SigningAlgorithm): JwsVerifyPlan | null {
  if (keyAlgorithmProblem(key, alg) !== undefined) return null;
  const signatureBytes = alg === 'RS256' ? Math.ceil((key.asymmetricKeyDetails?.modulusLength ?? 0) / 8) : 64;
  return { ...jwsCryptoArgs(key, alg), signatureBytes };
}
