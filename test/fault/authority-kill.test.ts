import assert from 'node:assert/strict';
import { watch } from 'node:fs';
import { mkdtemp, readdir, rm, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServiceError } from '@grpc/grpc-js';
import type { IssueResponse } from '../../src/gen/tokenauthority/v1/token_authority.js';
import { FileKeyStore, KEYS_FILE_NAME } from '../../src/keys/file-key-store.js';
import { runCli } from '../helpers/cli-process.js';
import { codeOf, mapConcurrent, outcomeOf } from '../helpers/load.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { directStore, readWholeLog, sleep, startAuthorityProcess, type AuthorityProcess } from './fault-fixtures.js';
import { reportSeed, seededRandom } from '../helpers/seeded-random.js';

/** Every random choice of this file (kill moments, pauses, races): seeded, the seed printed. */
const random = seededRandom('fault/authority-kill');

/** The stable error code a failed call carries in its `ta-error-code` trailer. */
function errorCodeOf(err: unknown): string {
  const md = (err as Partial<ServiceError>).metadata;
  const v = md?.get('ta-error-code')[0];
  return typeof v === 'string' ? v : codeOf(err);
}

describe('fault: the authority SIGKILLed mid-rotation', function () {
  reportSeed(random);
  this.timeout(120_000);
  const ITERATIONS = 8;
  let keyDir: string;
  let authority: AuthorityProcess | undefined;

  before(async () => {
    keyDir = await mkdtemp(join(tmpdir(), 'ta-fault-keys-'));
  });
  after(async () => {
    await authority?.kill();
    await rm(keyDir, { recursive: true, force: true });
  });

  it('keys.json is never corrupt, tokens signed before the kill still verify after a restart', async () => {
    const keysPath = join(keyDir, KEYS_FILE_NAME);
    const issued: Array<{ token: string; kid: string; iteration: number }> = [];
    const tally = { killedBeforeSave: 0, killedAfterSave: 0, completed: 0, staleLocks: 0, authorityKills: 0 };
    const strayTempFiles = new Set<string>();
    let lastVersion = 0;

    for (let i = 0; i < ITERATIONS; i++) {
      // A fresh authority on the key directory as the last kill left it.
      authority = await startAuthorityProcess({ keyDir });
      for (const t of issued) {
        const res = await authority.client.verify({ token: t.token });
        assert.equal(outcomeOf(res), 'VALID', `iteration ${i}: a token of iteration ${t.iteration} (kid ${t.kid}) no longer verifies: ${res.detail}`);
      }
      const pair = await authority.client.issue({ subject: `rot-${i}`, audience: ['orders'] });
      issued.push({ token: pair.accessToken, kid: pair.keyId, iteration: i });

      // `keys rotate` in a separate process, SIGKILLed at a moment that varies: as soon as it
      // takes the lock, as soon as it creates its temp file (mid-write), as soon as it renames
      // the temp file over keys.json (before it unlocks), or after a random delay.
      const trigger = (['lock', 'temp', 'renamed', 'random'] as const)[i % 4]!;
      const rotate = runCli(['keys', 'rotate'], { TA_KEY_DIR: keyDir, TA_LOG_LEVEL: 'silent' });
      const watcher = watch(keyDir, (_event, name) => {
        const file = String(name ?? '');
        const hit =
          (trigger === 'lock' && file === `${KEYS_FILE_NAME}.lock`) ||
          (trigger === 'temp' && file.endsWith('.tmp')) ||
          (trigger === 'renamed' && file === KEYS_FILE_NAME);
        if (hit) rotate.kill('SIGKILL');
      });
      const timer = trigger === 'random' ? setTimeout(() => rotate.kill('SIGKILL'), random.int(150, 300)) : undefined;
      const exit = await rotate.exited;
      watcher.close();
      clearTimeout(timer);
      // And the serving authority dies too, with no shutdown.
      await authority.kill();
      authority = undefined;
      tally.authorityKills++;

      // Atomic writes: the file is the old document or the new one, never a mix.
      const doc = await new FileKeyStore(keyDir).load();
      assert.ok(doc, 'keys.json exists');
      assert.equal(doc.keys.filter((k) => k.state === 'active').length, 1, 'exactly one active key');
      assert.equal(doc.keys.filter((k) => k.state === 'next').length, 1, 'exactly one next key');
      assert.equal((await stat(keysPath)).mode & 0o777, 0o600);
      assert.ok(doc.version >= lastVersion, 'the key set never goes back');
      if (exit === 0) tally.completed++;
      else if (doc.version > lastVersion) tally.killedAfterSave++;
      else tally.killedBeforeSave++;
      lastVersion = doc.version;

      for (const f of await readdir(keyDir)) {
        if (f.endsWith('.tmp') && !strayTempFiles.has(f)) {
          // A writer killed between creating and renaming its temp file leaves it behind: it
          // holds private keys, so it must be as private as keys.json itself.
          strayTempFiles.add(f);
          assert.equal((await stat(join(keyDir, f))).mode & 0o777, 0o600, `stray temp file ${f} is private`);
        }
      }
      const lock = join(keyDir, `${KEYS_FILE_NAME}.lock`);
      if (await stat(lock).then(() => true, () => false)) {
        // The killed writer held the lock. The next writer breaks a lock older than 10 s; age it
        // instead of waiting, so the next rotation exercises the stale-lock breaker.
        tally.staleLocks++;
        const old = new Date(Date.now() - 60_000);
        await utimes(lock, old, old);
      }
    }

    // After all that: a restart verifies every token ever issued, and rotation still works.
    authority = await startAuthorityProcess({ keyDir });
    for (const t of issued) assert.equal(outcomeOf(await authority.client.verify({ token: t.token })), 'VALID', `token of iteration ${t.iteration}`);
    const finalRotate = runCli(['keys', 'rotate'], { TA_KEY_DIR: keyDir, TA_LOG_LEVEL: 'silent' });
    assert.equal(await finalRotate.exited, 0, `a rotation after the kills completes: ${finalRotate.stderr()}`);
    const after = await new FileKeyStore(keyDir).load();
    assert.ok(after && after.version > lastVersion);
    console.log(`      ${ITERATIONS} rotations SIGKILLed (${JSON.stringify({ ...tally, strayTempFiles: strayTempFiles.size })}); ${issued.length} tokens from ${new Set(issued.map((t) => t.kid)).size} keys all verify after restart`);
  });
});

