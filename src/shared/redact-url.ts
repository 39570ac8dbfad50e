/**
 * The one way a URL is shown in a log line or an error message: credentials replaced by `***`.
 *
 * Redaction works on the parsed URL, never by pattern-matching the text: the userinfo is whatever
 * precedes the last `@` of the authority (as the WHATWG URL parser and parseRedisUrl read it), so a
 * password containing `@`, `:` or percent-escapes is hidden whole. What cannot be parsed is not
 * shown at all: a password with an unencoded `/`, `?` or `#` ends the authority early and spills
 * into the path, and nothing can tell which part of the text is secret.
 *
 * Handles every URL form the service takes: http(s) and the Redis forms, including the
 * several-host `redis-sentinel://h1,h2/master` and `redis-cluster://h1,h2`, which the WHATWG
 * parser alone refuses (the host list is checked here and the rest parsed by it).
 */

/** What {@link redactUrl} returns for text it cannot parse as a URL. */
export const UNPARSEABLE_URL = '<not shown: not a parseable URL>';

/** One host of a host list: a name, an IPv4 address or a bracketed IPv6 address, and a port. */
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%-]+)(?::\d{1,5})?$/;
/** Query parameters whose value is a credential. */
const SECRET_PARAM = /password|secret|token|passwd|pwd/i;
/** Stands in for the host list while the WHATWG parser reads the rest. */
const PLACEHOLDER_HOST = 'host.invalid';

/**
 * `text` with the password (or a lone userinfo, which for Redis is a password) and every
 * credential-like query parameter replaced by `***`; the fragment is dropped. Safe to log.
 * @returns {@link UNPARSEABLE_URL} for anything that is not an unambiguous URL.
 */
export function redactUrl(text: string): string {
  const m = /^([a-z][a-z0-9+.-]*:)\/\/([^/?#]*)(.*)$/is.exec(text.trim());
  if (!m) return UNPARSEABLE_URL;
  const scheme = m[1]!.toLowerCase();
  const authority = m[2]!;
  // An `@` after the authority means a userinfo ran past an unencoded `/`, `?` or `#`.
  if (m[3]!.includes('@')) return UNPARSEABLE_URL;
  const rest = m[3]!.split('#')[0]!;
  const at = authority.lastIndexOf('@');
  const hosts = authority.slice(at + 1);
  if (hosts === '' || !hosts.split(',').every((h) => HOST.test(h))) return UNPARSEABLE_URL;
  let url: URL;
  try {
    url = new URL(`${scheme}//${authority.slice(0, at + 1)}${PLACEHOLDER_HOST}${rest}`);
  } catch {
    return UNPARSEABLE_URL;
  }
  let userinfo = '';
  if (at >= 0) {
    const hasPassword = url.password !== '' || authority.slice(0, at).includes(':');
    // `redis://secret@host` is the redis-cli form of a password without a user name.
    userinfo = hasPassword ? `${url.username}:***@` : '***@';
  }
  const path = rest.startsWith('/') ? url.pathname : '';
  const query = url.search === '' ? '' : `?${url.search.slice(1).split('&').map(redactParam).join('&')}`;
  return `${scheme}//${userinfo}${hosts}${path}${query}`;
}

function redactParam(pair: string): string {
  const eq = pair.indexOf('=');
  const name = eq < 0 ? pair : pair.slice(0, eq);
  let decoded = name;
  try {
    decoded = decodeURIComponent(name);
  } catch {
    // Undecodable: judge the raw name.
  }
  return SECRET_PARAM.test(decoded) ? `${name}=***` : pair;
}
