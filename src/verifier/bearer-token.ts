const isOws = (c: number) => c === 0x20 || c === 0x09;

/** An access token as presented in `authorization`, with the scheme it came under. */
export interface PresentedToken {
  /** `Bearer` (RFC 6750 §2.1) or `DPoP` (RFC 9449 §7.1); schemes are matched case-insensitively. */
  readonly scheme: 'Bearer' | 'DPoP';
  readonly token: string;
}

/**
 * The credential of `authorization: Bearer <token>` or `authorization: DPoP <token>`: the scheme,
 * one or more SP, the token. Only HTTP's optional whitespace around a field value (SP/HTAB,
 * RFC 9110 §5.5) is dropped; any other character, whitespace included, stays part of the credential
 * so the verifier judges it (MALFORMED) exactly as Verify judges the same text, rather than a
 * trailing NBSP or line break being silently stripped. A loop, not a regex: a header of a million
 * blanks costs O(n). Any other scheme, or no credential, is undefined.
 */
export function presentedToken(authorization: string | undefined): PresentedToken | undefined {
  if (!authorization) return undefined;
  let start = 0;
  let end = authorization.length;
  while (start < end && isOws(authorization.charCodeAt(start))) start++;
  while (end > start && isOws(authorization.charCodeAt(end - 1))) end--;
  let scheme: PresentedToken['scheme'];
  let i: number;
  if (end - start >= 8 && authorization.charCodeAt(start + 6) === 0x20 && authorization.slice(start, start + 6).toLowerCase() === 'bearer') {
    scheme = 'Bearer';
    i = start + 7;
  } else if (end - start >= 6 && authorization.charCodeAt(start + 4) === 0x20 && authorization.slice(start, start + 4).toLowerCase() === 'dpop') {
    scheme = 'DPoP';
    i = start + 5;
  } else {
    return undefined;
  }
  while (i < end && authorization.charCodeAt(i) === 0x20) i++;
  return i < end ? { scheme, token: authorization.slice(i, end) } : undefined;
}

/** The credential of `authorization: Bearer <token>` only (see presentedToken). */
export function bearerToken(authorization: string | undefined): string | undefined {
  const presented = presentedToken(authorization);
  return presented?.scheme === 'Bearer' ? presented.token : undefined;
}
