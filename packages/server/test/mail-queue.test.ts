// The mail queue lives in the store: mails queued while the mail server is down survive a restart
// and are sent once it is back, exactly once, also with two instances draining one PostgreSQL;
// and what the store holds of a mail is sealed, never its address or the token in its links.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Config } from '../src/config.js';
import { deriveSecrets } from '../src/domain/secrets.js';
import { MailQueue } from '../src/mail/queue.js';
import { closeStores } from '../src/store/open.js';
import { openSqliteStores } from '../src/store/sqlite.js';
import { unseal } from '../src/util/crypto.js';
import { call, freePort, PASSWORD, SECRET, startTestServer, type TestServer, uniqueName } from './helpers.js';
import { linkToken, startSmtp, type TestSmtp } from './mail.js';
import { databaseUrl, dropSchemas } from './services.js';

type Row = Record<string, unknown>;

const FROM = 'Acme Accounts <accounts@acme.test>';

async function register(srv: TestServer): Promise<{ username: string; email: string }> {
  const username = uniqueName('queued');
  const email = `${username}@example.test`;
  const reg = await call(srv.url, 'POST', '/auth/register', {
    body: { username, password: PASSWORD, email },
  });
  assert.equal(reg.status, 201, 'a mail server that is down fails no request');
  return { username, email };
}

/** /readyz once it reports `queued` mails and a failed attempt among them. */
async function readyWhenRetrying(srv: TestServer, queued: number) {
  let ready = await call(srv.url, 'GET', '/readyz');
  for (let i = 0; i < 500 && !(ready.body.mail.retrying && ready.body.mail.queued === queued); i++) {
    await delay(20);
    ready = await call(srv.url, 'GET', '/readyz');
  }
  assert.equal(ready.status, 200);
  assert.deepEqual(ready.body.mail, { transport: 'smtp', queued, retrying: true });
}

/**
 * What the store holds of each mail: neither the address, nor the name, nor the link's token in
 * any column; the mail itself only sealed under the server's key, bound to its row.
 */
function assertSealed(rows: Row[], secrets: string[]): string[] {
  const key = deriveSecrets(SECRET).mailQueue;
  return rows.map((row) => {
    const stored = JSON.stringify(row).toLowerCase();
    for (const s of secrets) assert.ok(!stored.includes(s.toLowerCase()), 'nothing of the mail in plaintext');
    const opened = unseal(String(row.sealed), key, String(row.id)).toString('utf8');
    assert.throws(() => unseal(String(row.sealed), key, 'another-row'), 'bound to its row');
    return opened;
  });
}

describe('mail queue: a restart while the mail server is down', () => {
  const closing: (() => Promise<void>)[] = [];
  after(async () => {
    for (const close of closing.reverse()) await close();
  });

  it('keeps the mail in the data folder, and the next start sends it once the server is back', async () => {
    const smtp = await startSmtp(await freePort(), { listen: false });
    closing.push(() => smtp.stop());
    const dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-queue-'));
    const file = path.join(dataDir, 'tessera.sqlite');
    const overrides: Partial<Config> = { smtpUrl: smtp.url, mailFrom: FROM, mailRetrySeconds: 1, dataDir };

    const first = await startTestServer(overrides, { stores: openSqliteStores(file) });
    closing.push(() => first.close());
    const { username, email } = await register(first);
    await readyWhenRetrying(first, 1);
    const raw = new Database(file, { readonly: true });
    const rows = raw.prepare('SELECT * FROM mail_queue').all() as Row[];
    raw.close();
    assert.equal(rows.length, 1);
    await first.close();

    const second = await startTestServer(overrides, { stores: openSqliteStores(file) });
    closing.push(() => second.close());
    const ready = await call(second.url, 'GET', '/readyz');
    assert.equal(ready.body.mail.queued, 1, 'the new instance finds the mail in the store');

    await smtp.listen();
    const mail = await smtp.waitFor(email, /Confirm your email address/);
    await second.tessera.email.settled();
    assert.equal(smtp.to(email).length, 1, 'sent once');
    const after = await call(second.url, 'GET', '/readyz');
    assert.deepEqual(after.body.mail, { transport: 'smtp', queued: 0, retrying: false });
    const token = linkToken(mail, 'verify-email');
    const verified = await call(second.url, 'POST', '/auth/email/verify', { body: { token } });
    assert.equal(verified.status, 200, 'its link works');

    const [opened] = assertSealed(rows, [email, username, token]);
    assert.ok(opened?.includes(token), 'the sealed row was that mail');
    const check = new Database(file, { readonly: true });
    assert.equal((check.prepare('SELECT count(*) AS n FROM mail_queue').get() as { n: number }).n, 0, 'gone');
    check.close();
  });
});

