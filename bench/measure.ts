/**
 * Timing primitives shared by every benchmark: rate loops, alternating A/B rounds and
 * percentiles. Figures are medians of rounds, and every measured figure alternates with its
 * baseline (A B A B …) so that drift in the machine (other load, thermal, GC) hits both alike.
 */

/** Median of a non-empty list (the mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** The p-th percentile (0–100) by nearest rank of an already sorted list. */
export function percentileSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number;
}

/** The usual latency summary of a list of samples (any unit; the caller knows it). */
export interface Percentiles {
  count: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function percentiles(samples: readonly number[]): Percentiles {
  const s = [...samples].sort((a, b) => a - b);
  let sum = 0;
  for (const x of s) sum += x;
  return {
    count: s.length,
    min: s[0] ?? NaN,
    p50: percentileSorted(s, 50),
    p90: percentileSorted(s, 90),
    p99: percentileSorted(s, 99),
    max: s[s.length - 1] ?? NaN,
    mean: s.length ? sum / s.length : NaN,
  };
}

/**
 * What a synchronous benchmark's time is read from. `cpu` is this process's CPU time
 * (process.cpuUsage: user + system, all threads): on a shared machine another process taking the
 * core stretches wall time but not CPU time, so per-round figures stay comparable. It counts GC
 * helper threads too, so it can only understate a rate. `wall` is performance.now().
 */
export type TimeSource = 'cpu' | 'wall';

export function clockOf(source: TimeSource): () => number {
  if (source === 'wall') return () => performance.now();
  return () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
}

/**
 * Calls `fn(i)` with i = 0, 1, 2, … for about `ms` and returns calls per second. The clock is read
 * once per batch of `batch` calls so that reading it costs nothing measurable.
 */
export function rate(fn: (i: number) => unknown, ms: number, batch = 64, source: TimeSource = 'cpu', wallRates?: number[]): number {
  const clock = clockOf(source);
  let n = 0;
  const start = clock();
  const wallStart = performance.now();
  const end = start + ms;
  let t = start;
  do {
    for (let k = 0; k < batch; k++) fn(n + k);
    n += batch;
    t = clock();
  } while (t < end);
  wallRates?.push(n / ((performance.now() - wallStart) / 1000));
  return n / ((t - start) / 1000);
}

/** Median of a[i]/b[i]. */
export function medianRatio(a: readonly number[], b: readonly number[]): number {
  return median(a.map((x, i) => x / (b[i] as number)).filter(Number.isFinite));
}

/**
 * Like `rate`, for an asynchronous operation driven by `concurrency` loops in flight at once (the
 * way a server drives it: many requests interleaved). Returns completed calls per second.
 */
export async function rateAsync(fn: (i: number) => Promise<unknown>, ms: number, concurrency = 1): Promise<number> {
  let next = 0;
  let done = 0;
  const start = performance.now();
  const end = start + ms;
  const loop = async () => {
    while (performance.now() < end) {
      await fn(next++);
      done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return done / ((performance.now() - start) / 1000);
}

/** Per-round figures of a paired measurement. */
export interface PairedRounds {
  /** Measured figure per round. */
  a: number[];
  /** Baseline per round, each taken right after (or before) the matching `a`. */
  b: number[];
  /** a/b per round. */
  ratios: number[];
  /** Medians: the reported figures. */
  aMedian: number;
  bMedian: number;
  /** Median of the per-round ratios (robust to a round where both sides were disturbed). */
  ratioMedian: number;
}

/**
 * Measure A and its baseline B in alternating rounds: A B, B A, A B … (the order flips every round
 * so neither side always runs on a "warmer" or "colder" machine), then take medians.
 */
export async function alternate(
  rounds: number,
  measureA: () => number | Promise<number>,
  measureB: () => number | Promise<number>,
): Promise<PairedRounds> {
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      a.push(await measureA());
      b.push(await measureB());
    } else {
      b.push(await measureB());
      a.push(await measureA());
    }
  }
  const ratios = a.map((x, i) => x / (b[i] as number));
  return { a, b, ratios, aMedian: median(a), bMedian: median(b), ratioMedian: median(ratios) };
}

/** Rounds to a sensible number of significant digits for reports. */
export function round(x: number, digits = 3): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const magnitude = Math.floor(Math.log10(Math.abs(x)));
  const factor = 10 ** Math.max(0, digits - 1 - magnitude);
  return Math.round(x * factor) / factor;
}

/** Epoch milliseconds with sub-millisecond resolution, comparable across processes on one host. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}