describe('fault: the authority SIGKILLed with many Refresh calls in flight (Redis)', function () {
  reportSeed(random);
  this.timeout(120_000);
  const CHAINS = 40;
  let redis: RedisServer;
  let keyDir: string;
  const authorities: AuthorityProcess[] = [];

  before(async () => {
    redis = await startRedis({ aof: true });
    keyDir = await mkdtemp(join(tmpdir(), 'ta-fault-keys-'));
  });
  after(async () => {
    for (const a of authorities) await a.kill();
    await redis?.stop();
    await rm(keyDir, { recursive: true, force: true });
  });

  it('no refresh token is refreshed twice, families survive the restart, the tip of each chain is valid or honestly revoked', async () => {
    const first = await startAuthorityProcess({ keyDir, redisUrl: redis.url });
    authorities.push(first);
    const sessions: IssueResponse[] = await mapConcurrent(Array.from({ length: CHAINS }, (_, i) => i), 8, (i) =>
      first.client.issue({ subject: `chain-${i}`, audience: ['orders'] }),
    );

    /** Every successful Refresh, by the refresh token presented. */
    const successes = new Map<string, IssueResponse[]>();
    const failures: Record<string, number> = {};
    const tips = sessions.map((s) => s);
    let killed = false;
    const refresh = async (_chain: number, parent: string): Promise<IssueResponse | undefined> => {
      try {
        const res = await first.client.refresh({ refreshToken: parent });
        const list = successes.get(parent) ?? [];
        list.push(res);
        successes.set(parent, list);
        return res;
      } catch (err) {
        const code = errorCodeOf(err);
        failures[code] = (failures[code] ?? 0) + 1;
        return undefined;
      }
    };
    // Every chain refreshes its latest token, pausing a random few ms between calls (so at the
    // kill some chains have a call in flight and some do not). Now and then an odd chain presents
    // its token twice at once (a client retrying, or a thief racing it): at most one may win.
    const chains = sessions.map(async (_, c) => {
      while (!killed) {
        const parent = tips[c]!.refreshToken;
        const race = c % 2 === 1 && random.chance(0.15);
        const results = await Promise.all(race ? [refresh(c, parent), refresh(c, parent)] : [refresh(c, parent)]);
        const won = results.filter((r): r is IssueResponse => r !== undefined);
        if (won.length === 0) return;
        tips[c] = won[0]!;
        await sleep(random.int(0, 40));
      }
    });
    await sleep(random.int(500, 1000));
    killed = true;
    await first.kill();
    await Promise.all(chains);
    const refreshedOk = [...successes.values()].reduce((n, l) => n + l.length, 0);

    // Before the restart: no refresh token was ever answered with two successors.
    const doubles = [...successes.entries()].filter(([, l]) => l.length > 1);
    assert.equal(doubles.length, 0, `${doubles.length} refresh tokens were refreshed twice`);

    const second = await startAuthorityProcess({ keyDir, redisUrl: redis.url });
    authorities.push(second);
    const reader = directStore(redis.url);
    let revokedSessions: Set<string>;
    try {
      const log = await readWholeLog(reader);
      revokedSessions = new Set([...log.bySeq.values()].filter((e) => e.kind === 'sid').map((e) => e.id));
    } finally {
      await reader.close();
    }

    // Each chain's tip: its access token is valid unless its family was revoked (by reuse).
    const tipOutcomes: Record<string, number> = {};
    for (const [c, tip] of tips.entries()) {
      const outcome = outcomeOf(await second.client.verify({ token: tip.accessToken }));
      const expected = revokedSessions.has(tip.sessionId) ? 'REVOKED' : 'VALID';
      assert.equal(outcome, expected, `chain ${c}: tip access token after restart`);
    }
    // Its refresh token: refreshes if it was still live; if a call lost in the kill had already
    // spent it, presenting it is reuse. Never "unknown": the family survived the restart.
    for (const [c, tip] of tips.entries()) {
      let outcome: string;
      try {
        await second.client.refresh({ refreshToken: tip.refreshToken });
        outcome = 'rotated';
      } catch (err) {
        outcome = errorCodeOf(err);
      }
      tipOutcomes[outcome] = (tipOutcomes[outcome] ?? 0) + 1;
      const allowed = revokedSessions.has(tip.sessionId) ? ['ERR_SESSION_REVOKED', 'ERR_REFRESH_REUSED'] : ['rotated', 'ERR_REFRESH_REUSED'];
      assert.ok(allowed.includes(outcome), `chain ${c}: refreshing the tip after restart answered ${outcome}`);
    }
    // Every spent parent presented again: never a second successor, and the family is revoked.
    const replays: Record<string, number> = {};
    await mapConcurrent([...successes.keys()], 4, async (parent) => {
      let outcome: string;
      try {
        await second.client.refresh({ refreshToken: parent });
        outcome = 'rotated';
      } catch (err) {
        outcome = errorCodeOf(err);
      }
      replays[outcome] = (replays[outcome] ?? 0) + 1;
    });
    assert.equal(replays.rotated ?? 0, 0, 'a spent refresh token was refreshed a second time');
    assert.deepEqual(Object.keys(replays).filter((k) => k !== 'ERR_REFRESH_REUSED' && k !== 'ERR_SESSION_REVOKED'), []);
    for (const [c, tip] of tips.entries()) {
      assert.equal(outcomeOf(await second.client.verify({ token: tip.accessToken })), 'REVOKED', `chain ${c}: after reuse its family is revoked`);
    }
    console.log(`      1 SIGKILL with ${CHAINS} refresh chains in flight: ${refreshedOk} refreshes answered OK before it, failures ${JSON.stringify(failures)}; refreshed twice: 0; after restart, tips: ${JSON.stringify(tipOutcomes)}, replayed parents: ${JSON.stringify(replays)}`);
  });
});
