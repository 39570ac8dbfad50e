/** A token-bucket rate: `perSecond` tokens flow in, at most `burst` are held. */
export interface RateLimitSpec {
  readonly perSecond: number;
  readonly burst: number;
  /** As the operator wrote it, for messages ("200/s:400"). */
  readonly text: string;
}

const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600 };

/**
 * Parse `<count>/<s|m|h>[:<burst>]` ("200/s", "1000/m:50"); "off" or "0" disables (null). The burst
 * defaults to the count: "200/s" lets 200 calls through at once, then 200 a second.
 */
export function parseRateLimit(text: string): { ok: true; spec: RateLimitSpec | null } | { ok: false; message: string } {
  const t = text.trim().toLowerCase();
  if (t === 'off' || t === '0') return { ok: true, spec: null };
  const m = /^(\d+)\s*\/\s*(s|m|h)(?:\s*:\s*(\d+))?$/.exec(t);
  if (!m) return { ok: false, message: `"${text}" is not a rate limit (examples: 200/s, 1000/m, 200/s:400 for a burst of 400, off)` };
  const count = Number(m[1]);
  const burst = m[3] === undefined ? count : Number(m[3]);
  if (!Number.isSafeInteger(count) || count < 1 || !Number.isSafeInteger(burst) || burst < 1 || burst > 1_000_000_000) {
    return { ok: false, message: `"${text}": the count and the burst must be positive integers (or "off")` };
  }
  return { ok: true, spec: { perSecond: count / UNIT_SECONDS[m[2]!]!, burst, text: text.trim() } };
}
