// @fastify/session with a Redis store (connect-redis, the store its documentation pairs it with),
// beside a route of the same Fastify app outside the session plugin (the ceiling):
//   GET /open       no auth (the ceiling)     POST /login   starts a session (Set-Cookie)
//   GET /protected  401 without a session user
// Env: PORT, BENCH_REDIS_URL.
import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import { RedisStore } from 'connect-redis';
import Fastify from 'fastify';
import { createClient } from 'redis';

declare module 'fastify' {
  interface Session {
    user?: { sub: string };
  }
}

const env = process.env;
const redis = createClient({ url: env.BENCH_REDIS_URL });
await redis.connect();
const app = Fastify({ logger: false });

app.get('/healthz', async () => ({ status: 'ok' }));
app.get('/open', async () => ({ sub: 'anonymous' }));
await app.register(async (scope) => {
  await scope.register(fastifyCookie);
  await scope.register(fastifySession, {
    secret: 'a bench secret of at least thirty-two characters',
    store: new RedisStore({ client: redis, prefix: 'fsess:' }) as never,
    saveUninitialized: false,
    cookie: { secure: false, httpOnly: true, maxAge: 3_600_000 },
  });
  scope.post('/login', async (request) => {
    request.session.set('user', { sub: `user-${Math.random().toString(36).slice(2)}` });
    return { ok: true };
  });
  scope.get('/protected', async (request, reply) => {
    const user = request.session.get('user');
    if (!user) return reply.code(401).send({ error: 'no_session' });
    return { sub: user.sub };
  });
});

await app.listen({ port: Number(env.PORT), host: '127.0.0.1' });
process.once(
  'SIGTERM',
  () =>
    void app
      .close()
      .then(() => redis.quit())
      .then(() => process.exit(0)),
);
