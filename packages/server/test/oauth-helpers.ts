// Shared by the oauth*.test.ts suites: a server with registered clients, a signed-in browser,
// and the authorize → consent → redirect walk done over plain HTTP like a browser would.
import * as oauth from 'oauth4webapi';
import type { Config } from '../src/config.js';
import type { NewClient } from '../src/oauth/clients.js';
import { type Answer, call, registerAndLogin, startTestServer, type TestServer } from './helpers.js';

export const insecure = { [oauth.allowInsecureRequests]: true } as const;

export const WEB_REDIRECT = 'https://app.example/callback';
export const SPA_REDIRECT = 'http://127.0.0.1:5173/cb';
/** An API that accepts OAuth tokens (RFC 8707 resource), registered for the web, SPA and machine clients. */
export const API_RESOURCE = 'https://api.example.test';

export interface OAuthFixture {
  srv: TestServer;
  as: oauth.AuthorizationServer;
  web: { client: oauth.Client; secret: string; auth: oauth.ClientAuth };
  spa: { client: oauth.Client; auth: oauth.ClientAuth };
  service: { client: oauth.Client; secret: string; auth: oauth.ClientAuth };
  other: { client: oauth.Client; secret: string; auth: oauth.ClientAuth };
}

export async function addClient(srv: TestServer, input: NewClient) {
  return srv.app.fastify.oauth.addClient(input);
}

/** A server with a confidential web app, a public SPA, a machine client and a second web app. */
export async function startOAuthServer(
  overrides: Partial<Config> = {},
  options: Parameters<typeof startTestServer>[1] = {},
): Promise<OAuthFixture> {
  // Set by oauth-store-postgres.test.ts to run a suite once with the stores in PostgreSQL.
  const pgSchema = process.env.TESSERA_TEST_OAUTH_PG_SCHEMA;
  const srv = await startTestServer(
    {
      ...(pgSchema ? { databaseUrl: process.env.TESSERA_TEST_DATABASE_URL, databaseSchema: pgSchema } : {}),
      ...overrides,
    },
    options,
  );
  const web = await addClient(srv, {
    name: 'Web App',
    type: 'confidential',
    redirectUris: [WEB_REDIRECT, 'https://app.example/other?x=1'],
    scopes: ['openid', 'profile', 'offline_access', 'api'],
    resources: [API_RESOURCE],
  });
  const spa = await addClient(srv, {
    name: 'SPA',
    type: 'public',
    redirectUris: [SPA_REDIRECT],
    scopes: ['openid', 'offline_access', 'api'],
    resources: [API_RESOURCE],
  });
  const service = await addClient(srv, {
    name: 'Batch job',
    type: 'confidential',
    authMethod: 'client_secret_post',
    redirectUris: [],
    grantTypes: ['client_credentials'],
    scopes: ['api', 'reports'],
    resources: [API_RESOURCE],
  });
  const other = await addClient(srv, {
    name: 'Other App',
    type: 'confidential',
    redirectUris: ['https://other.example/cb'],
    scopes: ['openid', 'api'],
  });
  const issuer = new URL(srv.url);
  const as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure }),
  );
  const es256 = { id_token_signed_response_alg: 'ES256' };
  return {
    srv,
    as,
    web: {
      client: { client_id: web.client.id, ...es256 },
      secret: web.secret!,
      auth: oauth.ClientSecretBasic(web.secret!),
    },
    spa: { client: { client_id: spa.client.id, ...es256 }, auth: oauth.None() },
    service: {
      client: { client_id: service.client.id },
      secret: service.secret!,
      auth: oauth.ClientSecretPost(service.secret!),
    },
    other: {
      client: { client_id: other.client.id, ...es256 },
      secret: other.secret!,
      auth: oauth.ClientSecretBasic(other.secret!),
    },
  };
}

