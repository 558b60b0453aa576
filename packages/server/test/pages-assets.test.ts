import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { startTestServer, type TestServer } from './helpers.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.close());

test('/assets/sdk.js is the prebuilt browser file of @tessera/client, with its source map', async () => {
  const file = new URL(import.meta.resolve('@tessera/client/browser'));
  const res = await fetch(`${server.url}/assets/sdk.js`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/javascript; charset=utf-8');
  const body = await res.text();
  assert.equal(body, readFileSync(file, 'utf8'));
  assert.match(body, /export\s*\{[^}]*TesseraClient/);
  assert.match(body, /\/\/# sourceMappingURL=sdk\.js\.map\s*$/);
  const map = await fetch(`${server.url}/assets/sdk.js.map`);
  assert.equal(map.status, 200);
  const sources: string[] = (await map.json()).sources;
  assert.ok(sources.some((s) => s.endsWith('src/client.ts')));
});

test('/assets/app.js loads the SDK from ./sdk.js instead of carrying a copy', async () => {
  const body = await (await fetch(`${server.url}/assets/app.js`)).text();
  assert.match(body, /from\s*"\.\/sdk\.js"/);
  assert.doesNotMatch(body, /BroadcastChannel/); // the SDK's tab coordination: only in sdk.js
  assert.match(body, /\/\/# sourceMappingURL=app\.js\.map\s*$/);
  assert.equal((await fetch(`${server.url}/assets/app.js.map`)).status, 200);
});

test('assets answer 304 to their ETag', async () => {
  for (const name of ['app.js', 'sdk.js', 'app.css', 'logo.svg']) {
    const first = await fetch(`${server.url}/assets/${name}`);
    assert.equal(first.status, 200, name);
    const etag = first.headers.get('etag');
    assert.ok(etag, name);
    const again = await fetch(`${server.url}/assets/${name}`, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304, name);
    assert.equal(await again.text(), '');
  }
});
