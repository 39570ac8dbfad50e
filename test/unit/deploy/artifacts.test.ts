import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OPTIONS } from '../../../src/config/options.js';
import { loadConfig, type AuthorityConfig, type ConfigScope, type SidecarConfig } from '../../../src/config/config.js';
import { parseRedisUrl } from '../../../src/store/redis-connection.js';
import { parseClientPolicy } from '../../../src/authority/file-policy.js';
import { FORWARD_AUTH_PATH } from '../../../src/sidecar/forward-auth.js';
import { findOnPath } from '../../helpers/local-ports.js';
import {
  COMPOSE_ENV_FILES,
  compose,
  composeWorkloads,
  dockerHealthcheck,
  dockerfile,
  execForm,
  imageEnv,
  kubernetesDocs,
  kubernetesWorkloads,
  parseYaml,
  read,
  REPO,
  yamlFiles,
  type Workload,
} from '../../helpers/deploy-artifacts.js';

/**
 * No container engine runs here, so deploy/ is made honest another way: every YAML parses, every
 * TA_* variable exists in src/config/options.ts with a valid value for the command that reads it,
 * ports and probes match the code's listen addresses, and the Dockerfile's steps are the README's.
 */

const byEnv = new Map(OPTIONS.map((o) => [o.env, o]));
/** Stand-ins for values that come from a Secret, a fieldRef or an env_file (none is committed). */
const SAMPLE_EXTERNAL: Record<string, string> = {
  TA_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
  TA_INSTANCE_ID: 'orders-7d9f8c6b5-x2x7q',
};

const workloads = (): Workload[] => [...composeWorkloads(), ...kubernetesWorkloads()];
const ours = () => workloads().filter((w) => w.role === 'authority' || w.role === 'sidecar' || w.role === 'example');

/** The environment a workload's process sees: the image's ENV, then its own. */
function fullEnv(w: Workload): Record<string, string> {
  const env: Record<string, string> = { ...imageEnv(), ...w.env };
  for (const name of Object.keys(w.external)) {
    if (!name.startsWith('TA_')) continue;
    const sample = SAMPLE_EXTERNAL[name];
    if (sample === undefined) throw new Error(`${w.file} ${w.where}: ${name} comes from ${w.external[name]}; add a sample value for it to SAMPLE_EXTERNAL in this test`);
    env[name] = sample;
  }
  return env;
}

function configOf(w: Workload) {
  return loadConfig(w.role as ConfigScope, { env: fullEnv(w) });
}

const portOf = (addr: string) => Number(addr.split(':').pop());

