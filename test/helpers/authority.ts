import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type Config } from '../../src/config/config.js';
import { startAuthority, type AuthorityOverrides, type RunningAuthority } from '../../src/authority/authority-server.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { silentLogger, type Logger } from '../../src/shared/logger.js';
import { authorityClient, type AuthorityClient } from './grpc-client.js';

export const TEST_ISSUER = 'https://issuer.test';

export interface TestAuthority {
  running: RunningAuthority;
  config: Readonly<Config>;
  client: AuthorityClient;
  keyDir: string;
  httpBase: string;
  /** Stop the server (keeping the key directory). */
  stop(): Promise<void>;
  /** Stop and remove the key directory. */
  close(): Promise<void>;
}

/**
 * A real authority on 127.0.0.1:0 (gRPC and HTTP) with a real client. Env entries override the test
 * defaults; pass TA_KEY_DIR to reuse a key directory across restarts.
 */
export async function startTestAuthority(env: Record<string, string> = {}, overrides: AuthorityOverrides = {}, logger: Logger = silentLogger): Promise<TestAuthority> {
  const keyDir = env.TA_KEY_DIR ?? (await mkdtemp(join(tmpdir(), 'ta-keys-')));
  const config = loadConfig('authority', {
    env: {
      TA_GRPC_ADDR: '127.0.0.1:0',
      TA_HTTP_ADDR: '127.0.0.1:0',
      TA_ISSUER: TEST_ISSUER,
      TA_LOG_LEVEL: 'silent',
      TA_HEARTBEAT_INTERVAL: '200ms',
      TA_SHUTDOWN_GRACE: '2s',
      ...env,
      TA_KEY_DIR: keyDir,
    },
  });
  const running = await startAuthority(config, logger, { metrics: createMetrics({ defaultMetrics: false }), ...overrides });
  const client = authorityClient(running.grpcPort);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    client.close();
    await running.stop();
  };
  return {
    running,
    config,
    client,
    keyDir,
    httpBase: `http://127.0.0.1:${running.httpPort}`,
    stop,
    async close() {
      await stop();
      if (!env.TA_KEY_DIR) await rm(keyDir, { recursive: true, force: true });
    },
  };
}
