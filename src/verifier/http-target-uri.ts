/**
 * The DPoP `htu` comparison (RFC 9449 §4.3 check 9): the proof's `htu` and the request's target URI
 * match when their scheme, host (case-insensitively), port (default ports normalised) and path are
 * the same; query and fragment are ignored. Paths are compared after RFC 3986 §6.2.2 syntax-based
 * normalisation: percent-encoding hex is upper-cased, percent-encoded unreserved characters are
 * decoded, and dot segments are removed (the WHATWG URL parser does the latter, and lower-cases
 * scheme and host and drops default ports). An empty path is `/` (RFC 3986 §6.2.3).
 */

/** Longest URI compared: a bound on work for hostile input (RFC 9110 §4.1 recommends 8000 octets). */
export const MAX_HTU_CHARS = 8192;

/**
 * `scheme://host[:port]/path` of an absolute `http`/`https` URI, normalised as above, or undefined
 * if it is not one (relative, another scheme, unparseable, too long, or with a user part: a target
 * URI never carries credentials).
 */
export function normalizeHttpTargetUri(uri: unknown): string | undefined {
  if (typeof uri !== 'string' || uri.length === 0 || uri.length > MAX_HTU_CHARS) return undefined;
  // A service sees the same few URIs (and a client's proofs the same htu) again and again: a URL
  // parse is ~2 µs, a lookup a fraction of that.
  let known = normalized.get(uri);
  if (known === undefined) {
    known = parse(uri) ?? null;
    if (uri.length <= CACHED_MAX_CHARS) {
      if (normalized.size >= CACHE_SIZE) normalized.clear();
      normalized.set(uri, known);
    }
  }
  return known ?? undefined;
}

/** Normalised forms (null: not an http(s) target URI) by their text; bounded, emptied when full. */
const normalized = new Map<string, string | null>();
const CACHE_SIZE = 1024;
const CACHED_MAX_CHARS = 512;

function parse(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
  if (url.username !== '' || url.password !== '' || url.host === '') return undefined;
  const path = url.pathname.length === 0 ? '/' : normalizePercentEncoding(url.pathname);
  return `${url.protocol}//${url.host}${path}`;
}

/** Do a proof's `htu` and the request's URI name the same resource (both must be valid)? */
export function httpTargetUrisMatch(htu: unknown, requestUri: string): boolean {
  const a = normalizeHttpTargetUri(htu);
  return a !== undefined && a === normalizeHttpTargetUri(requestUri);
}

const PCT = /%([0-9A-Fa-f]{2})/g;
const UNRESERVED = /[A-Za-z0-9\-._~]/;

function normalizePercentEncoding(path: string): string {
  if (!path.includes('%')) return path;
  return path.replace(PCT, (_m, hex: string) => {
    const ch = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
  });
}
