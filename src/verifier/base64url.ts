/**
 * Strict base64url (RFC 4648 §5, no padding) as JWS compact serialisation requires (RFC 7515 §2).
 *
 * Node's own decoder is lenient: it skips characters outside the alphabet, accepts `=` padding and
 * ignores non-zero trailing bits, so several texts decode to the same bytes. A verifier that
 * accepted all of them would let one signature stand for many token strings (and many cache keys),
 * so every segment is checked here before Node decodes it.
 */

/** 6-bit value of each base64url character, or 0xff for anything outside the alphabet. */
const VALUES: Uint8Array = (() => {
  const table = new Uint8Array(128).fill(0xff);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = i;
  return table;
})();

/**
 * True if `text[start, end)` is canonical unpadded base64url: only `[A-Za-z0-9_-]`, a length that
 * is not 1 mod 4, and zero bits in the unused low bits of the last character, so that re-encoding
 * the decoded bytes gives back exactly this text. An empty range is canonical (zero bytes).
 */
export function isCanonicalBase64url(text: string, start = 0, end = text.length): boolean {
  let last = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    // c >= 128 indexes past the table and yields undefined, which is not < 64.
    const v = VALUES[c] as number;
    if (!(v < 64)) return false;
    last = v;
  }
  switch ((end - start) & 3) {
    case 0:
      return true;
    case 2:
      return (last & 0x0f) === 0; // one final byte: 4 unused bits
    case 3:
      return (last & 0x03) === 0; // two final bytes: 2 unused bits
    default:
      return false; // 1 mod 4 cannot encode a whole number of bytes
  }
}

/** Encode bytes (or a string, as UTF-8) as unpadded base64url. */
export function base64urlEncode(data: Uint8Array | string): string {
  return (typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength)).toString('base64url');
}

/** Decode canonical unpadded base64url; undefined if the text is not canonical (see above). */
export function base64urlDecode(text: string): Buffer | undefined {
  return isCanonicalBase64url(text) ? Buffer.from(text, 'base64url') : undefined;
}
