import assert from 'node:assert/strict';
import { loadConfig, type AuthorityConfig, type SidecarConfig } from '../../../src/config/config.js';
import { OPTION_TABLE, OPTIONS } from '../../../src/config/options.js';
import { DEFAULTS, byteSizeText, durationText } from '../../../src/shared/defaults.js';

// Compile-time checks: the build fails if the configuration types and the table disagree.
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
type Row = (typeof OPTION_TABLE)[number];
type KeysOf<S extends string> = Extract<Row, { scope: 'common' | S }>['key'];
// Besides the table's rows, one derived member: `tracing`, resolved from the OTEL_* rows.
const authorityKeysMatch: Equal<keyof AuthorityConfig, KeysOf<'authority'> | 'tracing'> = true;
const sidecarKeysMatch: Equal<keyof SidecarConfig, KeysOf<'sidecar'> | 'tracing'> = true;
// A setting with a default is always present; the sidecar's required ones are never optional.
const requiredAreRequired: Equal<Pick<SidecarConfig, 'authorityUrl' | 'redisUrl' | 'issuer' | 'audience' | 'receiptRetentionMs'>, { readonly authorityUrl: string; readonly redisUrl: string; readonly issuer: string; readonly audience: string; readonly receiptRetentionMs: number }> = true;
const optionalStayOptional: Equal<undefined extends AuthorityConfig['redisUrl'] ? true : false, true> = true;

const SIDECAR_ENV = { TA_AUTHORITY_URL: 'http://127.0.0.1:8080', TA_REDIS_URL: 'redis://127.0.0.1:6379', TA_ISSUER: 'http://127.0.0.1:8080', TA_AUDIENCE: 'orders' };

describe('the configuration typed from its table (config.ts, options.ts)', () => {
  it('its types are computed from the table (checked when this file compiles)', () => {
    assert.deepEqual([authorityKeysMatch, sidecarKeysMatch, requiredAreRequired, optionalStayOptional], [true, true, true, true]);
  });

  for (const scope of ['authority', 'sidecar'] as const) {
    it(`${scope}: holds exactly its scope's settings, each with a default present as its parsed default`, () => {
      const config = loadConfig(scope, { env: scope === 'sidecar' ? SIDECAR_ENV : {} }) as unknown as Record<string, unknown>;
      for (const o of OPTIONS) {
        const inScope = o.scope === 'common' || o.scope === scope;
        if (!inScope) {
          assert.ok(!(o.key in config), `${o.key} is not a ${scope} setting`);
          continue;
        }
        const text = scope === 'sidecar' ? (o.sidecarDefault ?? o.default) : o.default;
        if (text === undefined) continue;
        assert.ok(o.key in config, `${o.key} has a default, so it is set`);
        assert.deepEqual(config[o.key], o.schema.parse(text), `${o.key} = its default`);
      }
      assert.equal(typeof config.issuer, 'string', 'issuer is always set');
    });
  }

  it('the defaults the library applies are the options table\'s defaults (one module: shared/defaults.ts)', () => {
    const authority = loadConfig('authority', { env: {} });
    const sidecar = loadConfig('sidecar', { env: SIDECAR_ENV });
    assert.equal(authority.clockSkewMs, DEFAULTS.clockSkewMs);
    assert.equal(authority.redisCommandTimeoutMs, DEFAULTS.redisCommandTimeoutMs);
    assert.equal(authority.tokenCacheSize, DEFAULTS.tokenCacheSize);
    assert.equal(authority.accessLogSample, DEFAULTS.accessLogSample);
    assert.equal(authority.maxMessageBytes, DEFAULTS.maxMessageBytes);
    assert.equal(authority.maxConcurrentStreams, DEFAULTS.maxConcurrentStreams);
    assert.equal(sidecar.stalenessBoundMs, DEFAULTS.stalenessBoundMs);
    assert.equal(sidecar.stalenessPolicy, DEFAULTS.stalenessPolicy);
    assert.equal(sidecar.jwksCooldownMs, DEFAULTS.jwksCooldownMs);
    // The table prints them in its usual notation.
    assert.deepEqual([durationText(30_000), durationText(5000), durationText(3_600_000), durationText(86_400_000 * 7), durationText(250)], ['30s', '5s', '1h', '7d', '250ms']);
    assert.deepEqual([byteSizeText(65536), byteSizeText(2 * 1024 * 1024), byteSizeText(1000)], ['64KiB', '2MiB', '1000']);
  });
});
