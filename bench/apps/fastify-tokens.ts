// One Fastify app, one protected route shape behind each token check, all on the same ES256 key:
//   GET /open          no auth (the ceiling)
//   GET /tessera       @tessera/verify through its Fastify preHandler (its defaults: a verified-token cache)
//   GET /fastify-jwt   @fastify/jwt, request.jwtVerify() (its defaults)
//   GET /fast-jwt      fast-jwt createVerifier (its defaults)
// Env: PORT, BENCH_JWK (public JWK, JSON), BENCH_PEM (public key, SPKI PEM), BENCH_ISSUER, BENCH_AUDIENCE.
import fastifyJwt from '@fastify/jwt';
import { createVerifier } from '@tessera/verify';
import { fastifyAuth, fastifyClaims } from '@tessera/verify/fastify';
import { createVerifier as fastJwtVerifier } from 'fast-jwt';
import Fastify from 'fastify';

const env = process.env;
const issuer = env.BENCH_ISSUER!;
const audience = env.BENCH_AUDIENCE!;
const pem = env.BENCH_PEM!;
const app = Fastify({ logger: false });

const tessera = createVerifier({ issuer, audience, jwks: { keys: [JSON.parse(env.BENCH_JWK!)] } });
await app.register(fastifyJwt, {
  secret: { public: pem, private: 'unused: this app only verifies' },
  verify: { algorithms: ['ES256'], allowedIss: issuer, allowedAud: audience },
});
const fast = fastJwtVerifier({ key: pem, algorithms: ['ES256'], allowedIss: issuer, allowedAud: audience });

app.get('/healthz', async () => ({ status: 'ok' }));
app.get('/open', async () => ({ sub: 'anonymous' }));
app.get('/tessera', { preHandler: fastifyAuth(tessera) }, async (request) => ({
  sub: fastifyClaims(request)!.sub,
}));
app.get('/fastify-jwt', async (request, reply) => {
  try {
    const claims = await request.jwtVerify<{ sub: string }>();
    return { sub: claims.sub };
  } catch {
    return reply.code(401).send({ error: 'invalid_token' });
  }
});
app.get('/fast-jwt', async (request, reply) => {
  const header = request.headers.authorization ?? '';
  try {
    const claims = fast(header.slice('Bearer '.length)) as { sub: string };
    return { sub: claims.sub };
  } catch {
    return reply.code(401).send({ error: 'invalid_token' });
  }
});

await app.listen({ port: Number(env.PORT), host: '127.0.0.1' });
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
