import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

/**
 * The deploy/ artifacts read into one shape, so tests can check them against the code: every
 * workload (a compose service or a Kubernetes container) with its role, its environment, the ports
 * it declares and the HTTP probes aimed at it.
 */

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const DEPLOY = join(REPO, 'deploy');

export type Role = 'authority' | 'sidecar' | 'example' | 'other';

export interface Probe {
  /** e.g. "readinessProbe", "healthcheck", "HEALTHCHECK". */
  kind: string;
  path: string;
  port: number;
}

export interface Workload {
  /** Repository-relative file, e.g. deploy/compose.yaml. */
  file: string;
  /** Where in the file, e.g. `service "sidecar"` or `Deployment "orders" container "sidecar"`. */
  where: string;
  role: Role;
  /** Environment as written (literal values). */
  env: Record<string, string>;
  /** Variables whose value comes from elsewhere (Secret, fieldRef, env_file): name → source. */
  external: Record<string, string>;
  /** Container ports it declares (Kubernetes containerPort; compose: the container side of `ports`). */
  ports: number[];
  probes: Probe[];
}

export function rel(path: string): string {
  return relative(REPO, path);
}

export function read(path: string): string {
  return readFileSync(join(REPO, path), 'utf8');
}

/** Every YAML file under deploy/ (repository-relative). */
export function yamlFiles(): string[] {
  const out: string[] = [];
  (function walk(dir: string) {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(name)) out.push(rel(p));
    }
  })(DEPLOY);
  return out.sort();
}

/** Parse every document of a YAML file; throws naming the file and the parser's errors. */
export function parseYaml(file: string): unknown[] {
  const docs = parseAllDocuments(read(file), { prettyErrors: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const problems = list.flatMap((d) => d.errors.map((e) => e.message));
  if (problems.length > 0) throw new Error(`${file} does not parse as YAML:\n  - ${problems.join('\n  - ')}`);
  return list.map((d) => d.toJS({ maxAliasCount: 100 }) as unknown).filter((d) => d !== null && d !== undefined);
}

// ---- Dockerfile ----

export interface DockerInstruction {
  stage: string;
  op: string;
  args: string;
}

/** The Dockerfile's instructions (continuations joined, comments dropped), each with its stage name. */
export function dockerfile(): DockerInstruction[] {
  const text = read('deploy/Dockerfile').replace(/\\\n/g, ' ');
  const out: DockerInstruction[] = [];
  let stage = '';
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z]+)\s+(.*)$/.exec(line);
    if (!m || line.trim().startsWith('#')) continue;
    const [, op, args] = m as unknown as [string, string, string];
    if (op === 'FROM') stage = / AS (\S+)/i.exec(args)?.[1] ?? '';
    out.push({ stage, op, args: args.trim() });
  }
  return out;
}

/** An exec-form (JSON array) argument list, or the shell form split on spaces. */
export function execForm(args: string): string[] {
  return args.startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/);
}

/** The Dockerfile's ENV of the runtime image (`ENV K=V`). */
export function imageEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of dockerfile().filter((d) => d.op === 'ENV' && d.stage === 'runtime')) {
    for (const m of i.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
  }
  return env;
}

// ---- compose.yaml ----

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function roleOf(args: string[]): Role {
  if (args.some((a) => a.includes('orders-service'))) return 'example';
  if (args.includes('serve')) return 'authority';
  if (args.includes('sidecar')) return 'sidecar';
  return 'other';
}

export function compose(): Obj {
  return obj(parseYaml('deploy/compose.yaml')[0]);
}

/** Variables each compose env_file provides (the files are not committed: the operator creates them). */
export const COMPOSE_ENV_FILES: Readonly<Record<string, readonly string[]>> = {
  'secrets/authority.env': ['TA_KEY_ENCRYPTION_KEY'],
};

export function composeWorkloads(): Workload[] {
  const services = obj(compose().services);
  const image = 'token-authority:local';
  const out: Workload[] = [];
  for (const [name, raw] of Object.entries(services)) {
    const s = obj(raw);
    const ours = s.image === image || s.build !== undefined;
    const args = [...arr(s.entrypoint), ...arr(s.command)].map(String);
    // The image's ENTRYPOINT is node dist/src/cli.js and its CMD serve.
    const role = ours ? (s.entrypoint ? roleOf(args) : roleOf(args.length ? args : ['serve'])) : 'other';
    const env: Record<string, string> = {};
    const e = s.environment;
    if (Array.isArray(e)) for (const kv of e.map(String)) env[kv.split('=')[0]!] = kv.slice(kv.indexOf('=') + 1);
    else for (const [k, v] of Object.entries(obj(e))) env[k] = String(v);
    const external: Record<string, string> = {};
    for (const f of arr(s.env_file).map(String)) for (const v of COMPOSE_ENV_FILES[f] ?? []) external[v] = `env_file ${f}`;
    const ports = arr(s.ports).map((p) => Number(String(p).split(':').pop()!.split('/')[0]));
    const probes: Probe[] = [];
    out.push({ file: 'deploy/compose.yaml', where: `service "${name}"`, role, env, external, ports, probes });
  }
  return out;
}

