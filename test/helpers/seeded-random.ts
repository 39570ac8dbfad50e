/**
 * Seeded randomness for tests whose choices vary from run to run (the fault suite's kill moments,
 * outage lengths, pauses). One base seed per process, from TA_TEST_SEED or drawn fresh; each test
 * file gets its own stream derived from the seed and a label, so a file replays the same choices
 * whether it runs alone or with the rest of the suite:
 *
 *   TA_TEST_SEED=<n> npm run test:fault
 *
 * What is replayed is the choices, not the timing of the machine: a replay reproduces a failure
 * that hangs on those choices, not one on scheduling alone.
 */
import { randomInt as cryptoRandomInt } from 'node:crypto';

const SEED_ENV = 'TA_TEST_SEED';

/** mulberry32: a small, fast 32-bit PRNG; uniform in [0, 1). Not for anything secret. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** TA_TEST_SEED as an unsigned 32-bit integer, or a fresh one; throws on a value that is not one. */
export function seedFrom(env: Readonly<Record<string, string | undefined>> = process.env): number {
  const raw = env[SEED_ENV]?.trim();
  if (raw === undefined || raw === '') return cryptoRandomInt(0, 2 ** 32 - 1);
  if (!/^\d+$/.test(raw) || Number(raw) > 2 ** 32 - 1) throw new Error(`${SEED_ENV} must be an integer in [0, ${2 ** 32 - 1}] (got "${raw}")`);
  return Number(raw);
}

let processSeed: number | undefined;

/** The base seed of this process (read once). */
export function testSeed(): number {
  processSeed ??= seedFrom();
  return processSeed;
}

/** FNV-1a over the label: streams of different files differ. */
function hashLabel(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export interface SeededRandom {
  /** The base seed (what TA_TEST_SEED replays). */
  readonly seed: number;
  readonly label: string;
  /** Uniform in [0, 1). */
  next(): number;
  /** A uniformly random integer in [min, max]. */
  int(min: number, max: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
  /** One element, uniformly. */
  pick<T>(items: readonly T[]): T;
  /** "TA_TEST_SEED=<n>": for messages. */
  readonly replay: string;
}

/** The stream of `label` (a test file's name) under the process seed, or under `seed`. */
export function seededRandom(label: string, seed: number = testSeed()): SeededRandom {
  const next = mulberry32((seed ^ hashLabel(label)) >>> 0);
  return {
    seed,
    label,
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    chance: (p) => next() < p,
    pick: (items) => {
      if (items.length === 0) throw new Error('pick from an empty list');
      return items[Math.floor(next() * items.length)]!;
    },
    replay: `${SEED_ENV}=${seed}`,
  };
}

/**
 * For a mocha suite: print the seed when it starts, and append it to the message of every test
 * that fails, so the report says how to replay. Call first inside `describe`.
 */
export function reportSeed(random: SeededRandom): void {
  before(function () {
    console.log(`      [${random.label}] random seed ${random.seed}: replay with ${random.replay} npm run test:fault`);
  });
  afterEach(function () {
    const test = this.currentTest;
    const err = test?.err;
    if (test?.state !== 'failed' || !err || err.message.includes(random.replay)) return;
    const note = `(random seed ${random.seed}: replay with ${random.replay} npm run test:fault)`;
    err.message += `\n${note}`;
    // Reporters take the message from the stack's lines before its first frame.
    if (typeof err.stack === 'string') {
      const frames = err.stack.search(/\n\s+at\s/);
      err.stack = frames >= 0 ? `${err.stack.slice(0, frames)}\n${note}${err.stack.slice(frames)}` : `${err.stack}\n${note}`;
    }
  });
}

/** seededRandom(label) and reportSeed for it, in one call inside `describe`. */
export function seededSuite(label: string): SeededRandom {
  const random = seededRandom(label);
  reportSeed(random);
  return random;
}
