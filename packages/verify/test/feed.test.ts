import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { RevocationFeedClient, RevocationSet, type SseEvent, SseParser } from '../src/index.js';

const future = (): number => Math.floor(Date.now() / 1000) + 600;

/** A tiny fake of the account server's revocation feed. */
class FakeFeed {
  server: Server;
  url = '';
  snapshot: { cursor: string; entries: unknown[] } = { cursor: '0', entries: [] };
  streams: ServerResponse[] = [];
  streamQueries: string[] = [];
  snapshots = 0;
  streamStatus = 200;
  /** Open streams and never write on them (a buffering proxy, a stalled server). */
  silent = false;
  constructor() {
    this.server = createServer((req, res) => this.handle(req, res));
  }
  async listen(port = 0): Promise<this> {
    await new Promise<void>((r) => this.server.listen(port, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }
  handle(req: IncomingMessage, res: ServerResponse): void {
    const u = new URL(req.url ?? '/', 'http://x');
    if (u.pathname === '/auth/revocations') {
      this.snapshots++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.snapshot));
    } else if (u.pathname === '/auth/revocations/stream') {
      this.streamQueries.push(u.searchParams.get('cursor') ?? '');
      if (this.streamStatus !== 200) {
        res.writeHead(this.streamStatus).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      if (this.silent) res.flushHeaders();
      else res.write(': hello\n\n');
      this.streams.push(res);
    } else {
      res.writeHead(404).end();
    }
  }
  send(text: string): void {
    for (const s of this.streams) if (!s.writableEnded) s.write(text);
  }
  revoke(entry: unknown, id: string): void {
    this.send(`event: revocation\nid: ${id}\ndata: ${JSON.stringify(entry)}\n\n`);
  }
  dropStreams(): void {
    for (const s of this.streams) s.destroy();
    this.streams = [];
  }
  close(): Promise<void> {
    this.dropStreams();
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups) await c();
});

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await delay(10);
  }
}

async function setup(opts: Partial<ConstructorParameters<typeof RevocationFeedClient>[0]> = {}) {
  const feed = await new FakeFeed().listen();
  const set = new RevocationSet({ maxStalenessMs: 60_000 });
  const client = new RevocationFeedClient({
    issuer: feed.url,
    set,
    initialBackoffMs: 20,
    maxBackoffMs: 100,
    ...opts,
  });
  cleanups.push(
    () => client.stop(),
    () => feed.close(),
  );
  return { feed, set, client };
}

test('SSE parser: fields, multi-line data, CRLF, comments, split chunks', () => {
  const events: SseEvent[] = [];
  let comments = 0;
  const p = new SseParser(
    (e) => events.push(e),
    () => comments++,
  );
  const text =
    ': hi\r\nevent: revocation\r\nid: 7\r\ndata: {"a":\r\ndata: 1}\r\n\r\nevent: heartbeat\n\ndata: x\n\n';
  for (const ch of text) p.push(ch);
  assert.equal(comments, 1);
  assert.deepEqual(events, [
    { event: 'revocation', data: '{"a":\n1}', id: '7' },
    { event: 'heartbeat', data: '', id: '7' },
    { event: 'message', data: 'x', id: '7' },
  ]);
});

test('SSE parser: a chunk ending in a lone \\r dispatches at once; a \\n opening the next is its pair', () => {
  const events: SseEvent[] = [];
  const p = new SseParser((e) => events.push(e));
  p.push('data: a\r\r');
  assert.deepEqual(events, [{ event: 'message', data: 'a', id: undefined }], 'no wait for the next chunk');
  // CRLF split across chunks: the \n is the second half of the \r, not an empty line.
  p.push('data: b\r');
  p.push('');
  p.push('\ndata: c\r');
  p.push('\n\r');
  assert.deepEqual(events.slice(1), [{ event: 'message', data: 'b\nc', id: undefined }]);
  // Lone \r line ends in separate chunks, then a plain \n.
  p.push('data: d\r');
  p.push('\r');
  p.push('\n');
  assert.deepEqual(events.slice(2), [{ event: 'message', data: 'd', id: undefined }]);
});

test('snapshot, then live events; fails closed before the first snapshot', async () => {
  const { feed, set, client } = await setup();
  assert.equal(set.check({ sid: 's0' }, Date.now()), 'feed_stale', 'stale until the snapshot is in');
  feed.snapshot = { cursor: '10', entries: [{ sid: 's1', expires_at: future() }, { bogus: true }] };
  await client.start();
  assert.equal(set.check({ sid: 's1' }, Date.now()), 'token_revoked');
  assert.equal(set.check({ sid: 's2' }, Date.now()), null);
  await until(() => feed.streams.length === 1);
  assert.deepEqual(feed.streamQueries, ['10']);
  feed.revoke({ sid: 's2', expires_at: future() }, '11');
  feed.revoke({ sub: 'u1', not_before: 1000, expires_at: future() }, '12');
  await until(() => client.cursor === '12');
  assert.equal(set.check({ sid: 's2' }, Date.now()), 'token_revoked');
  assert.equal(set.isRevoked({ sub: 'u1', iat: 999 }), true);
  assert.equal(set.isRevoked({ sub: 'u1', iat: 1000 }), false);
});

