/**
 * Writes a run's results: bench/results/<date>.json (everything), <date>.md (the summary table and
 * how each figure was measured), <date>.svg (the chart), and latest.md / latest.svg copies that the
 * README embeds. Also renders the table for the console and the README.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderChart } from './chart.js';
import { formatMet, formatQuantity, formatRatio, type Figure } from './figures.js';
import type { Machine } from './machine.js';

export interface RunResults {
  /** The command line that produced this run. */
  command: string;
  machine: Machine;
  settings: Record<string, unknown>;
  durationSeconds: number;
  figures: Figure[];
  summary: { met: number; missed: number; noTarget: number; notMeasured: number; failed: number };
}

export function summarize(figures: readonly Figure[]): RunResults['summary'] {
  return {
    met: figures.filter((f) => f.met === true).length,
    missed: figures.filter((f) => f.met === false && f.status === 'measured').length,
    noTarget: figures.filter((f) => f.status === 'measured' && !f.target).length,
    notMeasured: figures.filter((f) => f.status === 'not-measured').length,
    failed: figures.filter((f) => f.status === 'failed').length,
  };
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|');
}

/** The summary table as Markdown. */
export function markdownTable(figures: readonly Figure[]): string {
  const rows = figures.map((f) => {
    const measured = f.status === 'measured' ? formatQuantity(f.measured) : f.status === 'failed' ? 'failed' : 'not measured';
    const lat = f.latency && f.measured?.unit !== 'ms' ? ` (p50 ${f.latency.p50.toFixed(2)} / p99 ${f.latency.p99.toFixed(2)} ms)` : f.latency && f.id.startsWith('rpc.') ? ` (p99 ${f.latency.p99.toFixed(2)} ms)` : '';
    return `| ${cell(f.title)} | ${cell(measured + lat)} | ${cell(f.baseline ? `${formatQuantity(f.baseline)} — ${f.baseline.name}` : '—')} | ${formatRatio(f.ratio)} | ${cell(f.target?.text ?? '—')} | ${formatMet(f)} |`;
  });
  return ['| figure | measured | baseline (same run) | ratio | target | met |', '| --- | --- | --- | --- | --- | --- |', ...rows].join('\n');
}

export function markdownReport(r: RunResults, svgName: string): string {
  const m = r.machine;
  const s = r.summary;
  const lines = [
    `# token-authority benchmarks — ${m.date.slice(0, 10)}`,
    '',
    `\`${r.command}\` on ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}; Node ${m.nodeVersion} (V8 ${m.v8Version})` +
      `${m.h2load ? `, h2load ${m.h2load}` : ''}${m.redisServer ? `, redis-server ${m.redisServer}` : ''}. ` +
      `Load average when the run started: ${m.loadAverageAtStart}. Run time ${Math.round(r.durationSeconds)} s.`,
    '',
    `Targets: ${s.met} met, ${s.missed} missed${s.failed ? `, ${s.failed} failed` : ''}${s.notMeasured ? `, ${s.notMeasured} not measured` : ''}; ${s.noTarget} figures without a target are recorded for reference.`,
    '',
    markdownTable(r.figures),
    '',
    `![benchmark chart](${svgName})`,
    '',
    '## How each figure was measured',
    '',
    ...r.figures.flatMap((f) => [
      `**${f.title}** (\`${f.id}\`)${f.rounds ? ` — per-round ratios: ${f.rounds.ratios.map((x) => x.toFixed(2)).join(', ')}` : ''}`,
      ...f.notes.map((n) => `- ${n}`),
      ...(f.details?.profile ? [`- profile (busy time by area): ${Object.entries((f.details.profile as { byArea: Record<string, number> }).byArea).map(([k, v]) => `${k} ${v}%`).join(', ')}`] : []),
      '',
    ]),
    '## Setup',
    '',
    '- Every ratio is taken against a baseline measured in the same run, in alternating rounds (A B, B A, …), reported as the median of per-round ratios.',
    '- In-process figures are synchronous and timed in process CPU time (process.cpuUsage: user + system, all threads, so GC helper threads count against the figure), which keeps other load on a shared machine out of the comparison.',
    `- RPC figures: servers under test and the echo baseline pinned to core 0 (\`taskset -c 0\`), the load generator (h2load, or the Node generator for Refresh and Revoke) and redis-server on core 1${m.pinning ? '' : ' — pinning was NOT available on this machine, so nothing was pinned'}. Servers ran at TA_LOG_LEVEL=warn (no access log lines).`,
    '- h2load counts any HTTP 200 as a success, so every h2load figure is checked for grpc-status: a grpc-js call with the same request before and after the runs must answer OK with the expected content, and DATA bytes per request must match that good reply (gRPC errors are trailers-only: no DATA).',
    '',
  ];
  return lines.join('\n');
}

/** Write <date>.{json,md,svg} (and latest.{md,svg} unless told not to); returns the paths. */
export function writeResults(r: RunResults, dir: string, name: string, updateLatest: boolean): string[] {
  mkdirSync(dir, { recursive: true });
  const svg = renderChart(r.figures, r.machine, r.command);
  const paths = [join(dir, `${name}.json`), join(dir, `${name}.md`), join(dir, `${name}.svg`)];
  writeFileSync(paths[0]!, `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(paths[1]!, markdownReport(r, `${name}.svg`));
  writeFileSync(paths[2]!, svg);
  if (updateLatest) {
    writeFileSync(join(dir, 'latest.md'), markdownReport(r, 'latest.svg'));
    writeFileSync(join(dir, 'latest.svg'), svg);
    paths.push(join(dir, 'latest.md'), join(dir, 'latest.svg'));
  }
  return paths;
}

export const README_START = '<!-- bench:start (written by `npm run bench -- --update-readme`) -->';
export const README_END = '<!-- bench:end -->';

/** Replace the README's figures block (between the markers) with this run's table. */
export function updateReadme(readmePath: string, r: RunResults): boolean {
  const text = readFileSync(readmePath, 'utf8');
  const a = text.indexOf(README_START);
  const b = text.indexOf(README_END);
  if (a < 0 || b < a) return false;
  const m = r.machine;
  const block = [
    README_START,
    `Measured ${m.date.slice(0, 10)} with \`${r.command}\` on ${m.cpuModel} (${m.cores} cores), Node ${m.nodeVersion}:`,
    '',
    markdownTable(r.figures),
    '',
  ].join('\n');
  writeFileSync(readmePath, text.slice(0, a) + block + text.slice(b));
  return true;
}

/** A plain-text table for the console. */
export function consoleTable(figures: readonly Figure[]): string {
  const rows = figures.map((f) => [
    f.title,
    f.status === 'measured' ? formatQuantity(f.measured) : f.status,
    f.baseline ? formatQuantity(f.baseline) : '—',
    formatRatio(f.ratio),
    f.target?.text ?? '—',
    formatMet(f),
  ]);
  const head = ['figure', 'measured', 'baseline', 'ratio', 'target', 'met'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i] as number)).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
