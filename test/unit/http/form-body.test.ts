import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { HttpServer } from '../../../src/http/http-server.js';
import { FormBodyError, readFormBody } from '../../../src/http/form-body.js';
import { silentLogger } from '../../../src/shared/logger.js';

/** A real HTTP server whose one POST route echoes the form it read, or the refusal. */
describe('bounded form body reader (POST routes)', () => {
  let server: HttpServer;
  let port: number;
  let bytesSeen = 0;
  before(async () => {
    server = new HttpServer({
      address: { host: '127.0.0.1', port: 0, text: '127.0.0.1:0' },
      logger: silentLogger,
      routes: { '/get': () => ({ status: 200, body: '{}' }) },
      postRoutes: {
        '/form': async (req) => {
          if (req.headers['x-count'] === '1') req.on('data', (c: Buffer) => (bytesSeen += c.length));
          try {
            const form = await readFormBody(req, 1024);
            return { status: 200, body: JSON.stringify({ a: form.get('a'), r: form.getAll('r') }) };
          } catch (err) {
            if (!(err instanceof FormBodyError)) throw err;
            return { status: err.status, body: JSON.stringify({ error: err.message }), ...(err.status === 413 ? { headers: { connection: 'close' } } : {}) };
          }
        },
      },
    });
    port = await server.start();
  });
  after(() => server.stop());

  /** Send a request; `chunks` are written one by one without a Content-Length (chunked). */
  function send(method: string, path: string, headers: Record<string, string>, chunks: string[]): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
      });
      req.on('error', reject);
      let i = 0;
      const next = () => {
        if (i < chunks.length) req.write(chunks[i++]!, () => setImmediate(next));
        else req.end();
      };
      next();
    });
  }
  const form = { 'content-type': 'application/x-www-form-urlencoded' };

  it('reads a form, with repeatable parameters through getAll', async () => {
    const r = await send('POST', '/form', form, ['a=1%202&r=x', '&r=y']);
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { a: '1 2', r: ['x', 'y'] });
  });

  it('refuses a repeated parameter (400), another media type or charset (415)', async () => {
    const twice = await send('POST', '/form', form, ['a=1&a=2']);
    assert.equal(twice.status, 400);
    assert.match(twice.body, /parameter a is given more than once/);
    assert.equal((await send('POST', '/form', { 'content-type': 'application/json' }, ['{}'])).status, 415);
    assert.equal((await send('POST', '/form', {}, ['a=1'])).status, 415);
    assert.equal((await send('POST', '/form', { 'content-type': 'application/x-www-form-urlencoded; charset=latin1' }, ['a=1'])).status, 415);
  });

  it('refuses a declared length over the limit at once, without waiting for the body (413)', async () => {
    // Headers only: the answer must come although the 5000 declared bytes never arrive.
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write('POST /form HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 5000\r\n\r\n');
      });
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => {
        text += d;
        if (text.includes('\r\n\r\n')) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.on('error', reject);
    });
    assert.match(answer, /^HTTP\/1\.1 413 /);
    assert.match(answer, /connection: close/i);
  });

  it('stops reading a chunked body at the limit (413) and closes the connection', async () => {
    bytesSeen = 0;
    const r = await send('POST', '/form', { ...form, 'x-count': '1' }, Array.from({ length: 8 }, () => 'x'.repeat(512))).catch((err: Error) => ({ status: 0, body: err.message, headers: {} as Record<string, unknown> }));
    assert.equal(r.status, 413);
    assert.equal(r.headers.connection, 'close');
    assert.ok(bytesSeen <= 1024 + 512, `read ${bytesSeen} bytes`);
  });

  it('answers 405 to GET on a POST route and to POST on a GET route', async () => {
    const g = await send('GET', '/form', {}, []);
    assert.equal(g.status, 405);
    assert.equal(g.headers.allow, 'POST');
    assert.equal((await send('POST', '/get', form, ['a=1'])).status, 405);
  });
});
