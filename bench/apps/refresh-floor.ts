// The least a refresh-token rotation can do, as one Fastify route: the floor the account server's
// /auth/refresh is measured against. One SQLite table (WAL, synchronous NORMAL), one transaction per
// rotation (read the token, check its secret's hash, mark it used, insert the successor), one ES256
// access token signed on the thread pool. No sessions, users, throttle, metrics or audit.
//   POST /auth/login    {} → a new chain's first refresh token
//   POST /auth/refresh  {refresh_token} → {access_token, refresh_token}
// Env: PORT, DATA_DIR.
import { createHash, generateKeyPairSync, randomBytes, sign, timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';
import Fastify from 'fastify';

const env = process.env;
const db = new Database(path.join(env.DATA_DIR!, 'floor.db'));
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec(`CREATE TABLE IF NOT EXISTS refresh_tokens (
  id TEXT PRIMARY KEY, user_id TEXT NOT NULL, secret_hash TEXT NOT NULL,
  expires_at INTEGER NOT NULL, used_at INTEGER) WITHOUT ROWID`);
const select = db.prepare(
  'SELECT user_id, secret_hash, expires_at, used_at FROM refresh_tokens WHERE id = ?',
);
const spend = db.prepare('UPDATE refresh_tokens SET used_at = ? WHERE id = ?');
const insert = db.prepare(
  'INSERT INTO refresh_tokens (id, user_id, secret_hash, expires_at) VALUES (?, ?, ?, ?)',
);
const TTL_MS = 14 * 24 * 3600_000;
const hash = (secret: string) => createHash('sha256').update(secret).digest();

function newToken(userId: string, now: number): string {
  const bytes = randomBytes(48);
  const id = bytes.toString('base64url', 0, 16);
  const secret = bytes.toString('base64url', 16);
  insert.run(id, userId, hash(secret), now + TTL_MS);
  return `${id}.${secret}`;
}

const rotate = db.transaction(
  (id: string, secret: string, now: number): { userId: string; token: string } | null => {
    const row = select.get(id) as
      | { user_id: string; secret_hash: Buffer; expires_at: number; used_at: number | null }
      | undefined;
    if (
      !row ||
      row.used_at !== null ||
      row.expires_at <= now ||
      !timingSafeEqual(row.secret_hash, hash(secret))
    )
      return null;
    spend.run(now, id);
    return { userId: row.user_id, token: newToken(row.user_id, now) };
  },
);

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const header = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'at+jwt', kid: 'floor' })).toString(
  'base64url',
);
function accessToken(sub: string): Promise<string> {
  const iat = Math.floor(Date.now() / 1000);
  const claims = {
    iss: 'http://floor',
    sub,
    aud: 'api',
    exp: iat + 300,
    iat,
    jti: randomBytes(16).toString('base64url'),
  };
  const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return new Promise((resolve, reject) =>
    sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }, (err, sig) =>
      err ? reject(err) : resolve(`${input}.${sig.toString('base64url')}`),
    ),
  );
}

const app = Fastify({ logger: false });
app.get('/healthz', async () => ({ status: 'ok' }));
app.post('/auth/login', async () => ({
  refresh_token: db
    .transaction(() => newToken(`user-${randomBytes(6).toString('hex')}`, Date.now()))
    .immediate(),
}));
app.post<{ Body: { refresh_token?: unknown } }>('/auth/refresh', async (request, reply) => {
  const token = request.body?.refresh_token;
  const dot = typeof token === 'string' ? token.indexOf('.') : -1;
  const rotated =
    dot > 0
      ? rotate.immediate((token as string).slice(0, dot), (token as string).slice(dot + 1), Date.now())
      : null;
  if (!rotated) return reply.code(401).send({ error: 'invalid_refresh_token' });
  return {
    access_token: await accessToken(rotated.userId),
    token_type: 'Bearer',
    expires_in: 300,
    refresh_token: rotated.token,
  };
});

await app.listen({ port: Number(env.PORT), host: '127.0.0.1' });
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
