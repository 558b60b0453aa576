// Driving a running Tessera server: users, logins, refresh chains, /auth/me in both modes.
import { cannon } from './load.js';
import type { Run } from './stats.js';

export const PASSWORD = 'benchmark passphrase 42';
/** Logins go round-robin over this many users, at most one at a time per account. */
export const USERS = 4;
/** Settings every bench server gets: every connection logs in, so logins must never be refused. */
export const BENCH_SETTINGS: Record<string, string> = {
  TESSERA_LOG_LEVEL: 'warn',
  TESSERA_REGISTER_PER_IP_PER_HOUR: '1000',
  TESSERA_LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000',
  TESSERA_LOGIN_MAX_FAILURES_PER_IP: '1000',
};

export async function post(
  base: string,
  pathname: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Record<string, string>> {
  const res = await fetch(`${base}${pathname}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${pathname}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : {};
}

export async function registerUsers(base: string, users = USERS): Promise<void> {
  for (let u = 0; u < users; u++)
    await post(base, '/auth/register', { username: `bench${u}`, password: PASSWORD });
}

/** `count` logins (argon2 each), one per user in flight; returns the refresh or session tokens. */
export async function logins(base: string, mode: 'token' | 'session', count: number): Promise<string[]> {
  return (await loginBodies(base, mode, count)).map(
    (b) => (mode === 'token' ? b.refresh_token : b.session_token)!,
  );
}

/** `count` logins; the whole answer of each. */
export async function loginBodies(
  base: string,
  mode: 'token' | 'session',
  count: number,
): Promise<Record<string, string>[]> {
  const out: Record<string, string>[] = new Array(count);
  await Promise.all(
    Array.from({ length: USERS }, async (_, u) => {
      for (let i = u; i < count; i += USERS) {
        out[i] = await post(base, '/auth/login', {
          username: `bench${u}`,
          password: PASSWORD,
          mode,
          delivery: 'header',
        });
      }
    }),
  );
  return out;
}

/**
 * POST /auth/refresh on one chain per connection: each connection starts from its own login's
 * refresh token and sends the one from its previous answer next. A token is never sent twice
 * (that would be a grace-window repeat); if one is, it is counted. `onPair` sees every answer.
 */
export function refreshChains(
  base: string,
  chains: string[],
  opts: {
    connections: number;
    seconds?: number;
    amount?: number;
    onPair?: (pair: Record<string, string>) => void;
  },
): Promise<Run> {
  if (chains.length < opts.connections)
    throw new Error(`${opts.connections} chains needed, got ${chains.length}`);
  const sent = new Set<string>();
  let repeats = 0;
  let next = 0;
  return cannon(
    {
      url: `${base}/auth/refresh`,
      connections: opts.connections,
      ...(opts.amount === undefined ? { duration: opts.seconds } : { amount: opts.amount }),
      setupClient: (client) => {
        const chain = { token: chains[next++]! };
        client.setRequests([
          {
            method: 'POST',
            path: '/auth/refresh',
            headers: { 'content-type': 'application/json' },
            setupRequest: (req) => {
              if (sent.has(chain.token)) repeats++;
              sent.add(chain.token);
              return { ...req, body: JSON.stringify({ refresh_token: chain.token }) };
            },
            onResponse: (status, body) => {
              if (status !== 200) return;
              const pair = JSON.parse(body) as Record<string, string>;
              chain.token = pair.refresh_token!;
              opts.onPair?.(pair);
            },
          },
        ]);
      },
    },
    () => repeats,
  );
}

/** GET /auth/me with a different access token on every request, taken from the front of `pool`. */
export async function meFreshTokens(
  base: string,
  pool: string[],
  seconds: number,
  connections: number,
): Promise<Run> {
  let used = 0;
  let short = 0;
  const run = await cannon(
    {
      url: `${base}/auth/me`,
      duration: seconds,
      connections,
      requests: [
        {
          method: 'GET',
          setupRequest: (req) => {
            const token = pool[used++];
            if (token === undefined) short++;
            return { ...req, headers: { ...req.headers, authorization: `Bearer ${token ?? pool.at(-1)}` } };
          },
        },
      ],
    },
    () => short,
  );
  pool.splice(0, used);
  return run;
}

/** GET /auth/me in session mode, one session per connection (taken in turn from `sessions`). */
export function meSessions(
  base: string,
  sessions: string[],
  seconds: number,
  connections: number,
  /** Requests per second over all connections; unset means as fast as the server answers. */
  overallRate?: number,
): Promise<Run> {
  let next = 0;
  return cannon({
    url: `${base}/auth/me`,
    duration: seconds,
    connections,
    ...(overallRate === undefined ? {} : { overallRate }),
    setupClient: (client) =>
      client.setHeaders({ authorization: `Bearer ${sessions[next++ % sessions.length]}` }),
  });
}

/** Tops `pool` up to `size` distinct access tokens, minted by refreshes on fresh chains. */
export async function fillPool(
  base: string,
  pool: string[],
  size: number,
  connections: number,
): Promise<void> {
  const need = size - pool.length;
  if (need <= 0) return;
  const known = new Set(pool);
  const run = await refreshChains(base, await logins(base, 'token', connections), {
    connections,
    amount: need,
    onPair: (pair) => {
      if (!known.has(pair.access_token!)) {
        known.add(pair.access_token!);
        pool.push(pair.access_token!);
      }
    },
  });
  if (run.failures > 0 || run.repeats > 0) throw new Error(`minting access tokens: ${JSON.stringify(run)}`);
}

/**
 * Token-mode /auth/me runs on one server, each with tokens never presented before: before each
 * run the pool is topped up to twice what the best rate so far would use in `seconds`.
 */
export function freshTokenReads(base: string, seconds: number, connections: number) {
  const pool: string[] = [];
  // A first guess above what one verify per request allows here; each run raises it to what it saw.
  let bestRate = 6000;
  return {
    prepare: () => fillPool(base, pool, Math.ceil(bestRate * seconds * 2) + 2 * connections, connections),
    run: async (): Promise<Run> => {
      const run = await meFreshTokens(base, pool, seconds, connections);
      bestRate = Math.max(bestRate, run.rps);
      return run;
    },
  };
}
