/**
 * What a benchmark reports: one Figure per row of the summary table, each carrying its baseline
 * (measured in the same run), the ratio, the target and whether it was met.
 */

/** A target on a figure's ratio to its baseline, or on its own value. */
export interface Target {
  /** What is compared: the ratio to the baseline, or the measured value itself. */
  on: 'ratio' | 'value';
  op: '>=' | '<=';
  value: number;
  /** How the target reads in the table, e.g. "≥ 0.9× raw crypto.verify". */
  text: string;
}

export interface Quantity {
  value: number;
  /** ops/s, calls/s, ms, B, s … */
  unit: string;
}

export interface Baseline extends Quantity {
  /** What the baseline is, e.g. "raw crypto.verify (ES256, same key and data)". */
  name: string;
}

export interface Figure {
  /** Stable id, e.g. "verify.uncached"; the --only filter matches its first segment or the whole id. */
  id: string;
  /** The row's label. */
  title: string;
  /** 'measured' normally; 'not-measured' when the run could not measure it (reason in notes). */
  status: 'measured' | 'not-measured' | 'failed';
  measured?: Quantity;
  baseline?: Baseline;
  /** measured/baseline (median of per-round ratios where rounds alternate). */
  ratio?: number;
  target?: Target;
  /** true/false against the target; null when there is no target or nothing was measured. */
  met: boolean | null;
  /** Latency figures carry their distribution (same unit as `measured`). */
  latency?: { p50: number; p90: number; p99: number; max: number; count: number; unit: string };
  /** Per-round values, for anyone who wants to judge the noise. */
  rounds?: { measured: number[]; baseline: number[]; ratios: number[] };
  /** How it was measured and what bounds it. */
  notes: string[];
  /** Extra numbers worth keeping (checks, counters, secondary percentiles). */
  details?: Record<string, unknown>;
}

/** Fill in `met` from the target. */
export function judge(f: Omit<Figure, 'met'>): Figure {
  let met: boolean | null = null;
  if (f.status === 'measured' && f.target) {
    const x = f.target.on === 'ratio' ? f.ratio : f.measured?.value;
    if (x !== undefined && Number.isFinite(x)) met = f.target.op === '>=' ? x >= f.target.value : x <= f.target.value;
    else met = false;
  }
  return { ...f, met };
}

/** A row that could not be measured in this run, with the reason. */
export function notMeasured(id: string, title: string, target: Target | undefined, reason: string): Figure {
  return { id, title, status: 'not-measured', ...(target ? { target } : {}), met: null, notes: [reason] };
}

/** A row whose benchmark threw: the run goes on, and the table says so. */
export function failed(id: string, title: string, target: Target | undefined, err: unknown): Figure {
  const message = err instanceof Error ? err.message : String(err);
  return { id, title, status: 'failed', ...(target ? { target } : {}), met: false, notes: [`failed: ${message}`] };
}

/** The issue's targets, in one place. */
export const TARGETS = {
  verifyUncached: { on: 'ratio', op: '>=', value: 0.9, text: '≥ 0.9× raw crypto.verify' },
  verifyCached: { on: 'ratio', op: '>=', value: 50, text: '≥ 50× raw crypto.verify' },
  mixed: { on: 'ratio', op: '>=', value: 20, text: '≥ 20× the blacklist design' },
  verifyRpc: { on: 'ratio', op: '>=', value: 0.8, text: '≥ 0.8× bare echo' },
  issueRpc: { on: 'ratio', op: '>=', value: 0.5, text: '≥ 0.5× bare echo' },
  refreshRpc: { on: 'ratio', op: '>=', value: 0.4, text: '≥ 0.4× bare echo' },
  twoCores: { on: 'ratio', op: '>=', value: 1.7, text: '≥ 1.7× one core' },
  propagationP99: { on: 'value', op: '<=', value: 5, text: 'p99 ≤ 5 ms' },
  propagationMax: { on: 'value', op: '<=', value: 20, text: 'max ≤ 20 ms' },
  memoryPerRevocation: { on: 'value', op: '<=', value: 200, text: '≤ 200 B' },
  load1M: { on: 'value', op: '<=', value: 2, text: '≤ 2 s' },
} as const satisfies Record<string, Target>;

/** Human formatting of a quantity: 12 345/s, 1.23 ms, 3.2 M/s … */
export function formatQuantity(q: Quantity | undefined): string {
  if (!q || !Number.isFinite(q.value)) return '—';
  const v = q.value;
  if (q.unit.endsWith('/s') || q.unit.endsWith('CPU-s')) {
    const n = v >= 1e6 ? `${(v / 1e6).toFixed(2)} M` : v >= 1e5 ? `${(v / 1e3).toFixed(0)} k` : Math.round(v).toLocaleString('en-US');
    return `${n} ${q.unit}`;
  }
  if (q.unit === 'ms') return `${v < 1 ? v.toFixed(3) : v < 10 ? v.toFixed(2) : v.toFixed(1)} ms`;
  if (q.unit === 's') return `${v.toFixed(2)} s`;
  if (q.unit === 'B') return `${v.toFixed(0)} B`;
  return `${v} ${q.unit}`;
}

export function formatRatio(r: number | undefined): string {
  if (r === undefined || !Number.isFinite(r)) return '—';
  return r >= 10 ? `${r.toFixed(0)}×` : `${r.toFixed(2)}×`;
}

export function formatMet(f: Figure): string {
  if (f.status === 'not-measured') return 'not measured';
  if (f.status === 'failed') return 'failed';
  if (f.met === null) return '—';
  return f.met ? 'met' : 'missed';
}
