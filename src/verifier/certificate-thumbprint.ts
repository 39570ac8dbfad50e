/**
 * The RFC 8705 §3.1 certificate thumbprint (`x5t#S256`): base64url SHA-256 of the certificate's
 * DER. The one home of that computation for the authority (binding a token to a client
 * certificate) and every verifier (checking it).
 */
import { sha256Base64url } from './sha256.js';
import { invalidArgument } from '../shared/errors.js';

const BEGIN = '-----BEGIN CERTIFICATE-----';
const END = '-----END CERTIFICATE-----';
/** Standard base64 (RFC 4648 §4) with canonical padding, after whitespace is removed. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** Longest PEM text looked at: certificates are a few KB; this bounds work on hostile input. */
export const MAX_CERTIFICATE_PEM_CHARS = 65_536;

/**
 * `x5t#S256` of a certificate given as DER bytes or as PEM text. DER bytes are hashed as they are
 * (a thumbprint match means the very same bytes, so they need no parsing). PEM: the first
 * `CERTIFICATE` block is used (a chain's leaf comes first), its body must be strict base64.
 * Throws TokenAuthorityError(ERR_INVALID_ARGUMENT) for empty input or text that is not PEM.
 */
export function certificateThumbprint(derOrPem: Uint8Array | string): string {
  return sha256Base64url(certificateDer(derOrPem));
}

/** The DER bytes of a certificate given as DER or PEM (see certificateThumbprint). */
export function certificateDer(derOrPem: Uint8Array | string): Uint8Array {
  if (typeof derOrPem !== 'string') {
    if (!(derOrPem instanceof Uint8Array) || derOrPem.length === 0) throw invalidArgument('client certificate is empty or not bytes');
    return derOrPem;
  }
  if (derOrPem.length > MAX_CERTIFICATE_PEM_CHARS) throw invalidArgument(`client certificate PEM is longer than ${MAX_CERTIFICATE_PEM_CHARS} characters`);
  const begin = derOrPem.indexOf(BEGIN);
  const end = begin < 0 ? -1 : derOrPem.indexOf(END, begin + BEGIN.length);
  if (end < 0) throw invalidArgument('client certificate is neither DER bytes nor a PEM CERTIFICATE block');
  const body = derOrPem.slice(begin + BEGIN.length, end).replace(/[ \t\r\n]+/g, '');
  if (body.length === 0 || !BASE64.test(body)) throw invalidArgument('client certificate PEM body is not base64');
  return Buffer.from(body, 'base64');
}
