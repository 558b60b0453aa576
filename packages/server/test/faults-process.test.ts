// kill -9 of an account-server process in the middle of a refresh storm: clients retry on the
// other instance; no session is lost and no refresh token ever gets two children.
// Runs the real CLI (`tessera serve`) against a fresh PostgreSQL database and a throwaway Redis.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import pg from 'pg';
import { sessionIdOfRefreshToken } from '../src/store/ports.js';
import { call, freePort, PASSWORD, SECRET, uniqueName } from './helpers.js';
import { redisRefreshTokens, redisSessions } from './services.js';

const MAIN = path.resolve(import.meta.dirname, '../src/cli/main.ts');
const databaseUrl = process.env.TESSERA_TEST_DATABASE_URL;
const hasRedisServer = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
const skip = !databaseUrl
  ? 'PostgreSQL not reachable: TESSERA_TEST_DATABASE_URL unset'
  : !hasRedisServer
    ? 'no redis-server binary on PATH'
    : undefined;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const children = new Set<ChildProcess>();
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch(() => undefined);
});
process.once('exit', () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port}`);
    await sleep(50);
  }
}

/** A refresh answer, or the network error a killed process leaves behind. */
async function refresh(
  base: string,
  token: string,
): Promise<{ status: number; body: any } | { error: string }> {
  try {
    return await call(base, 'POST', '/auth/refresh', { body: { refresh_token: token } });
  } catch (err) {
    return { error: String((err as Error).cause ?? err) };
  }
}

describe('faults: kill -9 of an instance during a refresh storm', { skip, timeout: 55_000 }, () => {
  it('loses no session and never forks a chain', async (t) => {
    const run = randomBytes(5).toString('hex');
    const dbName = `tessera_fault_${run}`;
    const admin = new pg.Client({ connectionString: databaseUrl });
    await admin.connect();
    cleanups.push(async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await admin.end();
    });
    await admin.query(`CREATE DATABASE ${dbName}`);
    const dbUrl = new URL(databaseUrl!);
    dbUrl.pathname = `/${dbName}`;

    // Redis: our own throwaway server, so the default key prefix and the pub/sub channel are ours alone.
    const redisPort = await freePort();
    const redisDir = mkdtempSync(path.join(tmpdir(), 'tessera-kill-redis-'));
    cleanups.push(() => rmSync(redisDir, { recursive: true, force: true }));
    track(
      spawn(
        'redis-server',
        [
          '--port',
          String(redisPort),
          '--bind',
          '127.0.0.1',
          '--save',
          '',
          '--dir',
          redisDir,
          '--daemonize',
          'no',
        ],
        { stdio: 'ignore' },
      ),
    );
    await waitForPort(redisPort, 5000);

    const [portA, portB] = [await freePort(), await freePort()];
    const issuer = `http://127.0.0.1:${portA}`;
    const dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-kill-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const stderr: string[] = [];
    const instance = (port: number) =>
      track(
        spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve'], {
          cwd: path.resolve(import.meta.dirname, '../../..'),
          env: {
            ...process.env,
            TESSERA_PORT: String(port),
            TESSERA_HOST: '127.0.0.1',
            TESSERA_ISSUER: issuer,
            TESSERA_SECRET: SECRET,
            TESSERA_DATA_DIR: dataDir,
            TESSERA_DATABASE_URL: dbUrl.href,
            TESSERA_REDIS_URL: `redis://127.0.0.1:${redisPort}/0`,
            TESSERA_LOG_LEVEL: 'error',
            TESSERA_REGISTER_PER_IP_PER_HOUR: '100000',
          },
          stdio: ['ignore', 'ignore', 'pipe'],
        }),
      );
    // Start one first so the migrations and the key ring are made once, then the other.
    const procA = instance(portA);
    procA.stderr?.on('data', (d: Buffer) => stderr.push(`A: ${d}`));
    await waitForPort(portA, 20_000);
    const procB = instance(portB);
    procB.stderr?.on('data', (d: Buffer) => stderr.push(`B: ${d}`));
    await waitForPort(portB, 20_000);
    const A = `http://127.0.0.1:${portA}`;
    const B = `http://127.0.0.1:${portB}`;

    // 16 sessions of one user.
    const username = uniqueName('storm');
    assert.equal(
      (await call(A, 'POST', '/auth/register', { body: { username, password: PASSWORD } })).status,
      201,
    );
    const sessions: { sid: string; token: string; refreshes: number }[] = [];
    for (let i = 0; i < 16; i++) {
      const login = await call(i % 2 ? B : A, 'POST', '/auth/login', {
        body: { username, password: PASSWORD, mode: 'token', delivery: 'header' },
      });
      assert.equal(login.status, 200, JSON.stringify(login.body));
      sessions.push({ sid: login.body.session_id, token: login.body.refresh_token, refreshes: 0 });
    }

    // The storm: every session refreshes in a loop, alternating instances. A failed request
    // (connection reset or refused by the killed process) is retried with the same token on the other.
    let aAlive = true;
    let stop = false;
    const problems: string[] = [];
    let retriesAfterKill = 0;
    let committedBeforeRetry = 0;
    // Sessions and refresh tokens live in Redis (key layout: src/store/redis-sessions.ts).
    const redisUrl = `redis://127.0.0.1:${redisPort}/0`;
    const probe = new Redis(redisUrl);
    cleanups.push(async () => {
      await probe.quit();
    });
    const worker = async (s: (typeof sessions)[number], index: number) => {
      let turn = index;
      while (!stop) {
        const first = aAlive && turn++ % 2 === 0 ? A : B;
        let answer = await refresh(first, s.token);
        if ('error' in answer || answer.status === 503) {
          retriesAfterKill++;
          // Did the dead process commit this rotation before it died (so only its answer was lost)?
          const id = s.token.split('.')[0]!;
          const used = await probe.hget(`tessera:s:{${sessionIdOfRefreshToken(id)}}:rt:${id}`, 'usedAt');
          if (used !== null) committedBeforeRetry++;
          answer = await refresh(first === A ? B : A, s.token);
        }
        if ('error' in answer) {
          problems.push(`${s.sid}: ${answer.error}`);
          return;
        }
        if (answer.status !== 200) {
          problems.push(`${s.sid}: ${answer.status} ${JSON.stringify(answer.body)}`);
          return;
        }
        s.token = answer.body.refresh_token;
        s.refreshes++;
      }
    };
    const storm = Promise.all(sessions.map((s, i) => worker(s, i)));
    await sleep(1500);
    procA.kill('SIGKILL');
    const killedAt = Date.now();
    await new Promise((resolve) => procA.once('exit', resolve));
    aAlive = false;
    await sleep(1500);
    stop = true;
    await storm;
    t.diagnostic(
      `${sessions.reduce((n, s) => n + s.refreshes, 0)} refreshes; ${retriesAfterKill} retried on B after the kill, ${committedBeforeRetry} of them after the dead process had committed (${Date.now() - killedAt} ms after)`,
    );
    assert.deepEqual(problems, [], `clients lost their session:\n${problems.join('\n')}\n${stderr.join('')}`);

    // Every session is alive on the survivor, and its latest refresh token still works.
    for (const s of sessions) {
      const r = await call(B, 'POST', '/auth/refresh', { body: { refresh_token: s.token } });
      assert.equal(r.status, 200, `${s.sid}: ${r.status} ${JSON.stringify(r.body)}`);
      const me = await call(B, 'GET', '/auth/me', {
        headers: { authorization: `Bearer ${r.body.access_token}` },
      });
      assert.equal(me.status, 200);
      assert.equal(me.body.session.id, s.sid);
    }

    const tokens = await redisRefreshTokens(redisUrl, 'tessera:');
    const children = new Map<string, number>();
    for (const tk of tokens) if (tk.parentId) children.set(tk.parentId, (children.get(tk.parentId) ?? 0) + 1);
    assert.deepEqual(
      [...children].filter(([, n]) => n > 1),
      [],
      'a refresh token with two children: a second chain',
    );
    const revoked = (await redisSessions(redisUrl, 'tessera:')).filter((x) => x.revokeReason !== null);
    assert.deepEqual(revoked, [], 'no session was revoked (no false reuse detection)');
    assert.ok(tokens.length > sessions.length * 2, 'the storm did rotate');

    procB.kill('SIGTERM');
    await new Promise((resolve) => (procB.exitCode === null ? procB.once('exit', resolve) : resolve(null)));
  });
});
