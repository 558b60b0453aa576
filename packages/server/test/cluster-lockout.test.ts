// Two account-server instances sharing PostgreSQL and the Redis counters: a burst split between
// them checks no more attempts than one instance alone would.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  type Answer,
  call,
  PASSWORD,
  registerAndLogin,
  startTestServer,
  type TestServer,
} from './helpers.js';
import { databaseUrl, deleteRedisKeys, dropSchemas, redisUrl, skipWithoutPgAndRedis } from './services.js';

const skip = skipWithoutPgAndRedis;

const run = randomBytes(6).toString('hex');
const schema = `tessera_test_${run}_lockout`;
const prefix = `tessera:test:${run}:lockout:`;

function tally(answers: Answer[]): Map<number, number> {
  const statuses = new Map<number, number>();
  for (const a of answers) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
  return statuses;
}

describe('cluster: lockouts hold across instances under concurrency', { skip, timeout: 60_000 }, () => {
  let a: TestServer;
  let b: TestServer;

  const instance = async () =>
    startTestServer({
      trustProxy: ['127.0.0.1'],
      loginMaxFailuresPerAccount: 5,
      loginMaxFailuresPerIp: 50,
      databaseUrl,
      databaseSchema: schema,
      redisUrl,
      redisPrefix: prefix,
    });

  before(async () => {
    a = await instance();
    b = await instance();
  });

  after(async () => {
    await a?.close();
    await b?.close();
    if (skip) return;
    await dropSchemas(databaseUrl!, [schema]);
    await deleteRedisKeys(redisUrl!, prefix);
  });

  const either = (i: number) => (i % 2 === 0 ? a.url : b.url);

  it('60 logins at once on one account, split over A and B: at most 5 are checked', async () => {
    const { username } = await registerAndLogin(a.url, { mode: 'session', delivery: 'header' });
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        call(either(i), 'POST', '/auth/login', {
          body: { username, password: i === 59 ? PASSWORD : `wrong guess ${i}` },
          headers: { 'x-forwarded-for': `203.0.113.${i + 1}` },
        }),
      ),
    );
    const statuses = tally(answers);
    assert.equal(statuses.get(200) ?? 0, 0, `the burst got in: ${JSON.stringify([...statuses])}`);
    assert.ok((statuses.get(401) ?? 0) <= 5, `more than 5 checked: ${JSON.stringify([...statuses])}`);
    assert.equal((statuses.get(401) ?? 0) + (statuses.get(429) ?? 0), 60);
    for (const r of answers.filter((x) => x.status === 429))
      assert.ok(Number(r.headers.get('retry-after')) >= 1);
  });

  it('60 logins at once from one address, split over A and B: at most 50 are checked', async () => {
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        call(either(i), 'POST', '/auth/login', {
          body: { username: `nobody${run}x${i}`, password: 'some password here' },
          headers: { 'x-forwarded-for': '198.51.100.77' },
        }),
      ),
    );
    const statuses = tally(answers);
    assert.ok((statuses.get(401) ?? 0) <= 50, `more than 50 checked: ${JSON.stringify([...statuses])}`);
    assert.equal((statuses.get(401) ?? 0) + (statuses.get(429) ?? 0), 60);
  });

  it('60 password changes at once, split over A and B: at most 5 are checked', async () => {
    const { login } = await registerAndLogin(a.url, { mode: 'session', delivery: 'header' });
    const token = login.body.session_token as string;
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        call(either(i), 'POST', '/auth/password', {
          body: {
            current_password: i === 59 ? PASSWORD : `wrong guess ${i}`,
            new_password: 'a brand new passphrase',
          },
          headers: { authorization: `Bearer ${token}` },
        }),
      ),
    );
    const statuses = tally(answers);
    assert.equal(
      statuses.get(204) ?? 0,
      0,
      `the burst changed the password: ${JSON.stringify([...statuses])}`,
    );
    assert.ok((statuses.get(401) ?? 0) <= 5, `more than 5 checked: ${JSON.stringify([...statuses])}`);
    assert.equal((statuses.get(401) ?? 0) + (statuses.get(429) ?? 0), 60);
  });

  it('150 invalid refresh tokens at once from one address, split over A and B: at most 100 are looked at', async () => {
    const answers = await Promise.all(
      Array.from({ length: 150 }, (_, i) =>
        call(either(i), 'POST', '/auth/refresh', {
          body: { refresh_token: `${String(i).padStart(22, 'a')}.${'b'.repeat(43)}` },
          headers: { 'x-forwarded-for': '198.51.100.51' },
        }),
      ),
    );
    const statuses = tally(answers);
    assert.ok((statuses.get(401) ?? 0) <= 100, `more than 100 looked at: ${JSON.stringify([...statuses])}`);
    assert.equal((statuses.get(401) ?? 0) + (statuses.get(429) ?? 0), 150);
  });
});
