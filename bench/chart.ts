/**
 * A hand-written SVG of a run (no charting dependency): throughput bars, each figure next to its
 * baseline on a log scale with the ratio and target, and latency percentiles (p50, p90, p99,
 * max) on a log scale with the targets marked.
 */
import { formatQuantity, formatRatio, type Figure } from './figures.js';
import type { Machine } from './machine.js';

const W = 1100;
const LABEL_W = 300;
const PLOT_X = LABEL_W + 10;
const PLOT_W = 470;
const RIGHT_X = PLOT_X + PLOT_W + 16;
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';
const COLORS = { ours: '#2f6fdf', base: '#a9b1bd', met: '#1a7f37', missed: '#cf222e', grid: '#e6e8eb', text: '#24292f', muted: '#57606a' };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function text(x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${esc(s)}</text>`;
}

/** A log10 scale over [lo, hi] onto [x0, x0 + w], with decade ticks. */
function logScale(lo: number, hi: number, x0: number, w: number) {
  const a = Math.floor(Math.log10(lo));
  const b = Math.ceil(Math.log10(hi));
  const span = Math.max(1, b - a);
  return {
    x: (v: number) => x0 + ((Math.log10(Math.max(v, 10 ** a)) - a) / span) * w,
    ticks: Array.from({ length: span + 1 }, (_, i) => 10 ** (a + i)),
  };
}

function tickLabel(v: number, unit: string): string {
  if (unit === 'ms') return `${v} ms`;
  if (v >= 1e6) return `${v / 1e6}M`;
  if (v >= 1e3) return `${v / 1e3}k`;
  return String(v);
}

/** Short row labels for the chart (the table carries the full titles). */
const LABELS: Readonly<Record<string, string>> = {
  'verify.uncached': 'Local verify, token not seen before',
  'verify.uncached.cache-off': 'Local verify, not seen before, cache off',
  'verify.uncached.eddsa': 'Local verify, not seen before (EdDSA)',
  'verify.uncached.rs256': 'Local verify, not seen before (RS256)',
  'verify.cached': 'Local verify, cached token',
  sign: 'Sign, the Issue signer',
  'verify.mixed': 'Mixed workload, each token 100×',
  'rpc.verify.authority': 'Verify RPC at the authority',
  'rpc.verify.sidecar': 'Verify RPC at the sidecar',
  'rpc.verify.floor': 'Verify RPC, no service layer (diagnostic)',
  'rpc.issue': 'Issue RPC with Redis',
  'rpc.refresh': 'Refresh RPC with Redis (128 in flight)',
  'rpc.revoke': 'Revoke RPC with Redis, one at a time',
  'rpc.scaling.verify': 'Authority 2 cores vs 1: Verify',
  'rpc.scaling.issue': 'Authority 2 cores vs 1: Issue',
  'rpc.scaling.sidecar': 'Sidecar 2 cores vs 1: Verify',
  'rpc.scaling.sidecar.per-cpu': 'Sidecar 2 cores vs 1: Verify per CPU-s',
  'memory.per-revocation': 'Memory per active revocation (1M)',
  'memory.load': 'Load 1M revocations (in-process log)',
  'memory.load-redis': 'Load 1M revocations from Redis',
};

function labelOf(f: Figure): string {
  return LABELS[f.id] ?? f.title.replace(/^Revocation propagation to (\d+) verifier processes.*$/, 'Revocation propagation, $1 verifier processes');
}

/** Rows share a latency distribution when their figures come from the same samples (p99 and max rows). */
function sameLatency(a: Figure['latency'], b: Figure['latency']): boolean {
  return a !== undefined && b !== undefined && JSON.stringify(a) === JSON.stringify(b);
}

function shorten(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

export function renderChart(figures: readonly Figure[], machine: Machine, command: string): string {
  const bars = figures.filter((f) => f.status === 'measured' && f.measured?.unit.endsWith('/s') && f.baseline);
  const lats = figures.filter((f) => f.status === 'measured' && f.latency);
  const parts: string[] = [];
  let y = 28;
  parts.push(text(16, y, 'token-authority benchmarks', `${FONT} font-size="18" font-weight="600" fill="${COLORS.text}"`));
  y += 20;
  parts.push(text(16, y, `${machine.date.slice(0, 10)} · ${machine.cpuModel}, ${machine.cores} cores · Node ${machine.nodeVersion} · ${command}`, `${FONT} font-size="12" fill="${COLORS.muted}"`));
  y += 26;

  if (bars.length) {
    parts.push(text(16, y, 'Throughput: each figure (blue) and its baseline measured in the same run (grey), log scale', `${FONT} font-size="14" font-weight="600" fill="${COLORS.text}"`));
    parts.push(text(RIGHT_X, y, 'ratio · target', `${FONT} font-size="12" fill="${COLORS.muted}"`));
    y += 12;
    const values = bars.flatMap((f) => [f.measured!.value, f.baseline!.value]).filter((v) => v > 0);
    const scale = logScale(Math.min(...values), Math.max(...values), PLOT_X, PLOT_W);
    const rowH = 40;
    const top = y;
    const bottom = y + bars.length * rowH;
    for (const t of scale.ticks) {
      const x = scale.x(t);
      parts.push(`<line x1="${x.toFixed(1)}" y1="${top}" x2="${x.toFixed(1)}" y2="${bottom}" stroke="${COLORS.grid}"/>`);
      parts.push(text(x, bottom + 14, tickLabel(t, '/s'), `${FONT} font-size="10" fill="${COLORS.muted}" text-anchor="middle"`));
    }
    for (const f of bars) {
      const m = f.measured!;
      const b = f.baseline!;
      parts.push(text(16, y + 14, shorten(labelOf(f), 46), `${FONT} font-size="12" fill="${COLORS.text}"`));
      parts.push(text(16, y + 29, shorten(`vs ${b.name}`, 56), `${FONT} font-size="10" fill="${COLORS.muted}"`));
      const wm = Math.max(1, scale.x(m.value) - PLOT_X);
      const wb = Math.max(1, scale.x(b.value) - PLOT_X);
      parts.push(`<rect x="${PLOT_X}" y="${y + 4}" width="${wm.toFixed(1)}" height="14" fill="${COLORS.ours}"><title>${esc(`${f.title}: ${formatQuantity(m)}`)}</title></rect>`);
      parts.push(`<rect x="${PLOT_X}" y="${y + 20}" width="${wb.toFixed(1)}" height="10" fill="${COLORS.base}"><title>${esc(`${b.name}: ${formatQuantity(b)}`)}</title></rect>`);
      parts.push(text(PLOT_X + wm + 4, y + 15, formatQuantity(m), `${FONT} font-size="10" fill="${COLORS.text}"`));
      parts.push(text(PLOT_X + wb + 4, y + 29, formatQuantity(b), `${FONT} font-size="10" fill="${COLORS.muted}"`));
      const color = f.met === null ? COLORS.text : f.met ? COLORS.met : COLORS.missed;
      parts.push(text(RIGHT_X, y + 15, formatRatio(f.ratio), `${FONT} font-size="13" font-weight="600" fill="${color}"`));
      parts.push(text(RIGHT_X + 52, y + 15, f.target ? `${f.target.text} · ${f.met ? 'met' : 'missed'}` : 'no target', `${FONT} font-size="10" fill="${color}"`));
      y += rowH;
    }
    y = bottom + 34;
  }

  if (lats.length) {
    parts.push(text(16, y, 'Latency: p50 ● p90 ◆ p99 ▲ max ✕ (log scale); targets in red', `${FONT} font-size="14" font-weight="600" fill="${COLORS.text}"`));
    y += 12;
    const values = lats.flatMap((f) => [f.latency!.p50, f.latency!.p99, f.latency!.max]).concat(lats.flatMap((f) => (f.target?.on === 'value' ? [f.target.value] : []))).filter((v) => v > 0);
    const scale = logScale(Math.max(0.01, Math.min(...values)), Math.max(...values), PLOT_X, PLOT_W);
    // One row per distinct latency distribution (the propagation p99 and max rows share one).
    const rows: Figure[] = [];
    for (const f of lats) if (!rows.some((r) => sameLatency(r.latency, f.latency))) rows.push(f);
    const rowH = 30;
    const top = y;
    const bottom = y + rows.length * rowH;
    for (const t of scale.ticks) {
      const x = scale.x(t);
      parts.push(`<line x1="${x.toFixed(1)}" y1="${top}" x2="${x.toFixed(1)}" y2="${bottom}" stroke="${COLORS.grid}"/>`);
      parts.push(text(x, bottom + 14, tickLabel(t, 'ms'), `${FONT} font-size="10" fill="${COLORS.muted}" text-anchor="middle"`));
    }
    for (const f of rows) {
      const l = f.latency!;
      const cy = y + 15;
      parts.push(text(16, cy + 4, shorten(labelOf(f), 46), `${FONT} font-size="12" fill="${COLORS.text}"`));
      const xs = [l.p50, l.p90, l.p99, l.max].map((v) => scale.x(Math.max(v, 0.01)));
      parts.push(`<line x1="${xs[0]!.toFixed(1)}" y1="${cy}" x2="${xs[3]!.toFixed(1)}" y2="${cy}" stroke="${COLORS.ours}" stroke-width="2"/>`);
      parts.push(`<circle cx="${xs[0]!.toFixed(1)}" cy="${cy}" r="4" fill="${COLORS.ours}"><title>p50 ${l.p50.toFixed(3)} ms</title></circle>`);
      parts.push(`<rect x="${(xs[1]! - 4).toFixed(1)}" y="${cy - 4}" width="8" height="8" transform="rotate(45 ${xs[1]!.toFixed(1)} ${cy})" fill="${COLORS.ours}"><title>p90 ${l.p90.toFixed(3)} ms</title></rect>`);
      parts.push(`<path d="M${xs[2]!.toFixed(1)} ${cy - 5} l5 9 h-10 z" fill="${COLORS.ours}"><title>p99 ${l.p99.toFixed(3)} ms</title></path>`);
      parts.push(`<path d="M${(xs[3]! - 4).toFixed(1)} ${cy - 4} l8 8 m0 -8 l-8 8" stroke="${COLORS.ours}" stroke-width="2"><title>max ${l.max.toFixed(3)} ms</title></path>`);
      const targets = lats.filter((g) => sameLatency(g.latency, l) && g.target?.on === 'value');
      for (const g of targets) {
        const x = scale.x(g.target!.value);
        parts.push(`<line x1="${x.toFixed(1)}" y1="${cy - 9}" x2="${x.toFixed(1)}" y2="${cy + 9}" stroke="${COLORS.missed}" stroke-width="2"><title>${esc(g.target!.text)}</title></line>`);
      }
      const summary = `p50 ${l.p50.toFixed(2)} · p99 ${l.p99.toFixed(2)} · max ${l.max.toFixed(2)} ms`;
      const verdict = targets.length ? ` · ${targets.every((g) => g.met) ? 'met' : 'missed'}` : '';
      const color = targets.length ? (targets.every((g) => g.met) ? COLORS.met : COLORS.missed) : COLORS.text;
      parts.push(text(RIGHT_X, cy + 4, summary + verdict, `${FONT} font-size="10" fill="${color}"`));
      y += rowH;
    }
    y = bottom + 30;
  }

  const others = figures.filter((f) => !bars.includes(f) && !lats.includes(f));
  if (others.length) {
    parts.push(text(16, y, 'Other figures', `${FONT} font-size="14" font-weight="600" fill="${COLORS.text}"`));
    y += 18;
    for (const f of others) {
      const value = f.status === 'measured' ? formatQuantity(f.measured) : f.status === 'failed' ? 'failed' : 'not measured';
      const verdict = f.met === null ? '' : f.met ? ' · met' : ' · missed';
      const color = f.met === null ? COLORS.text : f.met ? COLORS.met : COLORS.missed;
      parts.push(text(16, y, shorten(labelOf(f), 60), `${FONT} font-size="12" fill="${COLORS.text}"`));
      parts.push(text(PLOT_X, y, `${value}${f.target ? ` (target ${f.target.text})` : ''}${verdict}`, `${FONT} font-size="11" fill="${color}"`));
      y += 18;
    }
    y += 8;
  }

  const height = y + 4;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" role="img" aria-label="token-authority benchmark results">`,
    `<rect width="${W}" height="${height}" fill="#ffffff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
