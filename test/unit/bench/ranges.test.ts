import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import type { Figure } from '../../../bench/figures.js';
import { rangesTable } from '../../../bench/ranges.js';

/** bench/ranges.ts: the range a note quotes must be the min and max of the runs, per figure. */

const ratioFigure = (ratio: number, met: boolean): Figure => ({
  id: 'rpc.verify.sidecar',
  title: 'Verify RPC at the sidecar',
  status: 'measured',
  measured: { value: 1000 * ratio, unit: 'calls/s' },
  baseline: { name: 'echo', value: 1000, unit: 'calls/s' },
  ratio,
  target: { on: 'ratio', op: '>=', value: 0.8, text: '≥ 0.8× bare echo' },
  met,
  notes: [],
});

const valueFigure = (seconds: number): Figure => ({
  id: 'memory.load.redis',
  title: 'Load 1M revocations from Redis',
  status: 'measured',
  measured: { value: seconds, unit: 's' },
  met: null,
  notes: [],
});

describe('bench ranges over runs', () => {
  it('gives each figure its value per run, the min–max range and how many runs met the target', () => {
    const table = rangesTable([
      { figures: [ratioFigure(0.62, false), valueFigure(4.13)] },
      { figures: [ratioFigure(0.81, true), valueFigure(2.44)] },
      { figures: [ratioFigure(0.75, false)] },
    ]);
    const lines = table.trim().split('\n');
    assert.equal(lines[0], '| figure | run 1 | run 2 | run 3 | range | target | met |');
    assert.equal(lines[2], '| Verify RPC at the sidecar | 0.62× | 0.81× | 0.75× | 0.62–0.81× | ≥ 0.8× bare echo | 1/3 |');
    // A figure missing from a run shows a dash there and its range is over the runs that have it.
    assert.equal(lines[3], '| Load 1M revocations from Redis | 4.13 s | 2.44 s | — | 2.44–4.13 s | — | — |');
  });
});
