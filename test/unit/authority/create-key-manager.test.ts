import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKeyManager } from '../../../src/authority/create-key-store.js';
import { loadConfig } from '../../../src/config/config.js';
import { authorityStalenessBoundMs, revocationRetentionMs } from '../../../src/config/derived-settings.js';
import { MemoryKeyStore } from '../../../src/keys/memory-key-store.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { silentLogger } from '../../../src/shared/logger.js';

const DAY = 86_400_000;

describe('settings derived in one place (config/derived-settings.ts) and the one KeyManager factory', () => {
  it('revocation retention is the longest access-token TTL plus the clock skew, for authority and sidecar alike', () => {
    const authority = loadConfig('authority', { env: { TA_MAX_ACCESS_TTL: '2m', TA_ACCESS_TTL: '1m', TA_CLOCK_SKEW: '10s' } });
    assert.equal(revocationRetentionMs(authority), 130_000);
    const sidecar = loadConfig('sidecar', {
      env: { TA_MAX_ACCESS_TTL: '2m', TA_CLOCK_SKEW: '10s', TA_AUTHORITY_URL: 'http://127.0.0.1:8080', TA_REDIS_URL: 'redis://127.0.0.1:6379', TA_ISSUER: 'http://127.0.0.1:8080', TA_AUDIENCE: 'orders' },
    });
    assert.equal(revocationRetentionMs(sidecar), 130_000);
    assert.equal(revocationRetentionMs(loadConfig('authority', { env: {} })), 3_600_000 + 30_000, 'defaults: 1h + 30s');
  });

  it("the authority's staleness bound is three heartbeats, at least 2 s", () => {
    assert.equal(authorityStalenessBoundMs(loadConfig('authority', { env: {} })), 3000);
    assert.equal(authorityStalenessBoundMs(loadConfig('authority', { env: { TA_HEARTBEAT_INTERVAL: '5s' } })), 15_000);
    assert.equal(authorityStalenessBoundMs(loadConfig('authority', { env: { TA_HEARTBEAT_INTERVAL: '100ms' } })), 2000);
  });

  describe('createKeyManager', () => {
    const config = loadConfig('authority', { env: { TA_MAX_ACCESS_TTL: '2m', TA_ACCESS_TTL: '1m', TA_CLOCK_SKEW: '10s', TA_KEY_ROTATION_INTERVAL: '1d', TA_KEY_ALG: 'EdDSA' } });

    it("'serve' rotates on TA_KEY_ROTATION_INTERVAL with TA_KEY_ALG, and keeps a retired key for the revocation retention", async () => {
      const clock = new ManualClock(Date.UTC(2026, 0, 1));
      const keys = await createKeyManager(config, silentLogger, 'serve', { keyStore: new MemoryKeyStore(), clock });
      await keys.start();
      try {
        const first = keys.list().find((k) => k.state === 'active');
        assert.equal(first?.alg, 'EdDSA');
        clock.advance(DAY + 1);
        await keys.runMaintenance();
        const retired = keys.list().find((k) => k.kid === first?.kid);
        assert.equal(retired?.state, 'retired', 'rotated on schedule');
        assert.equal((retired?.removeAfter ?? 0) - (retired?.retiredAt ?? 0), revocationRetentionMs(config));
      } finally {
        await keys.stop();
      }
    });

    it("'command' never rotates on its own", async () => {
      const clock = new ManualClock(Date.UTC(2026, 0, 1));
      const keys = await createKeyManager(config, silentLogger, 'command', { keyStore: new MemoryKeyStore(), clock });
      await keys.start();
      try {
        const active = keys.list().find((k) => k.state === 'active')?.kid;
        clock.advance(30 * DAY);
        await keys.runMaintenance();
        assert.equal(keys.list().find((k) => k.state === 'active')?.kid, active);
      } finally {
        await keys.stop();
      }
    });

    it("'follow' opens the configured store read-only and never rotates", async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ta-follow-'));
      try {
        const env = { TA_KEY_DIR: dir, TA_KEY_ROTATION_INTERVAL: '1d' };
        const writer = await createKeyManager(loadConfig('authority', { env }), silentLogger, 'serve');
        await writer.start();
        const active = writer.list().find((k) => k.state === 'active')?.kid;
        await writer.stop();
        const clock = new ManualClock(Date.now() + 30 * DAY);
        const follower = await createKeyManager(loadConfig('authority', { env }), silentLogger, 'follow', { clock });
        await follower.start();
        try {
          await follower.runMaintenance();
          assert.equal(follower.list().find((k) => k.state === 'active')?.kid, active);
        } finally {
          await follower.stop();
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
