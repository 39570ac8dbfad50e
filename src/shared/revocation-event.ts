/**
 * The revocation feed's events: the wire format shared by the authority (writer), the stores and
 * every verifier (readers). Versioned: a reader ignores events with an unknown `v` only after
 * logging it, and must not advance past a sequence it could not apply.
 *
 * Wire format (JSON, one object per log entry and per pub/sub message):
 *   {"v":1,"type":"rev","seq":42,"kind":"sid","id":"<sid>","until":1767225600000,"at":1767224700000,"reason":"logout"}
 *   {"v":1,"type":"rev","seq":43,"kind":"sub","id":"<sub>","gen":7,"until":...,"at":...}
 *   {"v":1,"type":"hb","seq":43,"at":1767224701000}
 */

export const REVOCATION_EVENT_VERSION = 1;

/** What a revocation entry applies to: one access token, one session, or a subject generation. */
export type RevocationTargetKind = 'jti' | 'sid' | 'sub';

export interface RevocationEvent {
  v: 1;
  type: 'rev';
  /** Strictly increasing, contiguous, starting at 1. */
  seq: number;
  kind: RevocationTargetKind;
  /** The jti, sid or sub. */
  id: string;
  /** For kind 'sub': tokens of this subject with `gen` < this are revoked. */
  gen?: number;
  /** Epoch ms after which no token this entry covers can still be valid: the entry may be dropped. */
  until: number;
  /** Epoch ms when the revocation was recorded (store time). */
  at: number;
  reason?: string;
}

export interface HeartbeatEvent {
  v: 1;
  type: 'hb';
  /** The newest sequence in the log when the heartbeat was sent. */
  seq: number;
  at: number;
}

export type FeedMessage = RevocationEvent | HeartbeatEvent;

/**
 * Longest `id` a revocation can carry, in UTF-16 units: the authority refuses subjects, session and
 * token ids above 256 bytes (authority/admission.ts), and a byte count bounds the unit count.
 */
export const MAX_REVOCATION_ID_LENGTH = 256;
/** Longest `reason` (the authority refuses reasons above 128 bytes). */
export const MAX_REVOCATION_REASON_LENGTH = 128;
/**
 * Longest feed message or log entry, in UTF-16 units, refused before JSON parsing: the largest
 * message the authority writes (both strings at their limit, every character escaped as \uXXXX)
 * is about 2.5 KB.
 */
export const MAX_FEED_MESSAGE_LENGTH = 4096;

/**
 * Parse a feed message; returns undefined for anything that is not a valid v1 message, and for
 * anything larger than the authority ever writes (MAX_FEED_MESSAGE_LENGTH, ids and reasons above
 * their limits), so a message forged on the channel cannot make a verifier hold big strings.
 */
export function parseFeedMessage(raw: string): FeedMessage | undefined {
  if (typeof raw !== 'string' || raw.length > MAX_FEED_MESSAGE_LENGTH) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  return checkFeedMessage(value);
}

/** The bounds and types every v1 message must meet, however it was parsed. */
function checkFeedMessage(value: unknown): FeedMessage | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const m = value as Record<string, unknown>;
  if (m.v !== REVOCATION_EVENT_VERSION) return undefined;
  if (!Number.isSafeInteger(m.seq) || (m.seq as number) < 0 || typeof m.at !== 'number' || !Number.isFinite(m.at)) return undefined;
  if (m.type === 'hb') return m as unknown as HeartbeatEvent;
  if (m.type !== 'rev') return undefined;
  if ((m.seq as number) < 1) return undefined;
  if (m.kind !== 'jti' && m.kind !== 'sid' && m.kind !== 'sub') return undefined;
  if (typeof m.id !== 'string' || m.id.length === 0 || m.id.length > MAX_REVOCATION_ID_LENGTH) return undefined;
  if (typeof m.until !== 'number' || !Number.isFinite(m.until)) return undefined;
  if (m.kind === 'sub' && (!Number.isSafeInteger(m.gen) || (m.gen as number) < 0)) return undefined;
  if (m.reason !== undefined && (typeof m.reason !== 'string' || m.reason.length > MAX_REVOCATION_REASON_LENGTH)) return undefined;
  return m as unknown as RevocationEvent;
}

/*
 * The revocation log is read a million entries at a time at a verifier's start, so entries are
 * also read straight from the bytes Redis sends, without a JSON object per entry: a scanner that
 * accepts only the exact layout the store's scripts write (event_json in src/store/redis-schema.ts:
 * the fields in the order above, no whitespace, integers of at most 15 digits without a leading
 * zero, strings of printable ASCII without escapes) and hands anything else, byte for byte, to
 * parseFeedMessage. Either way the result is what parseFeedMessage(bytes.toString('utf8')) gives,
 * checked by the same checkFeedMessage.
 */
