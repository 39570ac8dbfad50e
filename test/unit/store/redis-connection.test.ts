import assert from 'node:assert/strict';
import { Cluster, Redis } from 'ioredis';
import { ErrorCodes, isTokenAuthorityError } from '../../../src/shared/errors.js';
import {
  createRedisClient,
  createSubscriber,
  isClusterTarget,
  keySlot,
  parseRedisUrl,
} from '../../../src/store/redis-connection.js';
import { redactUrl } from '../../../src/shared/redact-url.js';
import { redisKeys, redisScripts } from '../../../src/store/redis-schema.js';

function configError(pattern: RegExp, secret?: string) {
  return (err: unknown) => {
    assert.ok(isTokenAuthorityError(err), `expected a TokenAuthorityError, got ${String(err)}`);
    assert.equal(err.code, ErrorCodes.CONFIG);
    assert.match(err.message, pattern);
    if (secret !== undefined) assert.ok(!err.message.includes(secret), `the message leaks the password: ${err.message}`);
    return true;
  };
}

describe('Redis URLs (parseRedisUrl)', () => {
  describe('single server', () => {
    it('reads host, default port, database and credentials', () => {
      assert.deepEqual(parseRedisUrl('redis://127.0.0.1'), { topology: 'standalone', nodes: [{ host: '127.0.0.1', port: 6379 }], tls: false });
      assert.deepEqual(parseRedisUrl('rediss://ta:s%40cret@redis.internal:6380/2'), {
        topology: 'standalone',
        nodes: [{ host: 'redis.internal', port: 6380 }],
        tls: true,
        username: 'ta',
        password: 's@cret',
        db: 2,
      });
    });

    it('takes `:pass@` and the redis-cli form `pass@` as a password without a user', () => {
      const a = parseRedisUrl('redis://:pw@h:1');
      assert.equal(a.password, 'pw');
      assert.equal(a.username, undefined);
      const b = parseRedisUrl('redis://pw@h:1');
      assert.equal(b.password, 'pw');
      assert.equal(b.username, undefined);
    });

    it('accepts bracketed IPv6 hosts', () => {
      assert.deepEqual(parseRedisUrl('redis://[::1]:7000').nodes, [{ host: '::1', port: 7000 }]);
    });

    it('refuses several hosts, a bad port, a bad database and query parameters', () => {
      assert.throws(() => parseRedisUrl('redis://a:1,b:2'), configError(/redis-sentinel:\/\/ or redis-cluster:\/\//));
      assert.throws(() => parseRedisUrl('redis://a:99999'), configError(/port 99999 is out of range/));
      assert.throws(() => parseRedisUrl('redis://a/x'), configError(/database "x" is not a number/));
      assert.throws(() => parseRedisUrl('redis://a/1/2'), configError(/only hold a database/));
      assert.throws(() => parseRedisUrl('redis://a?tls=true'), configError(/unknown parameter "tls".*takes none/));
    });
  });

  describe('Sentinel', () => {
    it('reads the sentinels (default port 26379), the master name, the database and both credentials', () => {
      assert.deepEqual(
        parseRedisUrl('redis-sentinel://u:p@s1,s2:26380,[::1]/mymaster/3?sentinelUsername=su&sentinelPassword=s%26p'),
        {
          topology: 'sentinel',
          nodes: [{ host: 's1', port: 26379 }, { host: 's2', port: 26380 }, { host: '::1', port: 26379 }],
          tls: false,
          username: 'u',
          password: 'p',
          sentinelName: 'mymaster',
          db: 3,
          sentinelUsername: 'su',
          sentinelPassword: 's&p',
        },
      );
      assert.equal(parseRedisUrl('rediss-sentinel://s1/m').tls, true);
    });

    it('requires a master name and knows only its two parameters', () => {
      assert.throws(() => parseRedisUrl('redis-sentinel://s1:26379,s2:26379'), configError(/names no master/));
      assert.throws(() => parseRedisUrl('redis-sentinel://s1/m?password=x'), configError(/unknown parameter "password" \(known: sentinelUsername, sentinelPassword\)/));
    });

    it('maps to ioredis sentinel options: sentinels, name, role master, failover detection, TLS for both', () => {
      const client = createRedisClient(parseRedisUrl('rediss-sentinel://u:p@s1:1,s2:2/mymaster/1?sentinelPassword=sp'), { lazyConnect: true }) as Redis;
      try {
        assert.ok(client instanceof Redis);
        const o = client.options;
        assert.deepEqual(o.sentinels, [{ host: 's1', port: 1 }, { host: 's2', port: 2 }]);
        assert.equal(o.name, 'mymaster');
        assert.equal(o.role, 'master');
        assert.equal(o.db, 1);
        assert.equal(o.username, 'u');
        assert.equal(o.password, 'p');
        assert.equal(o.sentinelPassword, 'sp');
        assert.equal(o.enableTLSForSentinelMode, true);
        assert.deepEqual(o.tls, {});
        assert.equal(o.failoverDetector, true);
        assert.equal(o.lazyConnect, true);
      } finally {
        client.disconnect();
      }
    });
  });

  describe('Cluster', () => {
    it('reads the seed nodes and credentials, and refuses a database', () => {
      assert.deepEqual(parseRedisUrl('rediss-cluster://u:p@10.0.0.1:7000,10.0.0.2:7001,10.0.0.3'), {
        topology: 'cluster',
        nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7001 }, { host: '10.0.0.3', port: 6379 }],
        tls: true,
        username: 'u',
        password: 'p',
      });
      assert.throws(() => parseRedisUrl('redis-cluster://a:1/0'), configError(/only database 0/));
    });

    it('maps to an ioredis Cluster with per-node credentials and the caller\'s timeouts', () => {
      const spec = parseRedisUrl('redis-cluster://u:p@127.0.0.1:7000,127.0.0.1:7001');
      assert.equal(isClusterTarget(spec), true);
      const client = createRedisClient(spec, { lazyConnect: true, commandTimeout: 750, enableOfflineQueue: false, connectionName: 'x' }) as Cluster;
      try {
        assert.ok(client instanceof Cluster);
        assert.equal(client.options.enableOfflineQueue, false);
        assert.equal(client.options.lazyConnect, true);
        assert.equal(client.options.redisOptions?.commandTimeout, 750);
        assert.equal(client.options.redisOptions?.username, 'u');
        assert.equal(client.options.redisOptions?.password, 'p');
        assert.equal(client.options.redisOptions?.connectionName, 'x');
      } finally {
        client.disconnect();
      }
    });

    it('subscribes with sharded pub/sub on a Cluster, plain pub/sub elsewhere', () => {
      const clusterSpec = parseRedisUrl('redis-cluster://127.0.0.1:7000');
      const commandClient = createRedisClient(clusterSpec, { lazyConnect: true });
      const single = parseRedisUrl('redis://127.0.0.1:7000');
      const a = createSubscriber(clusterSpec, { lazyConnect: true }, { channel: 'ta:v1:{ta}:feed', commandClient });
      const b = createSubscriber(single, { lazyConnect: true }, { channel: 'ta:v1:{ta}:feed', commandClient });
      try {
        assert.equal(a.sharded, true);
        assert.ok(a.conn instanceof Redis, 'a single-node connection to the slot owner, not a Cluster client');
        assert.equal(b.sharded, false);
      } finally {
        a.conn.disconnect();
        b.conn.disconnect();
        commandClient.disconnect();
      }
    });
  });

  it('refuses other schemes and non-URLs, naming the accepted forms', () => {
    assert.throws(() => parseRedisUrl('http://127.0.0.1:6379'), configError(/unsupported scheme "http:".*redis-cluster:\/\//));
    assert.throws(() => parseRedisUrl('127.0.0.1:6379'), configError(/not a URL/));
    assert.throws(() => parseRedisUrl('redis://'), configError(/names no host/));
  });

  it('never puts a password into an error message or a description', () => {
    const secret = 'hunter2-very-secret';
    assert.throws(() => parseRedisUrl(`redis://user:${secret}@a:1,b:2`), configError(/user:\*\*\*@/, secret));
    assert.throws(() => parseRedisUrl(`redis-sentinel://s1/m?sentinelPassword=${secret}&bogus=1`), configError(/sentinelPassword=\*\*\*/, secret));
    assert.equal(redactUrl(`rediss://u:${secret}@h/0`), 'rediss://u:***@h/0');
    // Logs show a Redis URL the one way every URL is shown (shared/redact-url.ts).
    assert.equal(redactUrl(`redis-sentinel://u:${secret}@s1:1,s2:2/mymaster?sentinelPassword=${secret}`), 'redis-sentinel://u:***@s1:1,s2:2/mymaster?sentinelPassword=***');
    assert.equal(redactUrl('rediss-cluster://[::1]:7000'), 'rediss-cluster://[::1]:7000');
  });
});

describe('Cluster hash slots (keySlot)', () => {
  it('is CRC16/XMODEM mod 16384, as in the Redis Cluster specification', () => {
    assert.equal(keySlot('123456789'), 0x31c3);
    assert.equal(keySlot(''), 0);
  });

  it('hashes only a non-empty {tag}, so every token-authority key and the feed share one slot', () => {
    const k = redisKeys('ta:v1:');
    const slot = keySlot('ta');
    assert.equal(slot, 14362, 'the slot `CLUSTER KEYSLOT {ta}` reports');
    for (const name of [k.seq, k.log, k.feed, k.receipts, k.refresh('h'), k.session('s'), k.generation('u'), k.revokedJti('j'), k.revokedSid('s'), 'ta:v1:{ta}:keys']) {
      assert.equal(keySlot(name), slot, name);
    }
    assert.equal(keySlot('x{ta}{other}'), slot, 'the first {…} is the tag');
    assert.notEqual(keySlot('{}ta'), slot, 'an empty tag hashes the whole key');
  });
});

describe('feed publishing in the Lua scripts', () => {
  it('uses PUBLISH for a single server and SPUBLISH for a Cluster, in every script that publishes', () => {
    const plain = redisScripts(false);
    const sharded = redisScripts(true);
    for (const name of ['REVOKE', 'ROTATE_REFRESH', 'HEARTBEAT'] as const) {
      assert.match(plain[name], /local PUBLISH_CMD = 'PUBLISH'/);
      assert.match(sharded[name], /local PUBLISH_CMD = 'SPUBLISH'/);
      assert.doesNotMatch(sharded[name], /redis\.call\('PUBLISH'/, `${name} publishes only through PUBLISH_CMD`);
    }
    assert.equal(sharded.READ_LOG.replace("PUBLISH_CMD = 'SPUBLISH'", "PUBLISH_CMD = 'PUBLISH'"), plain.READ_LOG, 'the flavours differ in nothing else');
  });
});
