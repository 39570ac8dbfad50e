/**
 * The range of each figure over several full runs: what a note quotes ("0.54–0.63× over three
 * runs") instead of one run's value.
 *
 *   node dist/bench/ranges.js bench/results/run-a.json bench/results/run-b.json …
 *
 * Prints a Markdown table: per figure, the ratio (or, for figures without a baseline, the value)
 * of each run, the min–max range, the target, and in how many runs it was met.
 */
import { readFileSync } from 'node:fs';
import type { Figure } from './figures.js';

export interface RunFile {
  machine?: { loadAverageAtStart?: number[] | number; loadAverage?: number[] | number };
  figures: Figure[];
}

function format(n: number): string {
  if (n >= 100) return Math.round(n).toLocaleString('en-US');
  if (n >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

/** The Markdown table of each figure's value in every run and its min–max range. */
export function rangesTable(runs: readonly RunFile[]): string {
  const ids: string[] = [];
  const byId = new Map<string, Array<Figure | undefined>>();
  runs.forEach((run, i) => {
    for (const figure of run.figures) {
      if (!byId.has(figure.id)) {
        ids.push(figure.id);
        byId.set(figure.id, new Array<Figure | undefined>(runs.length).fill(undefined));
      }
      byId.get(figure.id)![i] = figure;
    }
  });
  const out: string[] = [];
  out.push(`| figure | ${runs.map((_, i) => `run ${i + 1}`).join(' | ')} | range | target | met |`);
  out.push(`| --- | ${runs.map(() => '---').join(' | ')} | --- | --- | --- |`);
  for (const id of ids) {
    const row = byId.get(id)!;
    const first = row.find((f) => f !== undefined)!;
    const useRatio = row.some((f) => f?.ratio !== undefined);
    const values = row.map((f) => (f === undefined || f.status !== 'measured' ? undefined : useRatio ? f.ratio : f.measured?.value));
    const unit = useRatio ? '×' : ` ${first.measured?.unit ?? ''}`;
    const cells = values.map((v) => (v === undefined ? '—' : `${format(v)}${unit}`));
    const present = values.filter((v): v is number => v !== undefined);
    const range = present.length === 0 ? '—' : `${format(Math.min(...present))}–${format(Math.max(...present))}${unit}`;
    const met = row.filter((f) => f?.met === true).length;
    const judged = row.filter((f) => f?.met === true || f?.met === false).length;
    out.push(`| ${first.title} | ${cells.join(' | ')} | ${range} | ${first.target?.text ?? '—'} | ${judged === 0 ? '—' : `${met}/${judged}`} |`);
  }
  return `${out.join('\n')}\n`;
}

function main(): void {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    process.stderr.write('usage: node dist/bench/ranges.js <run.json>…\n');
    process.exit(2);
  }
  process.stdout.write(rangesTable(files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as RunFile)));
}

if (import.meta.url === `file://${process.argv[1]}`) main();
