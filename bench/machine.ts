/** What every result records about where it was measured. */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, release, totalmem, type as osType } from 'node:os';
import { canPin, findOnPath } from './processes.js';

export interface Machine {
  date: string;
  cpuModel: string;
  cores: number;
  nodeVersion: string;
  v8Version: string;
  os: string;
  memoryGiB: number;
  /** 1-minute load average when the run started: other work on a shared machine. */
  loadAverageAtStart: number;
  h2load?: string;
  redisServer?: string;
  /** Whether taskset pinning was available. */
  pinning: boolean;
}

function versionOf(bin: string, args: string[], pattern: RegExp): string | undefined {
  if (!findOnPath(bin)) return undefined;
  try {
    const out = execFileSync(bin, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return pattern.exec(out)?.[1] ?? out.trim().split('\n')[0];
  } catch {
    return undefined;
  }
}

export function describeMachine(now = new Date()): Machine {
  const list = cpus();
  const h2load = versionOf('h2load', ['--version'], /nghttp2\/(\S+)/);
  const redisServer = versionOf('redis-server', ['--version'], /v=(\S+)/);
  return {
    date: now.toISOString(),
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    nodeVersion: process.version,
    v8Version: process.versions.v8,
    os: `${osType()} ${release()}`,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    loadAverageAtStart: Math.round((loadavg()[0] ?? 0) * 100) / 100,
    ...(h2load ? { h2load } : {}),
    ...(redisServer ? { redisServer } : {}),
    pinning: canPin(),
  };
}
