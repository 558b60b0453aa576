// The revocation feed: snapshot with cursor, live SSE stream that resumes from a cursor.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call, registerAndLogin, startTestServer, type TestServer } from './helpers.js';

let srv: TestServer;
before(async () => {
  srv = await startTestServer({}, { realClock: true });
});
after(async () => {
  await srv.close();
});

interface Event {
  event: string;
  id?: string;
  data: any;
}

/** Reads SSE events from a stream until `until` says stop or the timeout passes. */
async function readEvents(
  url: string,
  until: (events: Event[]) => boolean,
  headers: Record<string, string> = {},
  timeoutMs = 5000,
): Promise<Event[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const events: Event[] = [];
  try {
    const res = await fetch(url, { headers, signal: controller.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let cut = buffer.indexOf('\n\n');
      while (cut >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const ev: Event = { event: 'message', data: undefined };
        for (const line of block.split('\n')) {
          const [k, ...rest] = line.split(': ');
          const v = rest.join(': ');
          if (k === 'event') ev.event = v;
          else if (k === 'id') ev.id = v;
          else if (k === 'data') ev.data = JSON.parse(v);
        }
        if (ev.data !== undefined) events.push(ev);
        cut = buffer.indexOf('\n\n');
      }
      if (until(events)) break;
    }
  } catch (err) {
    if ((err as Error).name !== 'AbortError') throw err;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return events;
}

describe('revocation feed', () => {
  it('snapshot lists logout and logout-all entries with a cursor', async () => {
    const start = (await call(srv.url, 'GET', '/auth/revocations')).body.cursor as number;
    const a = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    await call(srv.url, 'POST', '/auth/logout', {
      headers: { authorization: `Bearer ${a.login.body.access_token}` },
    });
    const snap = await call(srv.url, 'GET', `/auth/revocations?cursor=${start}`);
    assert.equal(snap.status, 200);
    assert.equal(snap.body.entries.length, 1);
    const [entry] = snap.body.entries;
    assert.equal(entry.sid, a.login.body.session_id);
    assert.ok(entry.expires_at > Date.now() / 1000 + 300, 'kept past the longest access token');
    assert.equal(snap.body.cursor, entry.cursor);
    assert.deepEqual(
      (await call(srv.url, 'GET', `/auth/revocations?cursor=${snap.body.cursor}`)).body.entries,
      [],
    );

    const b = await registerAndLogin(srv.url, { mode: 'session', delivery: 'header' });
    await call(srv.url, 'POST', '/auth/logout-all', {
      headers: { authorization: `Bearer ${b.login.body.session_token}` },
    });
    const all = (await call(srv.url, 'GET', `/auth/revocations?cursor=${snap.body.cursor}`)).body.entries;
    assert.ok(all.some((e: { sid?: string }) => e.sid === b.login.body.session_id));
    assert.ok(
      all.some(
        (e: { sub?: string; not_before?: number }) =>
          typeof e.sub === 'string' && typeof e.not_before === 'number',
      ),
    );
  });

  it('streams live entries within milliseconds, with heartbeats', async () => {
    const { login } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    const start = (await call(srv.url, 'GET', '/auth/revocations')).body.cursor as number;
    let loggedOutAt = 0;
    const stream = readEvents(`${srv.url}/auth/revocations/stream?cursor=${start}`, (events) => {
      if (events.length === 1 && loggedOutAt === 0) {
        loggedOutAt = performance.now();
        void call(srv.url, 'POST', '/auth/logout', {
          headers: { authorization: `Bearer ${login.body.access_token}` },
        });
      }
      return events.some((e) => e.event === 'revocation') && events.some((e) => e.event === 'heartbeat');
    });
    const events = await stream;
    assert.equal(events[0]?.event, 'hello');
    const rev = events.find((e) => e.event === 'revocation');
    assert.equal(rev?.data.sid, login.body.session_id);
    assert.equal(rev?.id, String(rev?.data.cursor));
    assert.ok(events.some((e) => e.event === 'heartbeat'));
  });

  it('resumes from Last-Event-ID without losing or repeating entries', async () => {
    const start = (await call(srv.url, 'GET', '/auth/revocations')).body.cursor as number;
    const sessions = await Promise.all(
      [1, 2, 3].map(() => registerAndLogin(srv.url, { mode: 'token', delivery: 'header' })),
    );
    for (const s of sessions)
      await call(srv.url, 'POST', '/auth/logout', {
        headers: { authorization: `Bearer ${s.login.body.access_token}` },
      });
    const snap = (await call(srv.url, 'GET', `/auth/revocations?cursor=${start}`)).body;
    assert.equal(snap.entries.length, 3);
    const firstCursor = snap.entries[0].cursor;
    const events = await readEvents(
      `${srv.url}/auth/revocations/stream`,
      (ev) => ev.filter((e) => e.event === 'revocation').length >= 2,
      { 'last-event-id': String(firstCursor) },
      2000,
    );
    const revs = events.filter((e) => e.event === 'revocation').map((e) => e.data.sid);
    assert.deepEqual(
      revs,
      sessions.slice(1).map((s) => s.login.body.session_id),
    );
  });
});
