import type { OTEL_SAMPLERS } from './options.js';

/** Where the OTLP/HTTP exporter posts when tracing is on and no endpoint is named (the OpenTelemetry default). */
export const DEFAULT_OTLP_TRACES_URL = 'http://localhost:4318/v1/traces';

/** What tracing needs once it is on: the resolved OTEL_* settings. */
export interface TracingSettings {
  /** The full URL spans are posted to. */
  url: string;
  protocol: 'http/protobuf' | 'http/json';
  serviceName: string;
  resourceAttributes: Readonly<Record<string, string>>;
  sampler: (typeof OTEL_SAMPLERS)[number];
  samplerRatio: number;
  scheduledDelayMs: number;
  maxQueueSize: number;
  maxExportBatchSize: number;
}

/** The OTEL_* part of the configuration, as options.ts parses it. */
export interface OtelOptions {
  otelSdkDisabled: boolean;
  otelTracesExporter?: 'otlp' | 'none';
  otelExporterOtlpEndpoint?: string;
  otelExporterOtlpTracesEndpoint?: string;
  otelExporterOtlpProtocol: 'http/protobuf' | 'http/json';
  otelExporterOtlpTracesProtocol?: 'http/protobuf' | 'http/json';
  otelServiceName: string;
  otelResourceAttributes?: Readonly<Record<string, string>>;
  otelTracesSampler: (typeof OTEL_SAMPLERS)[number];
  otelTracesSamplerArg: number;
  otelBspScheduleDelayMs: number;
  otelBspMaxQueueSize: number;
  otelBspMaxExportBatchSize: number;
}

/**
 * The one rule that turns tracing on. Off (undefined) unless the standard variables ask for it:
 * on when OTEL_TRACES_EXPORTER=otlp or an OTLP endpoint variable (OTEL_EXPORTER_OTLP_ENDPOINT,
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set; OTEL_SDK_DISABLED=true and OTEL_TRACES_EXPORTER=none
 * win over both. (OpenTelemetry's own default exporter is otlp; ours is none, so that a process
 * never starts posting spans to localhost:4318 because nothing said otherwise.)
 */
export function tracingSettings(o: OtelOptions): TracingSettings | undefined {
  if (o.otelSdkDisabled || o.otelTracesExporter === 'none') return undefined;
  const endpoint = o.otelExporterOtlpTracesEndpoint ?? (o.otelExporterOtlpEndpoint !== undefined ? `${o.otelExporterOtlpEndpoint}/v1/traces` : undefined);
  if (o.otelTracesExporter !== 'otlp' && endpoint === undefined) return undefined;
  return {
    url: endpoint ?? DEFAULT_OTLP_TRACES_URL,
    protocol: o.otelExporterOtlpTracesProtocol ?? o.otelExporterOtlpProtocol,
    serviceName: o.otelServiceName,
    resourceAttributes: o.otelResourceAttributes ?? {},
    sampler: o.otelTracesSampler,
    samplerRatio: o.otelTracesSamplerArg,
    scheduledDelayMs: o.otelBspScheduleDelayMs,
    maxQueueSize: o.otelBspMaxQueueSize,
    maxExportBatchSize: o.otelBspMaxExportBatchSize,
  };
}
