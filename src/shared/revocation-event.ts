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
 * token ids above 256 bytes (request-validation.ts), and a byte count bounds the unit count.
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
