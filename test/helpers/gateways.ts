import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findOnPath, freePort } from './local-ports.js';

/**
 * Real gateways in front of the sidecar's forward-auth endpoint, started on free loopback ports:
 * nginx (`auth_request`) and Caddy (`forward_auth`), each proxying to an upstream that echoes the
 * request headers it received. Missing binaries are an error naming the package, never a skip.
 */

export interface Upstream {
  readonly port: number;
  /** Headers of every request that reached the upstream, in order. */
  readonly seen: IncomingHttpHeaders[];
  stop(): Promise<void>;
}

/** An upstream service that answers 200 with the request headers it received as JSON. */
export async function startEchoUpstream(): Promise<Upstream> {
  const seen: IncomingHttpHeaders[] = [];
  const server: Server = createServer((req, res) => {
    seen.push(req.headers);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(req.headers));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface Gateway {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  stop(): Promise<void>;
}

export interface GatewayOptions {
  sidecarHttpPort: number;
  upstreamPort: number;
  /** Query string passed to /authz, e.g. `audience=orders&required_scopes=read`. */
  query: string;
  /** Claim headers handed to the upstream. */
  claimHeaders: readonly string[];
  /**
   * nginx only: listen with TLS (files), asking for a client certificate signed by `clientCa`
   * (`ssl_verify_client optional`, so requests without one still reach auth_request).
   */
  tls?: { cert: string; key: string; clientCa: string };
  /** nginx only: more `proxy_set_header` lines for the /authz subrequest (name → nginx value). */
  authzHeaders?: Readonly<Record<string, string>>;
}

function binary(name: string, pkg: string): string {
  const found = findOnPath(name) ?? ['/usr/sbin', '/usr/bin', '/usr/local/bin'].map((d) => join(d, name)).find((p) => existsSync(p));
  if (!found) throw new Error(`${name} is not installed: the forward-auth tests drive a real ${name}. Install it with \`apt-get install -y ${pkg}\` (.ci/run does).`);
  return found;
}

async function waitForPort(port: number, child: ChildProcess, output: () => string, timeoutMs = 10_000, scheme: 'http' | 'https' = 'http'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode}:\n${output()}`);
    const up = scheme === 'http'
      ? await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(500) }).then(() => true, () => false)
      : await new Promise<boolean>((resolve) => {
          const s = connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
          s.on('error', () => resolve(false));
        });
    if (up) return;
    if (Date.now() > deadline) throw new Error(`gateway did not listen on ${port} within ${timeoutMs} ms:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function launch(bin: string, args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; output: () => string } {
  const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  return { child, output: () => text.slice(-4000) };
}

async function stopChild(child: ChildProcess, dir: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  await rm(dir, { recursive: true, force: true });
}

/** nginx with `auth_request` to the sidecar, handing the claim headers to the upstream with `auth_request_set`. */
export async function startNginx(opts: GatewayOptions): Promise<Gateway> {
  const bin = binary('nginx', 'nginx');
  const dir = await mkdtemp(join(tmpdir(), 'ta-nginx-'));
  const port = await freePort();
  const vars = opts.claimHeaders.map((h) => ({ header: h, variable: `auth_${h.replace(/-/g, '_')}`, upstreamVar: `$upstream_http_${h.replace(/-/g, '_')}` }));
  const conf = `
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port}${opts.tls ? ' ssl' : ''};
${opts.tls ? `    ssl_certificate ${opts.tls.cert};
    ssl_certificate_key ${opts.tls.key};
    ssl_client_certificate ${opts.tls.clientCa};
    ssl_verify_client optional;
` : ''}    location / {
      auth_request /_authz;
${vars.map((v) => `      auth_request_set $${v.variable} ${v.upstreamVar};\n      proxy_set_header ${v.header} $${v.variable};`).join('\n')}
      proxy_pass http://127.0.0.1:${opts.upstreamPort};
    }
    location = /_authz {
      internal;
      proxy_pass http://127.0.0.1:${opts.sidecarHttpPort}/authz?${opts.query};
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Forwarded-Method $request_method;
${Object.entries(opts.authzHeaders ?? {}).map(([h, v]) => `      proxy_set_header ${h} ${v};`).join('\n')}
    }
  }
}
`;
  await writeFile(join(dir, 'nginx.conf'), conf);
  const { child, output } = launch(bin, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], process.env);
  await waitForPort(port, child, output, 10_000, opts.tls ? 'https' : 'http');
  return { name: 'nginx', port, url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`, stop: () => stopChild(child, dir) };
}

/** Caddy with `forward_auth` to the sidecar and `copy_headers` for the claim headers. */
export async function startCaddy(opts: GatewayOptions): Promise<Gateway> {
  const bin = binary('caddy', 'caddy');
  const dir = await mkdtemp(join(tmpdir(), 'ta-caddy-'));
  await mkdir(join(dir, 'data'));
  await mkdir(join(dir, 'config'));
  const port = await freePort();
  const caddyfile = `{
	admin off
	auto_https off
}

http://127.0.0.1:${port} {
	forward_auth 127.0.0.1:${opts.sidecarHttpPort} {
		uri /authz?${opts.query}
		copy_headers ${opts.claimHeaders.join(' ')}
	}
	reverse_proxy 127.0.0.1:${opts.upstreamPort}
}
`;
  await writeFile(join(dir, 'Caddyfile'), caddyfile);
  const env = { ...process.env, HOME: dir, XDG_DATA_HOME: join(dir, 'data'), XDG_CONFIG_HOME: join(dir, 'config') };
  const { child, output } = launch(bin, ['run', '--config', join(dir, 'Caddyfile'), '--adapter', 'caddyfile'], env);
  await waitForPort(port, child, output);
  return { name: 'caddy', port, url: `http://127.0.0.1:${port}`, stop: () => stopChild(child, dir) };
}
