/**
 * RFC 7638 JWK SHA-256 thumbprints: the one home of the `jkt` computation (RFC 9449 §6.1) used by
 * the DPoP proof check, the authority (binding a token to a client's DPoP key) and the tests.
 */
import { sha256Base64url } from './sha256.js';
import { invalidArgument } from '../shared/errors.js';

/**
 * The base64url SHA-256 thumbprint of a public JWK (RFC 7638 §3): the key type's required members
 * only, in lexicographic order, with no whitespace. Supported: EC (`crv`, `kty`, `x`, `y`), OKP
 * (`crv`, `kty`, `x`) and RSA (`e`, `kty`, `n`). Other members (`kid`, `alg`, private parts) do
 * not enter it. Throws TokenAuthorityError(ERR_INVALID_ARGUMENT) for another `kty` or a required
 * member that is missing or not a string.
 */
export function jwkThumbprint(jwk: Readonly<Record<string, unknown>>): string {
  return sha256Base64url(thumbprintInput(jwk));
}

/** The JSON text that is hashed (RFC 7638 §3.2), exported for the tests of the §3.1 example. */
export function thumbprintInput(jwk: Readonly<Record<string, unknown>>): string {
  if (typeof jwk !== 'object' || jwk === null) throw invalidArgument('jwk is not an object');
  const kty = jwk.kty;
  const members = kty === 'EC' ? EC : kty === 'OKP' ? OKP : kty === 'RSA' ? RSA : undefined;
  if (members === undefined) throw invalidArgument(`jwk kty ${JSON.stringify(String(kty)).slice(0, 20)} has no thumbprint here (EC, OKP or RSA)`);
  const picked: Record<string, string> = {};
  for (const name of members) {
    const value = jwk[name];
    if (typeof value !== 'string' || value.length === 0) throw invalidArgument(`jwk member ${name} is missing or not a string`);
    picked[name] = value;
  }
  // Insertion order is the lexicographic order above; JSON.stringify adds no whitespace.
  return JSON.stringify(picked);
}

const EC = ['crv', 'kty', 'x', 'y'] as const;
const OKP = ['crv', 'kty', 'x'] as const;
const RSA = ['e', 'kty', 'n'] as const;
