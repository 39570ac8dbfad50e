/**
 * The baseline of every RPC figure: a bare grpc-js unary echo server, in its own process.
 *
 *   node dist/bench/echo-server.js [--port 0]
 *
 * No reflection, no health service, no interceptors, no protobuf work: the handler answers with
 * the request's own bytes (identity serializers), so it measures what grpc-js itself costs per call
 * on one core — the ceiling for any grpc-js service. Prints `{"port":N}` on stdout once bound.
 */
import { Server, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';

/** The echo method's path; h2load posts to it. */
export const ECHO_PATH = '/bench.v1.EchoService/Echo';

const identity = (b: Buffer): Buffer => b;

const definition: ServiceDefinition = {
  echo: {
    path: ECHO_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

function main(): void {
  const i = process.argv.indexOf('--port');
  const port = i >= 0 ? Number(process.argv[i + 1]) : 0;
  const server = new Server();
  server.addService(definition, {
    echo: (call: { request: Buffer }, callback: (err: null, res: Buffer) => void) => callback(null, call.request),
  });
  server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err, bound) => {
    if (err) {
      process.stderr.write(`echo-server: ${err.message}\n`);
      process.exit(1);
    }
    process.stdout.write(`${JSON.stringify({ port: bound })}\n`);
  });
  const stop = () => server.tryShutdown(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