describe('mail queue: two instances on one PostgreSQL', {
  skip: databaseUrl ? undefined : 'PostgreSQL not reachable',
}, () => {
  const schema = `tessera_test_${randomBytes(6).toString('hex')}_mail`;
  let smtp: TestSmtp | undefined;
  const servers: TestServer[] = [];
  after(async () => {
    for (const s of servers) await s.close();
    await smtp?.stop();
    if (databaseUrl) await dropSchemas(databaseUrl, [schema]);
  });

  it('sends each mail they queued while the mail server was down once, whichever instance sends it', async () => {
    smtp = await startSmtp(await freePort(), { listen: false });
    const overrides: Partial<Config> = {
      databaseUrl,
      databaseSchema: schema,
      smtpUrl: smtp.url,
      mailFrom: FROM,
      mailRetrySeconds: 1,
      metricsToken: undefined,
    };
    const a = await startTestServer(overrides);
    servers.push(a);
    const b = await startTestServer(overrides);
    servers.push(b);
    const users = [];
    for (const srv of [a, b, a, b, a, b]) users.push(await register(srv));
    await readyWhenRetrying(b, users.length);

    const admin = new pg.Client({ connectionString: databaseUrl });
    await admin.connect();
    let rows: Row[];
    try {
      rows = (await admin.query(`SELECT * FROM ${schema}.mail_queue`)).rows;
    } finally {
      await admin.end();
    }
    assert.equal(rows.length, users.length);
    assertSealed(
      rows,
      users.flatMap((u) => [u.email, u.username]),
    );

    await smtp.listen();
    for (const u of users) await smtp.waitFor(u.email, /Confirm your email address/);
    await Promise.all([a.tessera.email.settled(), b.tessera.email.settled()]);
    for (const u of users) assert.equal(smtp.to(u.email).length, 1, `one mail to ${u.email}`);
    assert.equal(smtp.mails.length, users.length);
    const sent = a.tessera.mail.counts.sent + b.tessera.mail.counts.sent;
    assert.equal(sent, users.length, 'the instances sent them between them, each once');
  });
});

describe('the development outbox', () => {
  /** One mail through the outbox of a server with this issuer; what the log said of it. */
  async function logged(issuer: string): Promise<Record<string, unknown>[]> {
    const stores = openSqliteStores(':memory:');
    const dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-outbox-'));
    const queue = MailQueue.fromConfig(
      { smtpUrl: undefined, mailFrom: FROM, mailRetrySeconds: 60, dataDir, issuer },
      stores.mail,
      randomBytes(32),
    );
    const lines: Record<string, unknown>[] = [];
    queue.log = { info: (fields) => lines.push(fields), warn: (fields) => lines.push(fields) };
    try {
      queue.start();
      await queue.enqueue({
        to: 'a@example.test',
        subject: 'Reset your password',
        text: 'https://id.example.test/reset-password?token=secret-token',
        html: '<p>reset</p>',
        links: [`${issuer}/reset-password?token=secret-token`],
      });
      await queue.idle();
      assert.equal(readdirSync(path.join(dataDir, 'outbox')).length, 1, 'the mail is in the outbox folder');
      return lines;
    } finally {
      await queue.close();
      await closeStores(stores);
    }
  }

  it('prints the links of a mail in the log with an http issuer, a development server', async () => {
    const lines = await logged('http://127.0.0.1:3000');
    assert.equal(lines.length, 1);
    assert.deepEqual(lines[0]!.links, ['http://127.0.0.1:3000/reset-password?token=secret-token']);
  });

  it('keeps the links, one-time tokens, out of the log with an https issuer', async () => {
    const lines = await logged('https://id.example.test');
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.subject, 'Reset your password');
    assert.ok(typeof lines[0]!.file === 'string', 'the log names the file the mail is in');
    assert.ok(!JSON.stringify(lines).includes('secret-token'), 'no token in the log');
  });
});
