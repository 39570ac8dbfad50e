import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import protobuf from 'protobufjs';

/** One span as a receiver saw it, from either OTLP/HTTP encoding. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 2 SERVER, 3 CLIENT. */
  kind: number;
  attributes: Record<string, string | number | boolean>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  status: { code: number; message: string };
  /** The `service.name` of its resource. */
  service: string;
  /** The `service.instance.id` of its resource. */
  instance: string;
}

/** One POST the receiver answered. */
export interface ReceivedExport {
  path: string;
  contentType: string;
  body: Buffer;
}

export interface OtlpReceiver {
  /** The base URL (OTEL_EXPORTER_OTLP_ENDPOINT). */
  readonly url: string;
  readonly exports: readonly ReceivedExport[];
  /** Every span of every export so far, decoded. */
  spans(): ReceivedSpan[];
  stop(): Promise<void>;
}

/**
 * The subset of opentelemetry-proto (collector/trace/v1, trace/v1, common/v1, resource/v1) a
 * receiver needs to read spans: field numbers as in the published .proto files.
 */
const OTLP_PROTO = `
syntax = "proto3";
package otlp;
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message Resource { repeated KeyValue attributes = 1; }
message ScopeSpans { repeated Span spans = 2; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4;
  string name = 5; int32 kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9; Status status = 15;
}
message Status { string message = 2; int32 code = 3; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; } }
`;
const ExportRequest = protobuf.parse(OTLP_PROTO).root.lookupType('otlp.ExportTraceServiceRequest');

interface JsonValue { stringValue?: string; boolValue?: boolean; intValue?: number | string; doubleValue?: number }
interface JsonKv { key: string; value?: JsonValue }
interface JsonRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: JsonKv[] };
    scopeSpans?: Array<{ spans?: Array<{ traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes?: JsonKv[]; status?: { code?: number; message?: string } }> }>;
  }>;
}

function valueOf(v: JsonValue | undefined): string | number | boolean {
  if (!v) return '';
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  return '';
}

const attrs = (kvs: JsonKv[] | undefined) => Object.fromEntries((kvs ?? []).map((kv) => [kv.key, valueOf(kv.value)]));

/** Both encodings normalised to the OTLP/JSON shape (ids as hex). */
function decode(e: ReceivedExport): JsonRequest {
  if (e.contentType.startsWith('application/json')) return JSON.parse(e.body.toString('utf8')) as JsonRequest;
  const hex = (b: Uint8Array | undefined) => Buffer.from(b ?? []).toString('hex');
  const msg = ExportRequest.toObject(ExportRequest.decode(e.body), { longs: Number, defaults: false }) as {
    resourceSpans?: Array<{ resource?: { attributes?: JsonKv[] }; scopeSpans?: Array<{ spans?: Array<Record<string, unknown>> }> }>;
  };
  return {
    resourceSpans: (msg.resourceSpans ?? []).map((rs) => ({
      resource: rs.resource ?? {},
      scopeSpans: (rs.scopeSpans ?? []).map((ss) => ({
        spans: (ss.spans ?? []).map((s) => ({
          traceId: hex(s.traceId as Uint8Array),
          spanId: hex(s.spanId as Uint8Array),
          parentSpanId: hex(s.parentSpanId as Uint8Array | undefined),
          name: String(s.name),
          kind: Number(s.kind ?? 0),
          attributes: (s.attributes as JsonKv[] | undefined) ?? [],
          status: (s.status as { code?: number; message?: string } | undefined) ?? {},
        })),
      })),
    })),
  };
}

/**
 * An OTLP/HTTP trace receiver on 127.0.0.1:0, as a collector would be: accepts POST /v1/traces in
 * http/protobuf or http/json, answers 200 with an empty ExportTraceServiceResponse, keeps every body
 * (or, with `refuseWith`, answers every export with that status and keeps nothing).
 */
export async function startOtlpReceiver(opts: { refuseWith?: number } = {}): Promise<OtlpReceiver> {
  const exports: ReceivedExport[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      const contentType = String(req.headers['content-type'] ?? '');
      if (opts.refuseWith !== undefined) {
        res.writeHead(opts.refuseWith).end();
        return;
      }
      exports.push({ path: req.url, contentType, body: Buffer.concat(chunks) });
      if (contentType.startsWith('application/json')) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(Buffer.alloc(0));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    exports,
    spans() {
      return exports.flatMap((e) =>
        (decode(e).resourceSpans ?? []).flatMap((rs) => {
          const resource = attrs(rs.resource?.attributes);
          const service = String(resource['service.name'] ?? '');
          const instance = String(resource['service.instance.id'] ?? '');
          return (rs.scopeSpans ?? []).flatMap((ss) =>
            (ss.spans ?? []).map((s) => ({
              traceId: s.traceId,
              spanId: s.spanId,
              parentSpanId: s.parentSpanId ?? '',
              name: s.name,
              kind: s.kind,
              attributes: attrs(s.attributes),
              status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
              service,
              instance,
            })),
          );
        }),
      );
    },
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