// ---- Kubernetes ----

export function kubernetesDocs(): Array<{ file: string; doc: Obj }> {
  return yamlFiles()
    .filter((f) => f.startsWith('deploy/kubernetes/'))
    .flatMap((file) => parseYaml(file).map((d) => ({ file, doc: obj(d) })));
}

export function kubernetesWorkloads(): Workload[] {
  const out: Workload[] = [];
  for (const { file, doc } of kubernetesDocs()) {
    if (doc.kind !== 'Deployment') continue;
    const pod = obj(obj(obj(doc.spec).template).spec);
    for (const c of arr(pod.containers).map(obj)) {
      const where = `Deployment "${String(obj(doc.metadata).name)}" container "${String(c.name)}"`;
      const args = [...arr(c.command), ...arr(c.args)].map(String);
      const env: Record<string, string> = {};
      const external: Record<string, string> = {};
      for (const e of arr(c.env).map(obj)) {
        if (e.value !== undefined) env[String(e.name)] = String(e.value);
        else if (e.valueFrom !== undefined) external[String(e.name)] = JSON.stringify(e.valueFrom);
      }
      const named = new Map<string, number>();
      for (const p of arr(c.ports).map(obj)) if (p.name) named.set(String(p.name), Number(p.containerPort));
      const portOf = (p: unknown): number => (typeof p === 'number' ? p : named.get(String(p)) ?? NaN);
      const probes: Probe[] = [];
      for (const kind of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
        const h = obj(obj(c[kind]).httpGet);
        if (h.path !== undefined) probes.push({ kind, path: String(h.path), port: portOf(h.port) });
      }
      out.push({ file, where, role: c.image && String(c.image).startsWith('token-authority') ? roleOf(args.length ? args : ['serve']) : 'other', env, external, ports: [...named.values()], probes });
    }
  }
  return out;
}

/** The Dockerfile HEALTHCHECK as a probe of the authority (its default HTTP port). */
export function dockerHealthcheck(): { script: string } | undefined {
  const h = dockerfile().find((d) => d.op === 'HEALTHCHECK' && d.stage === 'runtime');
  if (!h) return undefined;
  const cmd = /CMD\s+(\[.*\])\s*$/.exec(h.args);
  return cmd ? { script: execForm(cmd[1]!).slice(-1)[0]! } : undefined;
}

// ---- PromQL in the dashboard and the alert rules ----

const PROMQL_WORDS = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'offset', 'bool',
  'inf', 'nan',
]);

/** The metric names an expression selects, each with the `job` its selector requires (if any). */
export function promqlMetrics(expr: string): Array<{ name: string; job?: string }> {
  const jobs = new Map<string, string | undefined>();
  const s = expr
    .replace(/\$__\w+/g, '1m')
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  for (const m of expr.matchAll(/(?<![\w:.])([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}/g)) {
    jobs.set(m[1]!, /\bjob\s*=\s*"([^"]*)"/.exec(m[2]!)?.[1]);
  }
  const out: Array<{ name: string; job?: string }> = [];
  for (const m of s.matchAll(/(?<![\w:.])([a-zA-Z_:][\w:]*)(\s*\{[^}]*\})?(\s*\()?/g)) {
    const name = m[1]!;
    if (m[3] || PROMQL_WORDS.has(name.toLowerCase())) continue; // a function call or a keyword
    const job = jobs.get(name);
    out.push(job === undefined ? { name } : { name, job });
  }
  return out;
}

/** Every PromQL expression of the Grafana dashboard, with the panel it belongs to. */
export function dashboardExpressions(): Array<{ where: string; expr: string }> {
  const d = JSON.parse(read('deploy/grafana/token-authority.json')) as { panels: Array<{ title: string; type: string; targets?: Array<{ expr: string; refId: string }> }> };
  return d.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `deploy/grafana/token-authority.json panel "${p.title}" query ${t.refId}`, expr: t.expr })));
}

/** Every alert expression of the Prometheus rules. */
export function ruleExpressions(): Array<{ where: string; expr: string }> {
  const f = parseYaml('deploy/prometheus/token-authority-rules.yml')[0] as { groups: Array<{ rules: Array<{ alert?: string; record?: string; expr: string }> }> };
  return f.groups.flatMap((g) => g.rules.map((r) => ({ where: `deploy/prometheus/token-authority-rules.yml alert ${r.alert ?? r.record}`, expr: String(r.expr) })));
}

/** Metric names in a Prometheus text exposition: families (# TYPE) and every sample's name. */
export function exposedMetricNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) /.exec(line);
    if (t) names.add(t[1]!);
    else if (line && !line.startsWith('#')) names.add(/^[^{\s]+/.exec(line)![0]);
  }
  return names;
}
