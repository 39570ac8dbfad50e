import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { findOnPath } from '../../helpers/local-ports.js';
import { DEPLOY, parseYaml } from '../../helpers/deploy-artifacts.js';

/** The alert rules, checked and unit-tested by the real promtool (never skipped). */

const DIR = join(DEPLOY, 'prometheus');
const RULES = 'token-authority-rules.yml';
const TESTS = 'token-authority-rules.test.yml';

function promtool(...args: string[]): string {
  const bin = findOnPath('promtool');
  assert.ok(bin, 'promtool is not on PATH: the alert-rule tests need the real Prometheus rule checker. Install the Debian package `prometheus` (`apt-get install -y prometheus`); .ci/run installs it.');
  const r = spawnSync(bin, args, { cwd: DIR, encoding: 'utf8', timeout: 60_000 });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  assert.equal(r.status, 0, `promtool ${args.join(' ')} (in deploy/prometheus) failed:\n${out}`);
  return out;
}

interface RulesFile { groups: Array<{ rules: Array<{ alert?: string }> }> }
interface TestsFile { tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }> }> }

describe('deploy/prometheus alert rules (promtool)', function () {
  this.timeout(60_000);

  it('promtool check rules accepts them', () => {
    assert.match(promtool('check', 'rules', RULES), /SUCCESS: \d+ rules found/);
  });

  it('promtool test rules passes, and every alert is tested firing and not firing', () => {
    const alerts = (parseYaml(`deploy/prometheus/${RULES}`)[0] as RulesFile).groups.flatMap((g) => g.rules.map((r) => r.alert)).filter((a): a is string => !!a);
    for (const wanted of ['VerifierStale', 'VerifierLagging', 'PropagationBelowFleet', 'JwksFetchFailing', 'KeyRotationOverdue', 'RedisUnavailable', 'RefreshReuseSpike']) {
      assert.ok(alerts.includes(`TokenAuthority${wanted}`), `${RULES} has TokenAuthority${wanted}`);
    }
    const cases = (parseYaml(`deploy/prometheus/${TESTS}`)[0] as TestsFile).tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const a of alerts) {
      const mine = cases.filter((c) => c.alertname === a);
      assert.ok(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${TESTS}: ${a} is never expected to fire`);
      assert.ok(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${TESTS}: ${a} is never expected to stay silent`);
    }
    assert.match(promtool('test', 'rules', TESTS), /SUCCESS/);
  });
});
