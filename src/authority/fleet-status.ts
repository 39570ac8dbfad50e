import type { KeyInfo } from '../keys/key-manager.js';
import type { ReceiptReader } from '../store/token-store.js';
import type { RevocationSource } from '../verifier/revocation-source.js';
import type { Route } from '../http/http-server.js';

/**
 * The fleet at a glance (`GET /fleet` on the authority's HTTP port, printed by `token-authority
 * status`): the head sequence of the revocation log, the signing key set, and every verifier whose
 * propagation receipt is still held — live (reported within the receipt TTL, the ones
 * GetPropagation counts) or stale (stopped reporting, kept for the sidecar's TA_RECEIPT_RETENTION).
 */
export interface FleetStatus {
  /** Format version of this document. */
  v: 1;
  /** When the authority answered (its clock). */
  at: string;
  headSequence: number;
  keys: Array<{ kid: string; alg: string; state: string; createdAt: string; ageSeconds: number }>;
  verifiers: FleetVerifier[];
  live: number;
  stale: number;
}

export interface FleetVerifier {
  instanceId: string;
  appliedSequence: number;
  /** headSequence − appliedSequence (never negative). */
  lag: number;
  /** The time of its last report (the store's clock). */
  lastSeen: string;
  /** How long ago that was, ms (never negative). */
  lastSeenAgoMs: number;
  state: 'live' | 'stale';
}

/** Build the fleet view from the store (receipts, head sequence) and the key set. */
/** What the fleet view reads: every receipt, and the log's head. */
export type FleetStore = ReceiptReader & Pick<RevocationSource, 'readLog'>;

export async function fleetStatus(store: FleetStore, keys: () => readonly KeyInfo[], nowMs: number = Date.now()): Promise<FleetStatus> {
  const [receipts, page] = await Promise.all([store.listReceipts(), store.readLog(Number.MAX_SAFE_INTEGER, 1)]);
  const head = page.headSeq;
  const verifiers = receipts
    .map((r): FleetVerifier => ({
      instanceId: r.instanceId,
      appliedSequence: r.seq,
      lag: Math.max(0, head - r.seq),
      lastSeen: new Date(r.reportedAt).toISOString(),
      lastSeenAgoMs: Math.max(0, nowMs - r.reportedAt),
      state: r.live ? 'live' : 'stale',
    }))
    .sort((a, b) => a.instanceId.localeCompare(b.instanceId));
  const live = verifiers.filter((v) => v.state === 'live').length;
  return {
    v: 1,
    at: new Date(nowMs).toISOString(),
    headSequence: head,
    keys: keys().map((k) => ({ kid: k.kid, alg: k.alg, state: k.state, createdAt: new Date(k.createdAt).toISOString(), ageSeconds: Math.max(0, Math.round((nowMs - k.createdAt) / 1000)) })),
    verifiers,
    live,
    stale: verifiers.length - live,
  };
}

/** `GET /fleet`: the FleetStatus as JSON; 503 when the store cannot be read. */
export function fleetRoute(store: FleetStore, keys: () => readonly KeyInfo[]): Route {
  return async () => {
    let body: FleetStatus;
    try {
      body = await fleetStatus(store, keys);
    } catch (err) {
      return { status: 503, body: JSON.stringify({ error: 'store unavailable', message: (err as Error).message }), headers: { 'cache-control': 'no-store' } };
    }
    return { status: 200, body: JSON.stringify(body), headers: { 'cache-control': 'no-store' } };
  };
}

/** A duration for people: 0.4s, 37s, 12m, 5h, 3d. */
export function humanDuration(ms: number): string {
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 120_000) return `${Math.round(ms / 1000)}s`;
  if (ms < 120 * 60_000) return `${Math.round(ms / 60_000)}m`;
  if (ms < 48 * 3_600_000) return `${Math.round(ms / 3_600_000)}h`;
  return `${Math.round(ms / 86_400_000)}d`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

/** The human-readable form `token-authority status` prints. */
export function formatFleetStatus(s: FleetStatus): string {
  let out = `authority  head sequence ${s.headSequence}  (at ${s.at})\n\n`;
  out += table([['KID', 'ALG', 'STATE', 'AGE'], ...s.keys.map((k) => [k.kid, k.alg, k.state, humanDuration(k.ageSeconds * 1000)])]);
  out += `\nverifiers  ${s.live} live, ${s.stale} stale\n`;
  if (s.verifiers.length === 0) out += '(none seen within the receipt retention)\n';
  else out += table([['INSTANCE', 'STATE', 'APPLIED', 'LAG', 'LAST SEEN'], ...s.verifiers.map((v) => [v.instanceId, v.state, String(v.appliedSequence), String(v.lag), `${humanDuration(v.lastSeenAgoMs)} ago`])]);
  return out;
}
