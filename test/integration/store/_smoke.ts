import { startRedis } from '../../helpers/redis-server.js';
import { RedisTokenStore } from '../../../src/store/redis-token-store.js';
const r = await startRedis({ aof: true });
console.log(r.url);
const s = new RedisTokenStore({ url: r.url, retentionMs: 60000 });
const now = Date.now();
console.log(await s.createSession({ sessionId: 's1', subject: 'u1', audience: ['a'], scopes: ['x'], extra: { k: 'v/é' }, refreshHash: 'h1', refreshExpiresAt: now + 1000, absoluteExpiresAt: now + 100000, now }));
console.log(await s.rotateRefresh({ presentedHash: 'h1', successorHash: 'h2', successorExpiresAt: now + 2000, now, graceMs: 0, idleTimeoutMs: 0, revocationUntil: now + 5000 }));
const sub = await s.subscribe({ onMessage: (m) => console.log('msg', m), onReady: () => console.log('ready'), onDisconnect: (e) => console.log('disc', e?.message) });
console.log(await s.rotateRefresh({ presentedHash: 'h1', successorHash: 'h3', successorExpiresAt: now + 2000, now, graceMs: 0, idleTimeoutMs: 0, revocationUntil: now + 5000 }));
console.log(await s.revoke({ kind: 'sub', id: 'u1', until: now + 5000, reason: 'a"b/c' }));
console.log(await s.revoke({ kind: 'jti', id: 'j1', until: now + 5000 }));
console.log(await s.revoke({ kind: 'jti', id: 'j1', until: now + 5000 }));
console.log(await s.readLog(0, 10));
console.log(await s.heartbeat());
console.log(await s.getSession('s1'), await s.findSessionByRefresh('h2'));
await s.reportApplied('i1', 3, 10000); console.log(await s.listApplied());
await r.kill();
const t0 = Date.now();
try { await s.revoke({ kind: 'jti', id: 'j2', until: now + 5000 }); } catch (e: any) { console.log(e.code, e.message, Date.now() - t0); }
console.log(await s.ping());
await r.restart();
for (let i = 0; i < 50; i++) { try { console.log(await s.readLog(0, 10)); break; } catch (e: any) { await new Promise(r => setTimeout(r, 100)); } }
await new Promise(r => setTimeout(r, 500));
await sub.close(); await s.close(); await r.stop();
