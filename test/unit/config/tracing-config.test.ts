import assert from 'node:assert/strict';
import { loadConfig } from '../../../src/config/config.js';
import { DEFAULT_OTLP_TRACES_URL } from '../../../src/config/tracing-settings.js';
import { configProblem } from '../../helpers/config-problem.js';

const tracing = (env: Record<string, string>, scope: 'authority' | 'sidecar' = 'authority') =>
  loadConfig(scope, { env: scope === 'sidecar' ? { TA_AUTHORITY_URL: 'http://127.0.0.1:8080', TA_REDIS_URL: 'redis://127.0.0.1:6379', TA_ISSUER: 'https://issuer.test', TA_AUDIENCE: 'orders', ...env } : env }).tracing;

describe('tracing configuration (the standard OTEL_* variables)', () => {
  it('is off with no OTEL_* variable, and with settings that do not name an exporter or endpoint', () => {
    assert.equal(tracing({}), undefined);
    assert.equal(tracing({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }), undefined);
  });

  it('is on with OTEL_EXPORTER_OTLP_ENDPOINT (spans to <endpoint>/v1/traces), with OpenTelemetry\'s defaults', () => {
    assert.deepEqual(tracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }), {
      url: 'http://collector:4318/v1/traces',
      protocol: 'http/protobuf',
      serviceName: 'token-authority',
      resourceAttributes: {},
      sampler: 'parentbased_always_on',
      samplerRatio: 1,
      scheduledDelayMs: 5000,
      maxQueueSize: 2048,
      maxExportBatchSize: 512,
    });
  });

  it('is on with OTEL_TRACES_EXPORTER=otlp alone (to localhost:4318), or the traces endpoint alone (used as is, winning over the base one)', () => {
    assert.equal(tracing({ OTEL_TRACES_EXPORTER: 'otlp' })?.url, DEFAULT_OTLP_TRACES_URL);
    assert.equal(tracing({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://c.example/otlp/traces' })?.url, 'https://c.example/otlp/traces');
    assert.equal(tracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:4318/t' })?.url, 'http://b:4318/t');
  });

  it('OTEL_SDK_DISABLED=true and OTEL_TRACES_EXPORTER=none turn it off whatever else is set', () => {
    assert.equal(tracing({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318' }), undefined);
    assert.equal(tracing({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://a:4318/v1/traces' }), undefined);
  });

  it('the sidecar\'s default service name is token-authority-sidecar; OTEL_SERVICE_NAME sets it', () => {
    assert.equal(tracing({ OTEL_TRACES_EXPORTER: 'otlp' }, 'sidecar')?.serviceName, 'token-authority-sidecar');
    assert.equal(tracing({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_SERVICE_NAME: 'edge-verifier' }, 'sidecar')?.serviceName, 'edge-verifier');
  });

  it('reads the protocol (traces-specific first), sampler, ratio, resource attributes and batch settings', () => {
    const t = tracing({
      OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=prod, team=id%20ent',
      OTEL_BSP_SCHEDULE_DELAY: '200', OTEL_BSP_MAX_QUEUE_SIZE: '100', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '50',
    });
    assert.equal(t?.protocol, 'http/json');
    assert.equal(t?.sampler, 'parentbased_traceidratio');
    assert.equal(t?.samplerRatio, 0.25);
    assert.deepEqual(t?.resourceAttributes, { 'deployment.environment.name': 'prod', team: 'id ent' });
    assert.deepEqual([t?.scheduledDelayMs, t?.maxQueueSize, t?.maxExportBatchSize], [200, 100, 50]);
  });

  it('refuses what it cannot do, naming the variable: grpc, unknown samplers, bad ratios, URLs and attribute lists, a batch above the queue', () => {
    assert.match(configProblem({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }), /OTEL_EXPORTER_OTLP_PROTOCOL .*"grpc" is not supported: spans are exported over OTLP\/HTTP/);
    assert.match(configProblem({ OTEL_TRACES_SAMPLER: 'jaeger_remote' }), /OTEL_TRACES_SAMPLER .*jaeger_remote/);
    assert.match(configProblem({ OTEL_TRACES_SAMPLER_ARG: '1.5' }), /OTEL_TRACES_SAMPLER_ARG .*from 0 to 1/);
    assert.match(configProblem({ OTEL_TRACES_EXPORTER: 'zipkin' }), /OTEL_TRACES_EXPORTER/);
    assert.match(configProblem({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }), /OTEL_EXPORTER_OTLP_ENDPOINT .*not a valid OTLP\/HTTP endpoint URL/);
    assert.match(configProblem({ OTEL_RESOURCE_ATTRIBUTES: 'novalue' }), /OTEL_RESOURCE_ATTRIBUTES .*"novalue" is not key=value/);
    assert.match(configProblem({ OTEL_BSP_MAX_QUEUE_SIZE: '10', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '20' }), /OTEL_BSP_MAX_EXPORT_BATCH_SIZE .*must not exceed OTEL_BSP_MAX_QUEUE_SIZE/);
  });

  it('an endpoint URL with credentials is never echoed in the error', () => {
    const message = configProblem({ OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://user:s3cret@collector:4318' });
    assert.ok(!message.includes('s3cret'), message);
  });
});
