const isOws = (c: number) => c === 0x20 || c === 0x09;

/**
 * The credential of `authorization: Bearer <token>` (RFC 6750 §2.1: the scheme, one or more SP,
 * the token). Only HTTP's optional whitespace around a field value (SP/HTAB, RFC 9110 §5.5) is
 * dropped; any other character, whitespace included, stays part of the credential so the verifier
 * judges it (MALFORMED) exactly as Verify judges the same text, rather than a trailing NBSP or line
 * break being silently stripped. A loop, not a regex: a header of a million blanks costs O(n).
 */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (!authorization) return undefined;
  let start = 0;
  let end = authorization.length;
  while (start < end && isOws(authorization.charCodeAt(start))) start++;
  while (end > start && isOws(authorization.charCodeAt(end - 1))) end--;
  if (end - start < 8 || authorization.charCodeAt(start + 6) !== 0x20 || authorization.slice(start, start + 6).toLowerCase() !== 'bearer') return undefined;
  let i = start + 7;
  while (i < end && authorization.charCodeAt(i) === 0x20) i++;
  return i < end ? authorization.slice(i, end) : undefined;
}
