// Faults caught by Node's HTTP parser or Fastify's router, before any route runs, still answer with
// the security headers and the `{error, message}` shape. Sent over a raw socket: fetch would refuse
// to send most of these.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from './helpers.js';

let srv: TestServer;
let port = 0;
before(async () => {
  srv = await startTestServer({ secureCookies: true });
  port = Number(new URL(srv.url).port);
});
after(async () => {
  await srv.close();
});

interface RawAnswer {
  status: number;
  headers: Map<string, string>;
  body: any;
}

/** Writes `request` as is and reads the answer until the server closes or the body is complete. */
function raw(request: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      data += chunk;
      const split = data.indexOf('\r\n\r\n');
      const length = /\r\ncontent-length: *(\d+)/i.exec(data.slice(0, split))?.[1];
      if (split >= 0 && length !== undefined && data.length >= split + 4 + Number(length)) socket.end();
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      // The server may reset the connection after answering; what was read is the answer.
      if (err.code !== 'ECONNRESET' || data === '') reject(err);
    });
    socket.once('close', () => {
      const split = data.indexOf('\r\n\r\n');
      if (split < 0) return reject(new Error(`no complete answer: ${JSON.stringify(data)}`));
      const [statusLine = '', ...lines] = data.slice(0, split).split('\r\n');
      const headers = new Map<string, string>();
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
      const text = data.slice(split + 4);
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON: the assertions below say so
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body });
    });
    socket.write(request, 'latin1');
  });
}

function assertHardened(answer: RawAnswer, status: number, code: string): void {
  assert.equal(answer.status, status);
  assert.equal(typeof answer.body, 'object', `a JSON body, got ${JSON.stringify(answer.body)}`);
  assert.equal(answer.body.error, code);
  assert.equal(typeof answer.body.message, 'string');
  assert.deepEqual(Object.keys(answer.body).sort(), ['error', 'message']);
  assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(answer.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(answer.headers.get('x-frame-options'), 'DENY');
  assert.equal(answer.headers.get('referrer-policy'), 'no-referrer');
  assert.match(answer.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  assert.match(answer.headers.get('strict-transport-security') ?? '', /max-age=/);
  assert.equal(answer.headers.get('cache-control'), 'no-store');
}

const host = () => `Host: 127.0.0.1:${port}\r\n`;

describe('framework-level errors', () => {
  it('bad URL encoding: 400 invalid_request', async () => {
    assertHardened(
      await raw(`GET /%zz HTTP/1.1\r\n${host()}Connection: close\r\n\r\n`),
      400,
      'invalid_request',
    );
  });

  it('an overlong route parameter: 400 invalid_request', async () => {
    const answer = await raw(
      `DELETE /auth/sessions/${'a'.repeat(300)} HTTP/1.1\r\n${host()}Connection: close\r\n\r\n`,
    );
    assertHardened(answer, 400, 'invalid_request');
  });

  it('headers too large: 431 headers_too_large', async () => {
    const big = `X-Filler: ${'a'.repeat(20_000)}\r\n`.repeat(4);
    assertHardened(await raw(`GET /healthz HTTP/1.1\r\n${host()}${big}\r\n`), 431, 'headers_too_large');
  });

  it('a request Node cannot parse: 400 invalid_request', async () => {
    assertHardened(await raw('NOT A REQUEST\r\n\r\n'), 400, 'invalid_request');
    assertHardened(
      await raw(`GET /healthz HTTP/1.1\r\n${host()}Content-Length: 1\r\nContent-Length: 2\r\n\r\n`),
      400,
      'invalid_request',
    );
  });

  it('malformed JSON: 400 invalid_request', async () => {
    const body = '{"username": ';
    const answer = await raw(
      `POST /auth/login HTTP/1.1\r\n${host()}Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    assertHardened(answer, 400, 'invalid_request');
  });

  it('a body over the limit: 413 payload_too_large; an unknown path: 404 not_found', async () => {
    const body = `{"x":"${'a'.repeat(20_000)}"}`;
    const answer = await raw(
      `POST /auth/login HTTP/1.1\r\n${host()}Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    assertHardened(answer, 413, 'payload_too_large');
    assertHardened(
      await raw(`GET /nowhere HTTP/1.1\r\n${host()}Connection: close\r\n\r\n`),
      404,
      'not_found',
    );
  });
});
