import { createRequire } from 'node:module';
import { credentials, loadPackageDefinition, type Client } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';

const require = createRequire(import.meta.url);

/** A client of grpc.health.v1.Health: check(service) resolves to the status name. */
export function healthClient(port: number) {
  const def = loadPackageDefinition(loadSync(healthProtoPath, { keepCase: true, enums: String })) as never as {
    grpc: { health: { v1: { Health: new (addr: string, creds: unknown) => Client & { check: Function } } } };
  };
  const client = new def.grpc.health.v1.Health(`127.0.0.1:${port}`, credentials.createInsecure());
  return {
    check: (service = '') =>
      new Promise<string>((resolve, reject) =>
        client.check({ service }, (err: Error | null, res: { status: string }) => (err ? reject(err) : resolve(res.status))),
      ),
    close: () => client.close(),
  };
}

/** Ask the server's reflection service (v1) which services it serves, as grpcurl list does. */
export async function listServicesByReflection(port: number): Promise<string[]> {
  const protoFile = require.resolve('@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto');
  const def = loadPackageDefinition(loadSync(protoFile, { keepCase: true })) as never as {
    grpc: { reflection: { v1: { ServerReflection: new (addr: string, creds: unknown) => Client & { ServerReflectionInfo: Function } } } };
  };
  const client = new def.grpc.reflection.v1.ServerReflection(`127.0.0.1:${port}`, credentials.createInsecure());
  try {
    return await new Promise<string[]>((resolve, reject) => {
      const stream = client.ServerReflectionInfo();
      stream.on('data', (res: { list_services_response?: { service: Array<{ name: string }> }; error_response?: { error_message: string } }) => {
        if (res.error_response) reject(new Error(res.error_response.error_message));
        else resolve((res.list_services_response?.service ?? []).map((s) => s.name));
        stream.end();
      });
      stream.on('error', reject);
      stream.write({ list_services: '' });
    });
  } finally {
    client.close();
  }
}

/** Ask reflection for the file that defines a symbol; resolves to the number of descriptors returned. */
export async function describeSymbolByReflection(port: number, symbol: string): Promise<number> {
  const protoFile = require.resolve('@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto');
  const def = loadPackageDefinition(loadSync(protoFile, { keepCase: true })) as never as {
    grpc: { reflection: { v1: { ServerReflection: new (addr: string, creds: unknown) => Client & { ServerReflectionInfo: Function } } } };
  };
  const client = new def.grpc.reflection.v1.ServerReflection(`127.0.0.1:${port}`, credentials.createInsecure());
  try {
    return await new Promise<number>((resolve, reject) => {
      const stream = client.ServerReflectionInfo();
      stream.on('data', (res: { file_descriptor_response?: { file_descriptor_proto: Buffer[] }; error_response?: { error_message: string } }) => {
        if (res.error_response) reject(new Error(res.error_response.error_message));
        else resolve(res.file_descriptor_response?.file_descriptor_proto.length ?? 0);
        stream.end();
      });
      stream.on('error', reject);
      stream.write({ file_containing_symbol: symbol });
    });
  } finally {
    client.close();
  }
}
