/**
 * Strict base64url (RFC 4648 §5, no padding) as JWS compact serialisation requires (RFC 7515 §2).
 *
 * Node's own decoder is lenient: it skips characters outside the alphabet, accepts `=` padding and
 * the standard alphabet's `+` and `/`, and ignores non-zero trailing bits, so many texts decode to
 * the same bytes. A verifier that accepted all of them would let one signature stand for many
 * token strings (and many cache keys), so text is checked here before Node decodes it.
 */

// The alphabet check itself is a regex in verify-token.ts (measured ~2x faster than a charCode
// loop on V8); only the canonical-tail rule lives here.

/** 6-bit value of a character known to be in the base64url alphabet. */
function sextet(c: number): number {
  if (c >= 0x61) return c - 0x61 + 26; // a-z
  if (c >= 0x41) return c - 0x41; // A-Z
  if (c >= 0x30 && c <= 0x39) return c - 0x30 + 52; // 0-9
  return c === 0x2d ? 62 : 63; // - _
}

/**
 * For `text[start, end)` already known to use only the base64url alphabet: true if it is also
 * canonical — its length is not 1 mod 4 and the unused low bits of its last character are zero —
 * which is exactly when re-encoding the decoded bytes gives back the same text.
 */
export function hasCanonicalTail(text: string, start: number, end: number): boolean {
  switch ((end - start) & 3) {
    case 0:
      return true;
    case 2:
      return (sextet(text.charCodeAt(end - 1)) & 0x0f) === 0; // one final byte: 4 unused bits
    case 3:
      return (sextet(text.charCodeAt(end - 1)) & 0x03) === 0; // two final bytes: 2 unused bits
    default:
      return false; // 1 mod 4 cannot encode a whole number of bytes
  }
}
