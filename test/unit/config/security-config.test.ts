import assert from 'node:assert/strict';
import { loadConfig } from '../../../src/config/config.js';
import { certificateIdentities, hostOfPeer, normalizeAddress } from '../../../src/grpc/caller.js';
import { CONNECTION_AGE_GRACE_MS, KEEPALIVE_TIMEOUT_MS, transportLimits } from '../../../src/grpc/transport-limits.js';
import { configProblem } from '../../helpers/config-problem.js';

const base = { TA_KEY_DIR: '/tmp/unused', TA_ISSUER: 'https://issuer.test' };
const load = (env: Record<string, string>) => loadConfig('authority', { env: { ...base, ...env } });
const problem = (env: Record<string, string>): string => configProblem({ ...base, ...env });

describe('security settings', () => {
  it('has documented defaults: 64 KiB messages, 100 streams, rate limits on Issue/Refresh/Revoke', () => {
    const c = load({});
    assert.equal(c.maxMessageBytes, 65536);
    assert.equal(c.maxConcurrentStreams, 100);
    assert.equal(c.keepaliveTimeMs, 120_000);
    assert.equal(c.maxConnectionIdleMs, 300_000);
    assert.equal(c.maxConnectionAgeMs, 1_800_000);
    assert.deepEqual(c.rateLimitIssue, { perSecond: 200, burst: 400, text: '200/s:400' });
    assert.deepEqual(c.rateLimitRefresh, { perSecond: 500, burst: 1000, text: '500/s:1000' });
    assert.deepEqual(c.rateLimitRevoke, { perSecond: 100, burst: 200, text: '100/s:200' });
    assert.equal(c.rateLimitCallers, 10_000);
    assert.equal(c.clientPolicy, undefined);
  });

  it('reads sizes with units, rate limits, and "off"', () => {
    const c = load({ TA_MAX_MESSAGE_BYTES: '2MiB', TA_RATE_LIMIT_ISSUE: 'off', TA_RATE_LIMIT_REVOKE: '30/m', TA_KEEPALIVE_TIME: '0' });
    assert.equal(c.maxMessageBytes, 2 * 1024 * 1024);
    assert.equal(c.rateLimitIssue, null);
    assert.deepEqual(c.rateLimitRevoke, { perSecond: 0.5, burst: 30, text: '30/m' });
    assert.equal(c.keepaliveTimeMs, 0);
  });

  it('names every bad value', () => {
    const m = problem({ TA_MAX_MESSAGE_BYTES: '1KiB', TA_RATE_LIMIT_REFRESH: 'lots', TA_MAX_CONCURRENT_STREAMS: '0' });
    assert.match(m, /TA_MAX_MESSAGE_BYTES \(--max-message-bytes\): "1KiB" must be a size from 16 KiB to 64 MiB/);
    assert.match(m, /TA_RATE_LIMIT_REFRESH \(--rate-limit-refresh\): "lots" is not a rate limit/);
    assert.match(m, /TA_MAX_CONCURRENT_STREAMS \(--max-concurrent-streams\): "0" must be an integer/);
  });

  it('refuses TA_CLIENT_POLICY without mutual TLS, saying what to set', () => {
    const m = problem({ TA_CLIENT_POLICY: '/etc/ta/policy.json' });
    assert.match(m, /TA_CLIENT_POLICY \(--client-policy\): the client policy names callers by their client certificate, so it needs mutual TLS: set TA_TLS_CLIENT_CA/);
    const m2 = problem({ TA_CLIENT_POLICY: '/p.json', TA_TLS_CERT: '/c.pem', TA_TLS_KEY: '/k.pem' });
    assert.match(m2, /TA_CLIENT_POLICY .*needs mutual TLS/);
    assert.equal(load({ TA_CLIENT_POLICY: '/p.json', TA_TLS_CERT: '/c.pem', TA_TLS_KEY: '/k.pem', TA_TLS_CLIENT_CA: '/ca.pem' }).clientPolicy, '/p.json');
  });

  it('turns the connection limits into grpc-js server options (0 = option left out)', () => {
    assert.deepEqual(transportLimits(load({ TA_MAX_CONCURRENT_STREAMS: '7', TA_KEEPALIVE_TIME: '30s', TA_MAX_CONNECTION_IDLE: '1m', TA_MAX_CONNECTION_AGE: '10m' })), {
      'grpc.max_concurrent_streams': 7,
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
      'grpc.max_connection_idle_ms': 60_000,
      'grpc.max_connection_age_ms': 600_000,
      'grpc.max_connection_age_grace_ms': CONNECTION_AGE_GRACE_MS,
    });
    assert.deepEqual(transportLimits(load({ TA_KEEPALIVE_TIME: '0', TA_MAX_CONNECTION_IDLE: '0', TA_MAX_CONNECTION_AGE: '0' })), { 'grpc.max_concurrent_streams': 100 });
  });
});

describe('client certificate identities', () => {
  const uri = (value: string) => ({ kind: 'uri', value });
  const dns = (value: string) => ({ kind: 'dns', value });
  const cn = (value: string) => ({ kind: 'cn', value });
  it('takes SAN URIs, then SAN DNS names, typed, and ignores the CN beside them', () => {
    assert.deepEqual(certificateIdentities('DNS:login.corp, URI:spiffe://corp/login, IP Address:10.0.0.1', 'login-cn'), [uri('spiffe://corp/login'), dns('login.corp')]);
  });
  it('takes the CN, typed as a CN, only when the certificate has no SAN at all', () => {
    assert.deepEqual(certificateIdentities(undefined, 'ops-cli.corp.internal'), [cn('ops-cli.corp.internal')]);
    assert.deepEqual(certificateIdentities(undefined, 'spiffe://corp/login'), [cn('spiffe://corp/login')], 'a CN spelling a URI is still a CN');
    assert.deepEqual(certificateIdentities('IP Address:127.0.0.1, email:a@b.c', 'ops'), [], 'email and IP SANs exclude the CN too');
    assert.deepEqual(certificateIdentities('email:a@b.c', 'ops'), []);
  });
  it('takes no CN when there are several (ambiguous), and nothing from an empty certificate', () => {
    assert.deepEqual(certificateIdentities('', ['a', 'b']), []);
    assert.deepEqual(certificateIdentities(undefined, undefined), []);
  });
  it('reads values Node quotes because they hold a comma, instead of splitting them', () => {
    assert.deepEqual(certificateIdentities('URI:"spiffe://corp/a,b", DNS:x.corp', undefined), [uri('spiffe://corp/a,b'), dns('x.corp')]);
  });
});

describe('peer addresses', () => {
  it('drops the port grpc-js appends (IPv6 without brackets), keeps an address without one', () => {
    assert.equal(hostOfPeer('::1:45678'), '::1');
    assert.equal(hostOfPeer('::1'), '::1');
    assert.equal(hostOfPeer('fe80::1:2:3:4:5:6:60000'), 'fe80::1:2:3:4:5:6');
    assert.equal(hostOfPeer('127.0.0.1:5'), '127.0.0.1');
    assert.equal(hostOfPeer('ipv6:[::1]:5000'), '::1');
    assert.equal(hostOfPeer('unknown'), 'unknown');
  });
  it('maps IPv4-mapped IPv6 addresses to IPv4', () => {
    assert.equal(normalizeAddress('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(normalizeAddress('::FFFF:10.1.2.3'), '10.1.2.3');
    assert.equal(normalizeAddress('::1'), '::1');
    assert.equal(normalizeAddress('::ffff:7f00:1'), '::ffff:7f00:1');
  });
});
