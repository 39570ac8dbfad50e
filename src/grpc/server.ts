import { fileURLToPath } from 'node:url';
import { Server, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import type { ListenAddress } from '../config/config.js';
import type { Logger } from '../shared/logger.js';
import { withTolerantDecoding } from './unary.js';

/** The repository's proto/ folder (shipped with the package), for server reflection. */
export const PROTO_ROOT = fileURLToPath(new URL('../../../proto/', import.meta.url));

export interface GrpcServiceRegistration {
  /** Fully qualified service name, e.g. tokenauthority.v1.TokenAuthorityService. */
  name: string;
  /** Every method implemented with `unary` (an undecodable request reaches it as INVALID_ARGUMENT). */
  definition: ServiceDefinition;
  implementation: UntypedServiceImplementation;
}

export interface GrpcServerOptions {
  address: ListenAddress;
  credentials: ServerCredentials;
  services: GrpcServiceRegistration[];
  /** .proto files (relative to PROTO_ROOT) that describe the services, for reflection. */
  protoFiles: string[];
  logger: Logger;
  maxReceiveMessageBytes?: number;
  /** grpc-js channel options (keepalive etc.). */
  channelOptions?: Record<string, number | string>;
}

/**
 * A grpc-js server with the standard health service and server reflection, so grpcurl and ghz work
 * without the .proto files.
 */
export class GrpcServer {
  private readonly server: Server;
  private readonly health: HealthImplementation;
  private boundPort = 0;

  constructor(private readonly opts: GrpcServerOptions) {
    this.server = new Server({
      'grpc.max_receive_message_length': opts.maxReceiveMessageBytes ?? 4 * 1024 * 1024,
      // No channelz service is served, so its per-call bookkeeping would be pure cost.
      'grpc.enable_channelz': 0,
      ...opts.channelOptions,
    });
    const statuses: Record<string, 'SERVING' | 'NOT_SERVING'> = { '': 'NOT_SERVING' };
    for (const s of opts.services) {
      this.server.addService(withTolerantDecoding(s.definition), s.implementation);
      statuses[s.name] = 'NOT_SERVING';
    }
    this.health = new HealthImplementation(statuses);
    this.health.addToServer(this.server);
    const pkg = loadSync([...opts.protoFiles, healthProtoPath], {
      includeDirs: [PROTO_ROOT],
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    new ReflectionService(pkg).addToServer(this.server);
  }

  /** Bind and start serving; resolves to the bound port (useful with port 0). */
  async start(): Promise<number> {
    const { host, port } = this.opts.address;
    const target = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    this.boundPort = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(target, this.opts.credentials, (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.setServing(true);
    return this.boundPort;
  }

  get port(): number {
    return this.boundPort;
  }

  setServing(serving: boolean): void {
    const s = serving ? 'SERVING' : 'NOT_SERVING';
    this.health.setStatus('', s);
    for (const svc of this.opts.services) this.health.setStatus(svc.name, s);
  }

  /**
   * Stop accepting calls, let in-flight calls finish, and force-close whatever is left after
   * `graceMs`.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.setServing(false);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.opts.logger.warn({ graceMs }, 'shutdown grace period over: cancelling calls still in flight');
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

export { ServerCredentials };
