// Better Auth on its own SQLite file (better-sqlite3), mounted on Express as its documentation
// shows (toNodeHandler), with a route of the same app without it (the ceiling). Two Better Auth
// instances share the file and the secret: one with the session cookie cache, one without.
//   GET /open                no auth (the ceiling)
//   GET /protected-nocache   auth.api.getSession, no cookie cache (a database read per request)
//   GET /protected-cache     the same with cookieCache { maxAge: BENCH_COOKIE_CACHE_SECONDS }
//   /api/auth/*              Better Auth's own routes (sign-up, sign-in, sign-out), cookie-cache instance
// Env: PORT, DATA_DIR, BENCH_COOKIE_CACHE_SECONDS (default 300, Better Auth's default).
import path from 'node:path';
import { betterAuth } from 'better-auth';
import { getMigrations } from 'better-auth/db/migration';
import { fromNodeHeaders, toNodeHandler } from 'better-auth/node';
import Database from 'better-sqlite3';
import express from 'express';

const env = process.env;
const port = Number(env.PORT);
const baseURL = `http://127.0.0.1:${port}`;
const db = new Database(path.join(env.DATA_DIR!, 'better-auth.sqlite'));
db.pragma('journal_mode = WAL');
const common = {
  database: db,
  baseURL,
  secret: 'a bench secret of at least thirty-two characters',
  emailAndPassword: { enabled: true },
  rateLimit: { enabled: false },
  telemetry: { enabled: false },
};
const cached = betterAuth({
  ...common,
  session: { cookieCache: { enabled: true, maxAge: Number(env.BENCH_COOKIE_CACHE_SECONDS ?? 300) } },
});
const uncached = betterAuth({ ...common, session: { cookieCache: { enabled: false } } });
const { runMigrations } = await getMigrations(cached.options);
await runMigrations();

const app = express();
app.disable('x-powered-by');
app.disable('etag');
app.get('/healthz', (_req, res) => {
  res.json({ status: 'ok' });
});
app.get('/open', (_req, res) => {
  res.json({ sub: 'anonymous' });
});
app.all('/api/auth/{*any}', toNodeHandler(cached));
for (const [route, auth] of [
  ['/protected-cache', cached],
  ['/protected-nocache', uncached],
] as const) {
  app.get(route, async (req, res) => {
    const session = await auth.api.getSession({ headers: fromNodeHeaders(req.headers) });
    if (!session) {
      res.status(401).json({ error: 'no_session' });
      return;
    }
    res.json({ sub: session.user.id });
  });
}

const server = app.listen(port, '127.0.0.1');
process.once('SIGTERM', () => server.close(() => process.exit(0)));