test('reconnects with backoff and resumes from its cursor', async () => {
  const { feed, set, client } = await setup();
  await client.start();
  await until(() => feed.streams.length === 1);
  feed.revoke({ sid: 'a', expires_at: future() }, '5');
  await until(() => client.cursor === '5');
  feed.dropStreams();
  await until(() => feed.streams.length === 1);
  assert.deepEqual(feed.streamQueries, ['0', '5']);
  assert.equal(feed.snapshots, 1, 'no new snapshot when the cursor is still good');
  feed.revoke({ sid: 'b', expires_at: future() }, '6');
  await until(() => set.isRevoked({ sid: 'b' }));
});

test('a cursor the server no longer knows (410) leads to a fresh snapshot', async () => {
  const { feed, client } = await setup();
  await client.start();
  await until(() => feed.streams.length === 1);
  feed.streamStatus = 410;
  feed.dropStreams();
  feed.snapshot = { cursor: '99', entries: [] };
  await until(() => feed.snapshots >= 2);
  feed.streamStatus = 200;
  await until(() => feed.streams.length === 1);
  assert.equal(feed.streamQueries.at(-1), '99');
});

test('staleness: heartbeats keep the set fresh; silence makes it fail closed', async () => {
  let t = Date.now();
  const feed = await new FakeFeed().listen();
  const set = new RevocationSet({ maxStalenessMs: 5_000, clock: () => t });
  const client = new RevocationFeedClient({ issuer: feed.url, set, initialBackoffMs: 20 });
  cleanups.push(
    () => client.stop(),
    () => feed.close(),
  );
  await client.start();
  await until(() => feed.streams.length === 1);
  t += 4_000;
  assert.equal(set.check({ sid: 'x' }, t), null);
  t += 2_000;
  assert.equal(set.check({ sid: 'x' }, t), 'feed_stale');
  feed.send('event: heartbeat\ndata: {}\n\n');
  await until(() => set.lastEventAt === t);
  assert.equal(set.check({ sid: 'x' }, t), null);
  t += 6_000;
  feed.send(': keep-alive\n\n');
  await until(() => set.lastEventAt === t);
  assert.equal(set.check({ sid: 'x' }), null);
});

test('account server down at start: start() rejects, the client keeps retrying and recovers', async () => {
  const probe = await new FakeFeed().listen();
  const port = Number(new URL(probe.url).port);
  await probe.close();
  const set = new RevocationSet({ maxStalenessMs: 60_000 });
  const errors: Error[] = [];
  const client = new RevocationFeedClient({
    issuer: `http://127.0.0.1:${port}`,
    set,
    initialBackoffMs: 20,
    maxBackoffMs: 50,
    onError: (e) => errors.push(e),
  });
  cleanups.push(() => client.stop());
  await assert.rejects(client.start());
  await until(() => errors.length >= 3);
  const feed = await new FakeFeed().listen(port);
  cleanups.push(() => feed.close());
  feed.snapshot = { cursor: '1', entries: [{ sid: 'late', expires_at: future() }] };
  await until(() => set.isRevoked({ sid: 'late' }) && feed.streams.length === 1);
  assert.equal(set.isStale(), false);
});

test('a silent half-open stream is abandoned after the idle timeout', async () => {
  const { feed, client } = await setup({ idleTimeoutMs: 150 });
  await client.start();
  await until(() => client.connections >= 2, 3000);
  assert.ok(feed.streamQueries.length >= 2);
});

test('a stream that opens and never speaks does not keep the set fresh, however often it reconnects', async () => {
  let t = Date.now();
  const feed = await new FakeFeed().listen();
  const set = new RevocationSet({ maxStalenessMs: 5_000, clock: () => t });
  const client = new RevocationFeedClient({
    issuer: feed.url,
    set,
    initialBackoffMs: 20,
    maxBackoffMs: 50,
    idleTimeoutMs: 100,
  });
  cleanups.push(
    () => client.stop(),
    () => feed.close(),
  );
  feed.silent = true;
  await client.start(); // the snapshot: fresh from here
  t += 6_000;
  const connected = client.connections;
  await until(() => client.connections >= connected + 2);
  assert.equal(set.check({ sid: 'x' }, t), 'feed_stale');
  feed.silent = false;
  feed.dropStreams();
  await until(() => set.lastEventAt === t);
  assert.equal(set.check({ sid: 'x' }, t), null, 'fresh again once the server speaks');
});

test('RevocationSet: entry validation and pruning', () => {
  let t = 1_000_000_000_000;
  const set = new RevocationSet({ clock: () => t, retentionMarginSeconds: 10 });
  assert.equal(set.add({ sid: 's', expires_at: t / 1000 + 60 }), true);
  assert.equal(set.add({ sid: '', expires_at: t / 1000 + 60 }), false);
  assert.equal(set.add({ sub: 'u', expires_at: t / 1000 + 60 }), false, 'sub needs not_before');
  assert.equal(set.add({ sid: 'old', expires_at: t / 1000 - 100 }), false, 'already expired');
  assert.equal(set.add('nope'), false);
  assert.equal(set.has({ sid: 's' }), true);
  t += 71_000;
  assert.equal(set.prune(), 1);
  assert.equal(set.size, 0);
  assert.equal(set.isStale(), false, 'no staleness bound: never stale');
});
