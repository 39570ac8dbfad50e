import assert from 'node:assert/strict';
import { MAX_FEED_MESSAGE_LENGTH, MAX_REVOCATION_ID_LENGTH, parseFeedMessage, parseFeedMessageBytes } from '../../../src/shared/revocation-event.js';
import { seededRandom } from '../../helpers/seeded-random.js';

const rnd = seededRandom('unit/shared/revocation-event-bytes');

/** What the store's event_json (src/store/redis-schema.ts) writes, field for field. */
function written(e: { seq: number; kind: string; id: string; gen?: number; until: number; at: number; reason?: string }): string {
  // cjson.encode escapes "/" too; JSON.stringify does not: both are valid JSON for the same string.
  const str = (s: string) => JSON.stringify(s).replace(/\//g, '\\/');
  return `{"v":1,"type":"rev","seq":${e.seq},"kind":"${e.kind}","id":${str(e.id)}${e.gen !== undefined ? `,"gen":${e.gen}` : ''},"until":${e.until},"at":${e.at}${e.reason ? `,"reason":${str(e.reason)}` : ''}}`;
}

/** The byte parser must answer exactly what parsing the UTF-8 text answers. */
function same(text: string | Buffer, why: string): void {
  const bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  const expected = parseFeedMessage(bytes.toString('utf8'));
  assert.deepStrictEqual(parseFeedMessageBytes(bytes), expected, `${why}: ${bytes.toString('utf8').slice(0, 200)} (${rnd.replay})`);
}

describe(`parseFeedMessageBytes: the same answers as parseFeedMessage on the text (${rnd.replay})`, () => {
  const base = { seq: 42, kind: 'jti', id: 'AbC_d-e0123456789xyzQW', until: 1767225600000, at: 1767224700000 };

  it('reads the layout the store writes, for every kind, with and without gen and reason', () => {
    const e = parseFeedMessageBytes(Buffer.from(written(base)));
    assert.deepStrictEqual(e, { v: 1, type: 'rev', seq: 42, kind: 'jti', id: base.id, until: base.until, at: base.at });
    same(written({ ...base, kind: 'sid', reason: 'logout' }), 'sid with a reason');
    same(written({ ...base, kind: 'sub', id: 'user@example.com', gen: 7 }), 'sub with gen');
    same(written({ ...base, kind: 'sub', id: 'user', gen: 0, reason: 'password changed' }), 'sub, gen 0, reason');
    same(written({ ...base, id: 'a'.repeat(MAX_REVOCATION_ID_LENGTH) }), 'id at its limit');
  });

  it('answers as the text parser for everything it does not read itself (escapes, unicode, big or odd numbers, whitespace, other orders)', () => {
    const cases = [
      written({ ...base, id: 'a/b' }), // cjson's \/
      written({ ...base, id: 'quote"in' }),
      written({ ...base, id: 'tab\tin' }),
      written({ ...base, id: 'üñí©ødé' }),
      written({ ...base, id: '😀' }),
      written({ ...base, id: 'ü'.repeat(200) }), // more bytes than units
      written({ ...base, id: 'a'.repeat(MAX_REVOCATION_ID_LENGTH + 1) }),
      written({ ...base, id: '' }),
      written({ ...base, reason: 'r'.repeat(129) }),
      written({ ...base, reason: 'r'.repeat(128) }),
      written({ ...base, reason: 'ré' }),
      written({ ...base, seq: 0 }),
      written({ ...base, seq: 2 ** 53 }), // not a safe integer
      written({ ...base, seq: 123456789012345 }), // 15 digits
      written({ ...base, seq: 1234567890123456 }), // 16 digits: the text parser's
      written({ ...base, until: 12345678901234567890 }),
      written({ ...base, kind: 'sub' }), // no gen
      written({ ...base, kind: 'xyz' }),
      written({ ...base, kind: 'jt' }),
      written({ ...base, gen: 3 }), // gen on a jti: kept, as JSON.parse keeps it
      written(base).replace('"seq":42', '"seq":042'),
      written(base).replace('"seq":42', '"seq":-42'),
      written(base).replace('"seq":42', '"seq":42.0'),
      written(base).replace('"seq":42', '"seq":4.2e1'),
      written(base).replace('"until":1767225600000', '"until":1767225600000.5'),
      written(base).replace('"until":1767225600000', '"until":"soon"'),
      written(base).replace('"v":1', '"v":2'),
      written(base).replace('"v":1', '"v":1.0'),
      written(base).replace('{', '{ '),
      written(base).replace(',"at"', ', "at"'),
      written(base) + ' ',
      written(base) + '}',
      written(base).slice(0, -1) + ',"at":1}', // duplicate key: the last wins in JSON.parse
      written(base).slice(0, -1) + ',"extra":true}',
      written(base).replace('"type":"rev"', '"type":"hb"'),
      '{"v":1,"type":"hb","seq":43,"at":1767224701000}',
      '{"v":1,"type":"rev","kind":"jti","seq":42,"id":"x","until":1,"at":1}',
      written(base).slice(0, -1), // truncated
      written(base).slice(0, 30),
      '',
      'null',
      '[]',
      `${written(base).slice(0, -1)},"pad":"${'p'.repeat(MAX_FEED_MESSAGE_LENGTH)}"}`,
    ];
    for (const c of cases) same(c, 'case');
    same(Buffer.from([...Buffer.from(written(base)).subarray(0, 60), 0xff, 0xfe, ...Buffer.from('"}')]), 'invalid UTF-8');
  });

  it('agrees with the text parser on 20 000 random mutations of written entries', () => {
    const alphabet = 'abcXYZ019_-./@"\\ \t\u00e9\u00ff{}:,[]e+-0123456789';
    for (let i = 0; i < 20_000; i++) {
      const e = {
        seq: rnd.int(0, 3) === 0 ? rnd.int(0, 2) : rnd.int(1, 2 ** 31),
        kind: rnd.pick(['jti', 'sid', 'sub']),
        id: Array.from({ length: rnd.int(0, 30) }, () => rnd.pick([...'abcdefXYZ0123456789_-'])).join(''),
        ...(rnd.chance(0.3) ? { gen: rnd.int(0, 9) } : {}),
        until: rnd.int(0, 2 ** 31) * 1000,
        at: rnd.int(0, 2 ** 31) * 1000,
        ...(rnd.chance(0.3) ? { reason: rnd.pick(['logout', 'x', 'pass word']) } : {}),
      };
      const text = written(e);
      const chars = [...text];
      for (let m = rnd.int(0, 3); m > 0; m--) {
        const at = rnd.int(0, chars.length - 1);
        const op = rnd.int(0, 2);
        if (op === 0) chars.splice(at, 1);
        else if (op === 1) chars.splice(at, 0, rnd.pick([...alphabet]));
        else chars[at] = rnd.pick([...alphabet]);
      }
      same(chars.join(''), `mutation ${i}`);
    }
  });
});