const enc = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0));
const HEAD = enc('{"v":1,"type":"rev","seq":');
const KIND = enc(',"kind":"');
const ID = enc('","id":"');
const GEN = enc(',"gen":');
const UNTIL = enc(',"until":');
const AT = enc(',"at":');
const REASON = enc(',"reason":"');
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const KINDS: Record<string, RevocationTargetKind> = { jti: 'jti', sid: 'sid', sub: 'sub' };

/** Scanner state: the position, or -1 once the bytes left the fast layout. */
let at = 0;

function literal(b: Uint8Array, lit: Uint8Array): boolean {
  if (at < 0 || at + lit.length > b.length) return (at = -1), false;
  for (let i = 0; i < lit.length; i++) if (b[at + i] !== lit[i]) return (at = -1), false;
  at += lit.length;
  return true;
}

/** A JSON integer as the scripts write it (%d of a non-negative number, ≤ 15 digits: exact in a double). */
function integer(b: Uint8Array): number {
  if (at < 0) return NaN;
  const start = at;
  let v = 0;
  while (at < b.length) {
    const c = b[at] as number;
    if (c < 0x30 || c > 0x39) break;
    v = v * 10 + (c - 0x30);
    at++;
  }
  const n = at - start;
  if (n === 0 || n > 15 || (n > 1 && b[start] === 0x30)) return (at = -1), NaN;
  return v;
}

/** The body of a string up to its closing quote, printable ASCII without escapes; undefined otherwise. */
function plainString(b: Uint8Array, maxLength: number): string | undefined {
  if (at < 0) return undefined;
  const start = at;
  const end = Math.min(b.length, start + maxLength + 1);
  while (at < end) {
    const c = b[at] as number;
    if (c === QUOTE) {
      const text = Buffer.prototype.latin1Slice.call(b, start, at) as string;
      at++;
      return text;
    }
    if (c < 0x20 || c > 0x7e || c === BACKSLASH) break;
    at++;
  }
  at = -1;
  return undefined;
}

function fastEvent(b: Uint8Array): FeedMessage | undefined | null {
  at = 0;
  if (!literal(b, HEAD)) return null;
  const seq = integer(b);
  if (!literal(b, KIND) || at + 3 > b.length) return null;
  const kind = KINDS[String.fromCharCode(b[at] as number, b[at + 1] as number, b[at + 2] as number)];
  if (kind === undefined) return null;
  at += 3;
  if (!literal(b, ID)) return null;
  const id = plainString(b, MAX_REVOCATION_ID_LENGTH);
  if (id === undefined) return null;
  let gen: number | undefined;
  if (b[at] === GEN[0] && b[at + 2] === GEN[2]) {
    if (!literal(b, GEN)) return null;
    gen = integer(b);
  }
  if (!literal(b, UNTIL)) return null;
  const until = integer(b);
  if (!literal(b, AT)) return null;
  const time = integer(b);
  if (at < 0) return null;
  let reason: string | undefined;
  if (b[at] === REASON[0] && b[at + 2] === REASON[2]) {
    if (!literal(b, REASON)) return null;
    reason = plainString(b, MAX_REVOCATION_REASON_LENGTH);
    if (reason === undefined) return null;
  }
  if (at !== b.length - 1 || b[at] !== 0x7d) return null;
  const m: Record<string, unknown> = gen === undefined
    ? { v: REVOCATION_EVENT_VERSION, type: 'rev', seq, kind, id, until, at: time }
    : { v: REVOCATION_EVENT_VERSION, type: 'rev', seq, kind, id, gen, until, at: time };
  if (reason !== undefined) m.reason = reason;
  return checkFeedMessage(m);
}

/**
 * Parse a feed message or log entry given as the UTF-8 bytes Redis returned: the same answer as
 * `parseFeedMessage(bytes.toString('utf8'))`, without building a JSON object for entries in the
 * layout the store writes.
 */
export function parseFeedMessageBytes(bytes: Uint8Array): FeedMessage | undefined {
  if (bytes.length <= MAX_FEED_MESSAGE_LENGTH) {
    const fast = fastEvent(bytes);
    if (fast !== null) return fast;
  }
  return parseFeedMessage(Buffer.prototype.utf8Slice.call(bytes, 0, bytes.length) as string);
}
