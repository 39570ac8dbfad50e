/** Shared fixtures for the key tests. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AccessTokenPayload } from '../../../src/shared/claims.js';
import type { Logger } from '../../../src/shared/logger.js';
import type { KeySetDocument, KeyStore } from '../../../src/keys/key-store.js';

/** A fresh private temp directory; remove it with {@link removeTempDir}. */
export function makeTempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'ta-keys-'));
}

export function removeTempDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}

/** A payload valid now by the wall clock (jose checks exp against real time). */
export function samplePayload(overrides: Partial<AccessTokenPayload> = {}): AccessTokenPayload {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: 'https://auth.example.test',
    sub: 'user-1',
    aud: ['orders'],
    exp: now + 300,
    iat: now,
    nbf: now,
    jti: 'jti-1',
    sid: 'sid-1',
    gen: 0,
    scope: 'orders:read',
    ...overrides,
  };
}

export interface LogLine {
  level: string;
  obj: object | undefined;
  msg: string | undefined;
}

/** A logger that records every line, to assert on warnings and on what is never logged. */
export function capturingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const make = (bindings: object): Logger => {
    const fn = (level: string) => (a: object | string, b?: string) => {
      if (typeof a === 'string') lines.push({ level, obj: bindings, msg: a });
      else lines.push({ level, obj: { ...bindings, ...a }, msg: b });
    };
    return {
      debug: fn('debug'),
      info: fn('info'),
      warn: fn('warn'),
      error: fn('error'),
      child: (more) => make({ ...bindings, ...more }),
    };
  };
  return { logger: make({}), lines };
}

/**
 * Holds saves back once armed: the next `n` saves (across every store sharing the gate) wait
 * until all `n` have arrived. This makes "two writers race on the same version" deterministic
 * instead of a matter of timing.
 */
export class SaveGate {
  private pending: { remaining: number; arrived: Promise<void>; release: () => void } | undefined;

  arm(n: number): void {
    let release!: () => void;
    const arrived = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.pending = { remaining: n, arrived, release };
  }

  async pass(): Promise<void> {
    const gate = this.pending;
    if (gate === undefined) return;
    gate.remaining--;
    if (gate.remaining === 0) {
      this.pending = undefined;
      gate.release();
    }
    await gate.arrived;
  }
}

/** A store whose saves pass through a {@link SaveGate} and are counted. */
export class GatedStore implements KeyStore {
  loads = 0;
  saves = 0;
  successfulSaves = 0;

  constructor(
    private readonly inner: KeyStore,
    private readonly gate: SaveGate,
  ) {}

  load(): Promise<KeySetDocument | undefined> {
    this.loads++;
    return this.inner.load();
  }

  async save(doc: KeySetDocument, expectedVersion: number): Promise<boolean> {
    this.saves++;
    await this.gate.pass();
    const ok = await this.inner.save(doc, expectedVersion);
    if (ok) this.successfulSaves++;
    return ok;
  }
}
