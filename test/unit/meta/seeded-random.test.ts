import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mulberry32, seededRandom, seedFrom } from '../../helpers/seeded-random.js';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));

describe('seeded randomness of the fault tests (test/helpers/seeded-random.ts)', () => {
  it('replays: the same seed and label give the same draws; another label or seed does not', () => {
    const draws = (label: string, seed: number) => {
      const r = seededRandom(label, seed);
      return Array.from({ length: 20 }, () => r.int(0, 1_000_000));
    };
    assert.deepEqual(draws('fault/a', 42), draws('fault/a', 42));
    assert.notDeepEqual(draws('fault/a', 42), draws('fault/b', 42));
    assert.notDeepEqual(draws('fault/a', 42), draws('fault/a', 43));
    assert.equal(seededRandom('x', 7).replay, 'TA_TEST_SEED=7');
  });

  it('draws uniformly within the bounds', () => {
    const r = seededRandom('bounds', 1);
    const counts = new Map<number, number>();
    for (let i = 0; i < 6000; i++) {
      const v = r.int(3, 8);
      assert.ok(Number.isInteger(v) && v >= 3 && v <= 8, `out of bounds: ${v}`);
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    assert.equal(counts.size, 6);
    for (const n of counts.values()) assert.ok(n > 800 && n < 1200, `not uniform: ${[...counts]}`);
    const next = mulberry32(0);
    for (let i = 0; i < 1000; i++) {
      const x = next();
      assert.ok(x >= 0 && x < 1);
    }
  });

  it('reads TA_TEST_SEED, draws a fresh seed without it, refuses a bad one', () => {
    assert.equal(seedFrom({ TA_TEST_SEED: '123' }), 123);
    assert.equal(seedFrom({ TA_TEST_SEED: ' 4294967295 ' }), 4294967295);
    const fresh = seedFrom({});
    assert.ok(Number.isInteger(fresh) && fresh >= 0 && fresh < 2 ** 32);
    assert.throws(() => seedFrom({ TA_TEST_SEED: 'abc' }), /TA_TEST_SEED must be an integer/);
    assert.throws(() => seedFrom({ TA_TEST_SEED: '4294967296' }), /TA_TEST_SEED must be an integer/);
  });

  it('every fault test file prints its seed, and no fault test or load helper calls Math.random', () => {
    const dir = join(REPO, 'test/fault');
    const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
    for (const f of files) {
      const text = readFileSync(join(dir, f), 'utf8');
      assert.doesNotMatch(text, /Math\.random/, `test/fault/${f}: draw from seededRandom (test/helpers/seeded-random.ts) instead`);
      if (f.endsWith('.test.ts')) assert.match(text, /seededSuite\(|reportSeed\(/, `test/fault/${f} does not print its seed`);
    }
    assert.doesNotMatch(readFileSync(join(REPO, 'test/helpers/load.ts'), 'utf8'), /Math\.random/);
  });
});
