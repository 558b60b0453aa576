// express-session with connect-redis, beside a route of the same Express app without it (the ceiling):
//   GET /open       no auth (the ceiling)     POST /login   starts a session (Set-Cookie)
//   GET /protected  401 without a session user
// Env: PORT, BENCH_REDIS_URL.
import { RedisStore } from 'connect-redis';
import express from 'express';
import session from 'express-session';
import { createClient } from 'redis';

declare module 'express-session' {
  interface SessionData {
    user?: { sub: string };
  }
}

const env = process.env;
const redis = createClient({ url: env.BENCH_REDIS_URL });
await redis.connect();
const app = express();
app.disable('x-powered-by');
app.disable('etag');

app.get('/healthz', (_req, res) => {
  res.json({ status: 'ok' });
});
app.get('/open', (_req, res) => {
  res.json({ sub: 'anonymous' });
});
const sessions = session({
  secret: 'a bench secret of at least thirty-two characters',
  store: new RedisStore({ client: redis, prefix: 'esess:' }),
  resave: false,
  saveUninitialized: false,
  cookie: { secure: false, httpOnly: true, maxAge: 3_600_000 },
});
app.post('/login', sessions, (req, res) => {
  req.session.user = { sub: `user-${Math.random().toString(36).slice(2)}` };
  res.json({ ok: true });
});
app.get('/protected', sessions, (req, res) => {
  if (!req.session.user) {
    res.status(401).json({ error: 'no_session' });
    return;
  }
  res.json({ sub: req.session.user.sub });
});

const server = app.listen(Number(env.PORT), '127.0.0.1');
process.once('SIGTERM', () => server.close(() => void redis.quit().then(() => process.exit(0))));