/** Registers a user and signs in with a session cookie; returns the Cookie header. */
export async function signIn(srv: TestServer): Promise<{ cookie: string; username: string; csrf: string }> {
  const { username, login } = await registerAndLogin(
    srv.url,
    { mode: 'session', delivery: 'cookie' },
    { origin: srv.origin },
  );
  const name = Object.keys(login.cookies).find((n) => n.endsWith('tessera_session'))!;
  return { cookie: `${name}=${login.cookies[name]!.value}`, username, csrf: login.body.csrf_token };
}

export interface Walk {
  status: number;
  location: string | undefined;
  html: string;
  headers: Headers;
}

export async function get(srv: TestServer, path: string, cookie?: string): Promise<Walk> {
  const res = await fetch(`${srv.url}${path}`, { redirect: 'manual', headers: cookie ? { cookie } : {} });
  return {
    status: res.status,
    location: res.headers.get('location') ?? undefined,
    html: await res.text(),
    headers: res.headers,
  };
}

/** The hidden fields of the consent form. */
export function formFields(html: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    out[m[1]!] = m[2]!
      .replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'")
      .replace(/&#96;/g, '`')
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&amp;/g, '&');
  }
  return out;
}

export async function postConsent(
  srv: TestServer,
  cookie: string,
  fields: Record<string, string>,
  headers: Record<string, string> = { origin: srv.origin },
): Promise<Walk> {
  const res = await fetch(`${srv.url}/oauth/authorize`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
  });
  return {
    status: res.status,
    location: res.headers.get('location') ?? undefined,
    html: await res.text(),
    headers: res.headers,
  };
}

/** Walks authorize → consent (allow) → redirect; returns the redirect URL the client receives. */
export async function authorize(
  srv: TestServer,
  cookie: string,
  params: Record<string, string>,
  decision: 'allow' | 'deny' = 'allow',
): Promise<URL> {
  const first = await get(srv, `/oauth/authorize?${new URLSearchParams(params)}`, cookie);
  if (first.status === 302) return new URL(first.location!);
  if (first.status !== 200) throw new Error(`authorize answered ${first.status}: ${first.html}`);
  const answer = await postConsent(srv, cookie, { ...formFields(first.html), decision });
  if (answer.status !== 303) throw new Error(`consent answered ${answer.status}: ${answer.html}`);
  return new URL(answer.location!);
}

export async function pkce(): Promise<{ verifier: string; challenge: string }> {
  const verifier = oauth.generateRandomCodeVerifier();
  return { verifier, challenge: await oauth.calculatePKCECodeChallenge(verifier) };
}

/** A form POST to an OAuth endpoint with whatever body and headers a test wants. */
export async function form(
  srv: TestServer,
  path: string,
  fields: Record<string, string>,
  headers: Record<string, string> = {},
) {
  return call(srv.url, 'POST', path, {
    rawBody: new URLSearchParams(fields).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
  });
}

export function basic(id: string, secret: string): Record<string, string> {
  const enc = (s: string) => encodeURIComponent(s);
  return { authorization: `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}` };
}

/**
 * The web app's token answer once the user behind `cookie` allows openid, api and
 * offline_access (authorization code with PKCE). Throws unless the token endpoint answers 200.
 */
export async function webAppTokens(fx: OAuthFixture, cookie: string): Promise<Answer['body']> {
  const { verifier, challenge } = await pkce();
  const back = await authorize(fx.srv, cookie, {
    client_id: fx.web.client.client_id,
    redirect_uri: WEB_REDIRECT,
    response_type: 'code',
    scope: 'openid api offline_access',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  const res = await form(
    fx.srv,
    '/oauth/token',
    {
      grant_type: 'authorization_code',
      code: back.searchParams.get('code')!,
      code_verifier: verifier,
      redirect_uri: WEB_REDIRECT,
    },
    basic(fx.web.client.client_id, fx.web.secret),
  );
  if (res.status !== 200)
    throw new Error(`token endpoint answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}