describe('deploy/ artifacts', () => {
  it('every YAML file parses', () => {
    const files = yamlFiles();
    assert.ok(files.includes('deploy/compose.yaml'), 'deploy/compose.yaml exists');
    assert.ok(files.some((f) => f.startsWith('deploy/kubernetes/')), 'deploy/kubernetes/ has manifests');
    for (const f of files) assert.ok(parseYaml(f).length > 0, `${f} has at least one document`);
  });

  it('every TA_* variable exists in the options table, is read by the command that gets it, and has a valid value', () => {
    const problems: string[] = [];
    const all = [...ours(), { file: 'deploy/Dockerfile', where: 'runtime ENV', role: 'other' as const, env: imageEnv(), external: {}, ports: [], probes: [] }];
    for (const w of all) {
      const vars = { ...w.env, ...Object.fromEntries(Object.keys(w.external).map((k) => [k, SAMPLE_EXTERNAL[k] ?? ''])) };
      for (const [name, value] of Object.entries(vars)) {
        if (!name.startsWith('TA_')) continue;
        const opt = byEnv.get(name);
        if (!opt) {
          problems.push(`${w.file} ${w.where}: sets ${name}, which is not an option in src/config/options.ts`);
          continue;
        }
        if ((w.role === 'authority' || w.role === 'sidecar') && opt.scope !== 'common' && opt.scope !== w.role) {
          problems.push(`${w.file} ${w.where}: sets ${name}, an ${opt.scope}-only setting that \`token-authority ${w.role === 'authority' ? 'serve' : 'sidecar'}\` never reads`);
        }
        if (w.external[name] !== undefined) continue; // checked below through loadConfig with a sample
        const parsed = opt.schema.safeParse(value);
        if (!parsed.success) problems.push(`${w.file} ${w.where}: ${name}="${value}" is invalid: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
      }
    }
    assert.deepEqual(problems, [], 'deploy/ sets variables the code does not accept');
  });

  it('each authority and sidecar configuration passes the start-up checks (loadConfig), secrets standing in as samples', () => {
    const problems: string[] = [];
    for (const w of ours().filter((x) => x.role !== 'example')) {
      try {
        configOf(w);
      } catch (err) {
        problems.push(`${w.file} ${w.where}: ${(err as Error).message}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it('ports: declared ports are the listen ports of TA_GRPC_ADDR/TA_HTTP_ADDR (options defaults otherwise), and the image EXPOSEs the defaults', () => {
    const grpc = byEnv.get('TA_GRPC_ADDR')!;
    const http = byEnv.get('TA_HTTP_ADDR')!;
    const defaults = [grpc.default, http.default, grpc.sidecarDefault, http.sidecarDefault].map((a) => portOf(a!));
    const exposed = dockerfile().filter((d) => d.op === 'EXPOSE').flatMap((d) => d.args.split(/\s+/).map(Number));
    assert.deepEqual([...exposed].sort(), [...defaults].sort(), 'deploy/Dockerfile EXPOSE lists the default gRPC and HTTP ports of serve and sidecar');

    const problems: string[] = [];
    for (const w of [...kubernetesWorkloads()].filter((x) => x.role === 'authority' || x.role === 'sidecar')) {
      const c = configOf(w);
      const listening = [c.httpAddr.port, ...(['127.0.0.1', '::1', 'localhost'].includes(c.grpcAddr.host) ? [] : [c.grpcAddr.port])];
      for (const p of w.ports) if (![c.grpcAddr.port, c.httpAddr.port].includes(p)) problems.push(`${w.file} ${w.where}: containerPort ${p} is neither TA_GRPC_ADDR (${c.grpcAddr.port}) nor TA_HTTP_ADDR (${c.httpAddr.port})`);
      for (const p of listening) if (!w.ports.includes(p)) problems.push(`${w.file} ${w.where}: listens on ${p} (non-loopback) but declares no containerPort for it`);
      for (const pr of w.probes) if (pr.port !== c.httpAddr.port) problems.push(`${w.file} ${w.where}: ${pr.kind} ${pr.path} targets port ${pr.port}, but the HTTP server listens on ${c.httpAddr.port}`);
    }
    // compose: what a service publishes must be a port something in its network namespace listens on.
    const services = composeWorkloads();
    const nginxListen = Number(/listen\s+(\d+)/.exec(read('deploy/nginx/nginx.conf'))?.[1]);
    for (const w of services.filter((x) => x.role === 'authority' || x.role === 'sidecar')) {
      const c = configOf(w);
      const inNamespace = [c.grpcAddr.port, c.httpAddr.port, ...(w.where === 'service "sidecar"' ? [nginxListen] : [])];
      for (const p of w.ports) if (!inNamespace.includes(p)) problems.push(`deploy/compose.yaml ${w.where}: publishes container port ${p}, which nothing listens on (${inNamespace.join(', ')})`);
    }
    // Kubernetes Services: each targetPort names or numbers a port of a selected container.
    const deployments = kubernetesDocs().filter((d) => d.doc.kind === 'Deployment');
    for (const { file, doc } of kubernetesDocs().filter((d) => d.doc.kind === 'Service')) {
      const spec = doc.spec as { selector: Record<string, string>; ports: Array<{ port: number; targetPort: string | number }> };
      const target = deployments.find((d) => JSON.stringify((d.doc.spec as { selector: { matchLabels: unknown } }).selector.matchLabels) === JSON.stringify(spec.selector));
      if (!target) {
        problems.push(`${file} Service: its selector ${JSON.stringify(spec.selector)} matches no Deployment's labels`);
        continue;
      }
      const containers = (target.doc.spec as { template: { spec: { containers: Array<{ ports?: Array<{ name?: string; containerPort: number }> }> } } }).template.spec.containers;
      const ports = containers.flatMap((c) => c.ports ?? []);
      for (const p of spec.ports) {
        const hit = ports.find((cp) => cp.name === p.targetPort || cp.containerPort === p.targetPort);
        if (!hit) problems.push(`${file} Service port ${p.port}: targetPort ${p.targetPort} is no container port`);
        else if (hit.containerPort !== p.port) problems.push(`${file} Service port ${p.port} forwards to ${hit.containerPort}: keep the code's port numbers`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it('the Dockerfile installs and starts as the README says: npm ci, npm run build, npm ci --omit=dev, node dist/src/cli.js serve', () => {
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    // `npm start` is "<build> && <start>": the README's quick start runs exactly that.
    const [build, start] = pkg.scripts.start!.split('&&').map((s) => s.trim().replace(/ --silent$/, '').replace(/--silent /, ''));
    assert.equal(build, 'npm run build', 'package.json "start" begins with the build');
    assert.equal(start, 'node dist/src/cli.js serve');
    const readme = read('README.md');
    assert.match(readme, /npm ci && npm start/, 'README quick start: npm ci && npm start');

    const steps = dockerfile();
    const froms = steps.filter((s) => s.op === 'FROM').map((s) => s.args);
    assert.deepEqual(froms, ['node:20-bookworm-slim AS build', 'node:20-bookworm-slim AS runtime'], 'two stages on Node 20 slim');
    const runs = (stage: string) => steps.filter((s) => s.stage === stage && s.op === 'RUN').map((s) => s.args);
    assert.ok(runs('build').some((r) => /^npm ci\b(?!.*--omit)/.test(r)), 'build stage: npm ci (all dependencies)');
    assert.ok(runs('build').includes(build!), `build stage: ${build}`);
    assert.ok(runs('runtime').some((r) => /^npm ci --omit=dev\b/.test(r)), 'runtime stage: npm ci --omit=dev');
    const entry = execForm(steps.find((s) => s.stage === 'runtime' && s.op === 'ENTRYPOINT')!.args);
    const cmd = execForm(steps.find((s) => s.stage === 'runtime' && s.op === 'CMD')!.args);
    assert.equal([...entry, ...cmd].join(' '), start, 'ENTRYPOINT + CMD are the README start command');
    // The runtime image: non-root, the key directory on a volume, proto/ where the server loads it.
    const user = steps.filter((s) => s.stage === 'runtime' && s.op === 'USER').pop()?.args ?? '';
    assert.match(user, /^[1-9]\d*(:\d+)?$/, 'USER is a numeric non-root uid (Kubernetes runAsNonRoot can check it)');
    const keyDir = imageEnv().TA_KEY_DIR!;
    const volumes = steps.filter((s) => s.op === 'VOLUME').flatMap((s) => execForm(s.args));
    assert.ok(volumes.some((v) => keyDir.startsWith(v)), `TA_KEY_DIR (${keyDir}) is on a VOLUME (${volumes.join(', ')})`);
    assert.ok(steps.some((s) => s.stage === 'runtime' && s.op === 'COPY' && /^proto \.\/proto$/.test(s.args)), 'runtime copies proto/ beside dist/ (PROTO_ROOT)');
    // Every file the image starts exists after the build.
    for (const script of [entry[1]!, 'dist/examples/orders-service.js']) assert.ok(existsSync(join(REPO, script)), `${script} is built by npm run build`);

    const hc = dockerHealthcheck();
    assert.ok(hc, 'HEALTHCHECK CMD in exec form');
    assert.match(hc.script, /\/healthz/);
    assert.ok(hc.script.includes(byEnv.get('TA_HTTP_ADDR')!.default!), 'HEALTHCHECK falls back to the default TA_HTTP_ADDR');
    assert.ok(!/curl|wget/.test(hc.script), 'bookworm-slim has neither curl nor wget');
  });

  it('docs/deploy.md has a Deploy section that names what was not run here', () => {
    const readme = read('docs/deploy.md');
    const m = /\n## Deploy\n([\s\S]*?)(?=\n## |$)/.exec(readme);
    assert.ok(m, 'docs/deploy.md has a "## Deploy" section');
    assert.match(m[1]!, /no container engine/i);
    for (const f of ['deploy/Dockerfile', 'deploy/compose.yaml', 'deploy/kubernetes/', 'deploy/grafana/', 'deploy/prometheus/']) assert.ok(m[1]!.includes(f), `the Deploy section points at ${f}`);
  });

  it('compose: two authority replicas on Redis Sentinel sharing keys, a sidecar, the example, nginx forward-auth to /authz', () => {
    const c = compose();
    const services = c.services as Record<string, Record<string, unknown>>;
    const w = composeWorkloads();
    const authority = w.find((x) => x.role === 'authority')!;
    assert.equal((services.authority!.deploy as { replicas: number }).replicas, 2, 'two authority replicas');
    const cfg = configOf(authority) as AuthorityConfig;
    assert.equal(cfg.keyStore, 'redis', 'replicas share their keys: TA_KEY_STORE=redis');
    // Secrets come from git-ignored env files only.
    const ignore = read('deploy/secrets/.gitignore');
    assert.match(ignore, /^\*$/m, 'deploy/secrets/ is git-ignored');
    for (const f of (services.authority!.env_file as string[])) {
      assert.ok(f.startsWith('secrets/'), `${f} lives in deploy/secrets/`);
      assert.ok(COMPOSE_ENV_FILES[f], `${f}: list its variables in COMPOSE_ENV_FILES`);
      for (const v of COMPOSE_ENV_FILES[f]!) assert.ok(read('deploy/compose.yaml').includes(`${v}=`), `compose.yaml says how to create ${f} with ${v}`);
    }
    // Sentinel: the URL's sentinels are services running redis-sentinel, and its master name is monitored.
    for (const x of w.filter((y) => y.env.TA_REDIS_URL !== undefined)) {
      const spec = parseRedisUrl(x.env.TA_REDIS_URL!);
      assert.equal(spec.topology, 'sentinel', `${x.where}: TA_REDIS_URL is redis-sentinel://`);
      for (const h of spec.nodes) {
        const s = services[h.host];
        assert.ok(s, `${x.where}: sentinel host ${h.host} is a compose service`);
        const cmd = JSON.stringify(s.command);
        assert.ok(cmd.includes('redis-sentinel') && cmd.includes(`port ${h.port}`), `${h.host} runs redis-sentinel on ${h.port}`);
        assert.ok(cmd.includes(`sentinel monitor ${spec.sentinelName} `), `${h.host} monitors master "${spec.sentinelName}"`);
      }
      assert.equal(spec.nodes.length, 3, 'three Sentinels');
    }
    assert.ok(JSON.stringify(services['redis-replica']!.command).includes('--replicaof'), 'a Redis replica');
    // The application pod: sidecar, example and nginx in one network namespace.
    for (const name of ['orders', 'nginx']) assert.equal(services[name]!.network_mode, 'service:sidecar', `${name} shares the sidecar's network namespace`);
    const sidecar = configOf(w.find((x) => x.role === 'sidecar')!) as SidecarConfig;
    const orders = w.find((x) => x.role === 'example')!;
    const nginx = read('deploy/nginx/nginx.conf');
    const authUrl = /location = \/_authz \{[\s\S]*?proxy_pass (\S+);/.exec(nginx)?.[1];
    assert.ok(authUrl, 'nginx.conf: location = /_authz proxies somewhere');
    const u = new URL(authUrl);
    assert.equal(Number(u.port), sidecar.httpAddr.port, 'nginx asks the sidecar\'s HTTP port');
    assert.equal(u.pathname, FORWARD_AUTH_PATH, `nginx asks ${FORWARD_AUTH_PATH}`);
    assert.equal(u.searchParams.get('audience'), sidecar.audience, 'the route\'s audience is the sidecar\'s');
    assert.match(nginx, new RegExp(`grpc_pass grpc://127\\.0\\.0\\.1:${orders.env.PORT};`), 'nginx forwards to the orders service\'s PORT');
    // The documented nginx snippet, line for line, in the auth location.
    const readme = read('docs/sidecar-and-gateways.md');
    const snippet = /location = \/_authz \{\n([\s\S]*?)\n\}/.exec(readme)![1]!.split('\n').map((l) => l.trim());
    for (const line of snippet) assert.ok(nginx.includes(line), `nginx.conf has the README snippet's line: ${line}`);
    for (const name of ['TA_ISSUER', 'TA_AUTHORITY_URL', 'TA_REDIS_URL']) {
      assert.equal(orders.env[name], name === 'TA_AUTHORITY_URL' ? sidecar.authorityUrl : name === 'TA_ISSUER' ? sidecar.issuer : sidecar.redisUrl, `orders and sidecar agree on ${name}`);
    }
    assert.equal(sidecar.issuer, cfg.issuer, 'sidecar TA_ISSUER is the authority\'s');
    assert.equal(new URL(sidecar.authorityUrl!).hostname, 'authority', 'the sidecar fetches the JWKS from the authority service');
    assert.equal(Number(new URL(sidecar.authorityUrl!).port), cfg.httpAddr.port, 'on the authority\'s HTTP port');
  });

  it('nginx.conf is valid for the real nginx (nginx -t)', () => {
    const bin = findOnPath('nginx') ?? (existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : undefined);
    assert.ok(bin, 'nginx is not installed: `apt-get install -y nginx` (.ci/run installs it)');
    const dir = mkdtempSync(join(tmpdir(), 'ta-nginx-t-'));
    // A file, not a pipe, as stdout/stderr: the config logs to /dev/stdout and /dev/stderr, which
    // cannot be opened when they are sockets.
    const out = join(dir, 'out.log');
    const fd = openSync(out, 'w');
    try {
      execFileSync(bin, ['-t', '-q', '-p', dir, '-c', join(REPO, 'deploy/nginx/nginx.conf'), '-e', join(dir, 'error.log')], { stdio: ['ignore', fd, fd] });
    } catch (err) {
      assert.fail(`nginx -t rejects deploy/nginx/nginx.conf:\n${readFileSync(out, 'utf8') || String(err)}`);
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('Kubernetes: authority Deployment + Service + PDB, sidecar beside the app, KEK Secret, policy ConfigMap, hardened pods with requests', () => {
    const docs = kubernetesDocs();
    const kinds = (k: string) => docs.filter((d) => d.doc.kind === k);
    const authority = kubernetesWorkloads().find((w) => w.role === 'authority')!;
    assert.ok(authority, 'a container runs `serve`');
    const deployment = kinds('Deployment').find((d) => JSON.stringify(d.doc).includes('"serve"'))!;
    const spec = deployment.doc.spec as { replicas: number; selector: { matchLabels: Record<string, string> }; template: { spec: Record<string, unknown> } };
    assert.ok(spec.replicas >= 2, 'at least two authority replicas');
    const pdb = kinds('PodDisruptionBudget')[0]?.doc.spec as { minAvailable?: number; selector: { matchLabels: unknown } } | undefined;
    assert.ok(pdb, 'a PodDisruptionBudget');
    assert.deepEqual(pdb.selector.matchLabels, spec.selector.matchLabels, 'the PDB selects the authority pods');
    assert.ok((pdb.minAvailable ?? 0) >= 1 && (pdb.minAvailable ?? 0) < spec.replicas, 'the PDB keeps one replica and lets a drain proceed');
    const kinds2 = authority.probes.map((p) => p.kind);
    assert.ok(kinds2.includes('readinessProbe') && kinds2.includes('livenessProbe'), 'authority readiness and liveness probes');
    assert.equal(authority.probes.find((p) => p.kind === 'readinessProbe')!.path, '/healthz');

    const app = kinds('Deployment').find((d) => d !== deployment)!;
    const roles = kubernetesWorkloads().filter((w) => w.file === app.file).map((w) => w.role);
    assert.ok(roles.includes('sidecar') && roles.includes('example'), 'the sidecar is a second container of the application pod');

    // KEK from a Secret, no real key committed.
    const kek = authority.external.TA_KEY_ENCRYPTION_KEY;
    assert.ok(kek?.includes('secretKeyRef'), 'TA_KEY_ENCRYPTION_KEY comes from a Secret');
    const ref = (JSON.parse(kek!) as { secretKeyRef: { name: string; key: string } }).secretKeyRef;
    const secret = kinds('Secret').find((d) => (d.doc.metadata as { name: string }).name === ref.name);
    assert.ok(secret, `Secret ${ref.name} is in deploy/kubernetes/`);
    const placeholder = (secret.doc.stringData as Record<string, string>)[ref.key]!;
    assert.equal(byEnv.get('TA_KEY_ENCRYPTION_KEY')!.schema.safeParse(placeholder).success, false, `${secret.file}: the committed ${ref.key} must be a placeholder the authority refuses, never a real key`);

    // The client policy: a ConfigMap the authority's own parser accepts, mounted where TA_CLIENT_POLICY points.
    const policyPath = authority.env.TA_CLIENT_POLICY!;
    const pod = spec.template.spec as { volumes: Array<{ name: string; configMap?: { name: string } }>; containers: Array<{ volumeMounts: Array<{ name: string; mountPath: string }> }> };
    const mount = pod.containers[0]!.volumeMounts.find((m) => policyPath.startsWith(m.mountPath + '/'))!;
    assert.ok(mount, `a volume is mounted at the directory of TA_CLIENT_POLICY (${policyPath})`);
    const cmName = pod.volumes.find((v) => v.name === mount.name)?.configMap?.name;
    const cm = kinds('ConfigMap').find((d) => (d.doc.metadata as { name: string }).name === cmName)!;
    assert.ok(cm, `ConfigMap ${cmName} is in deploy/kubernetes/`);
    const key = policyPath.slice(mount.mountPath.length + 1);
    parseClientPolicy((cm.doc.data as Record<string, string>)[key]!, `${cm.file} ${cmName}/${key}`);

    // Every pod non-root with a read-only root filesystem, every container with requests.
    for (const d of kinds('Deployment')) {
      const ps = (d.doc.spec as { template: { spec: { securityContext: Record<string, unknown>; containers: Array<Record<string, any>> } } }).template.spec;
      assert.equal(ps.securityContext.runAsNonRoot, true, `${d.file}: runAsNonRoot`);
      for (const c of ps.containers) {
        assert.equal(c.securityContext?.readOnlyRootFilesystem, true, `${d.file} ${c.name}: readOnlyRootFilesystem`);
        assert.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory, `${d.file} ${c.name}: cpu and memory requests`);
      }
    }
    assert.match(read(deployment.file), /Sizing[\s\S]*Issue\/s[\s\S]*per core/, 'the authority manifest states its sizing reasoning');
  });
});

describe('deploy/grafana dashboard', () => {
  interface Panel { id: number; type: string; title: string; gridPos: { x: number; y: number; w: number; h: number }; datasource?: { uid: string }; targets?: Array<{ expr: string; refId: string; datasource?: { uid: string } }> }
  const dashboard = () => JSON.parse(read('deploy/grafana/token-authority.json')) as { uid: string; panels: Panel[]; templating: { list: Array<{ type: string; name: string }> } };

  it('is importable: unique panel ids, queries on the ${datasource} variable, panels that do not overlap', () => {
    const d = dashboard();
    assert.ok(d.uid, 'a stable uid');
    assert.ok(d.templating.list.some((v) => v.type === 'datasource' && v.name === 'datasource'), 'a Prometheus datasource variable');
    const ids = d.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    const cells = new Map<string, string>();
    for (const p of d.panels) {
      assert.ok(p.gridPos.x + p.gridPos.w <= 24, `${p.title}: fits the 24-column grid`);
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          const other = cells.get(`${x},${y}`);
          assert.ok(!other, `panels "${other}" and "${p.title}" overlap at ${x},${y}`);
          cells.set(`${x},${y}`, p.title);
        }
      }
      if (p.type === 'row') continue;
      assert.ok((p.targets ?? []).length > 0, `${p.title}: has a query`);
      for (const t of p.targets!) assert.equal(t.datasource?.uid, '${datasource}', `${p.title} ${t.refId}: queries the selected datasource`);
    }
  });

  it('docs/deploy.md describes every panel in words', () => {
    const readme = read('docs/deploy.md');
    const m = /\n### Dashboard\n([\s\S]*?)\n##/.exec(readme);
    assert.ok(m, 'docs/deploy.md has a "### Dashboard" section');
    const text = m[1]!.replace(/\s+/g, ' ');
    for (const p of dashboard().panels.filter((x) => x.type !== 'row')) assert.ok(text.includes(`**${p.title}**`), `README 'Dashboard' describes the panel **${p.title}**`);
  });
});
