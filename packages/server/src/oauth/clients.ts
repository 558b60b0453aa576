import { randomId, randomToken, safeEqual, sha256 } from '../util/crypto.js';
import { OAuthError } from './errors.js';
import type { ClientAuthMethod, ClientRecord, ClientType, GrantType, OAuthStore } from './types.js';

export const GRANT_TYPES: readonly GrantType[] = [
  'authorization_code',
  'refresh_token',
  'client_credentials',
];
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]{1,64}$/;
const CLIENT_ID = /^[A-Za-z0-9._~-]{1,64}$/;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

export interface NewClient {
  id?: string;
  name: string;
  type: ClientType;
  redirectUris: string[];
  grantTypes?: GrantType[];
  scopes: string[];
  authMethod?: ClientAuthMethod;
  requireDpop?: boolean;
  resources?: string[];
}

/** A registration mistake: thrown when the CLI or the admin API is given a bad client. */
export class ClientRegistrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClientRegistrationError';
  }
}

/**
 * RFC 9700 §2.1 and RFC 8252: https, or http on a loopback host, or (public clients) a private-use
 * scheme like `com.example.app:/cb`. No fragment, no credentials. Matched later as exact strings.
 */
export function checkRedirectUri(uri: string, type: ClientType): void {
  const fail = (why: string): never => {
    throw new ClientRegistrationError(`redirect URI ${JSON.stringify(uri)}: ${why}`);
  };
  if (typeof uri !== 'string' || uri.length === 0 || uri.length > 2000) fail('must be 1 to 2000 characters');
  if (uri.includes('#')) fail('may not have a fragment');
  if ([...uri].some((ch) => ch.charCodeAt(0) <= 0x20 || ch.charCodeAt(0) === 0x7f))
    fail('may not contain spaces or control characters');
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    fail('is not an absolute URI');
    return;
  }
  if (url.username || url.password) fail('may not carry credentials');
  if (url.protocol === 'https:') return;
  if (url.protocol === 'http:') {
    if (!LOOPBACK_HOSTS.has(url.hostname)) fail('http is allowed only on a loopback host');
    return;
  }
  if (type === 'public' && /^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+:$/.test(url.protocol)) return;
  fail('must be https, http on loopback, or (public clients) a reverse-domain private-use scheme');
}

/** RFC 8707 §2: a resource indicator is an absolute URI without a fragment. */
export function checkResource(uri: string): void {
  const fail = (why: string): never => {
    throw new ClientRegistrationError(`resource ${JSON.stringify(uri)}: ${why}`);
  };
  if (typeof uri !== 'string' || uri.length === 0 || uri.length > 2000) fail('must be 1 to 2000 characters');
  if (uri.includes('#')) fail('may not have a fragment');
  if ([...uri].some((ch) => ch.charCodeAt(0) <= 0x20 || ch.charCodeAt(0) === 0x7f))
    fail('may not contain spaces or control characters');
  let url: URL | undefined;
  try {
    url = new URL(uri);
  } catch {
    fail('is not an absolute URI');
  }
  if (url?.username || url?.password) fail('may not carry credentials');
}

export function parseScopeList(scopes: string[]): string[] {
  for (const s of scopes) {
    if (!SCOPE_TOKEN.test(s)) throw new ClientRegistrationError(`bad scope ${JSON.stringify(s)}`);
  }
  return [...new Set(scopes)];
}

/** Validates a registration and hashes the secret; the plain secret is returned once, never stored. */
export function buildClient(input: NewClient, now: number): { client: ClientRecord; secret: string | null } {
  const id = input.id ?? randomId();
  if (!CLIENT_ID.test(id)) throw new ClientRegistrationError('client id: 1-64 characters of [A-Za-z0-9._~-]');
  const name = String(input.name ?? '').trim();
  if (name.length === 0 || name.length > 100) throw new ClientRegistrationError('name: 1-100 characters');
  if (input.type !== 'public' && input.type !== 'confidential')
    throw new ClientRegistrationError('type: public or confidential');
  const grantTypes: GrantType[] = [
    ...new Set<GrantType>(input.grantTypes ?? ['authorization_code', 'refresh_token']),
  ];
  for (const g of grantTypes) {
    if (!GRANT_TYPES.includes(g))
      throw new ClientRegistrationError(`unknown grant type ${JSON.stringify(g)}`);
  }
  if (grantTypes.includes('client_credentials') && input.type === 'public')
    throw new ClientRegistrationError('public clients cannot use client_credentials');
  const redirectUris = [...new Set(input.redirectUris ?? [])];
  for (const uri of redirectUris) checkRedirectUri(uri, input.type);
  if (grantTypes.includes('authorization_code') && redirectUris.length === 0)
    throw new ClientRegistrationError('authorization_code needs at least one redirect URI');
  const authMethod: ClientAuthMethod =
    input.type === 'public' ? 'none' : (input.authMethod ?? 'client_secret_basic');
  if (input.type === 'confidential' && authMethod === 'none')
    throw new ClientRegistrationError('confidential clients authenticate with a secret');
  if (input.type === 'public' && input.authMethod !== undefined && input.authMethod !== 'none')
    throw new ClientRegistrationError('public clients have no secret');
  const resources = [...new Set(input.resources ?? [])];
  for (const r of resources) checkResource(r);
  const secret = input.type === 'confidential' ? randomToken(32) : null;
  return {
    client: {
      id,
      name,
      type: input.type,
      secretHash: secret === null ? null : sha256(secret),
      authMethod,
      redirectUris,
      grantTypes,
      scopes: parseScopeList(input.scopes ?? []),
      requireDpop: input.requireDpop === true,
      resources,
      createdAt: now,
    },
    secret,
  };
}

/** What a request offered to prove which client it is. */
export interface ClientCredentials {
  /** From `Authorization: Basic`; 'malformed' when the header is there but unreadable. */
  basic?: { id: string; secret: string } | 'malformed';
  bodyClientId?: string;
  bodySecret?: string;
}

const invalidClient = (why = 'Client authentication failed.') => new OAuthError('invalid_client', why);

/** RFC 6749 §2.3.1: the Basic credentials are form-urlencoded before base64. */
export function parseBasic(header: string | undefined): ClientCredentials['basic'] {
  if (header === undefined) return undefined;
  const m = /^Basic ([A-Za-z0-9+/=]{1,2048})$/i.exec(header.trim());
  if (!m) return /^Basic\b/i.test(header) ? 'malformed' : undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return 'malformed';
  try {
    const dec = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
    return { id: dec(decoded.slice(0, colon)), secret: dec(decoded.slice(colon + 1)) };
  } catch {
    return 'malformed';
  }
}

/**
 * Who is calling the token, introspection or revocation endpoint. Exactly one method, the one
 * the client registered; a wrong or missing secret is invalid_client (401) and says no more.
 */
export async function authenticateClient(store: OAuthStore, creds: ClientCredentials): Promise<ClientRecord> {
  if (creds.basic === 'malformed') throw invalidClient();
  if (creds.basic && creds.bodySecret !== undefined)
    throw new OAuthError('invalid_request', 'Use one client authentication method, not two.');
  if (creds.basic && creds.bodyClientId !== undefined && creds.bodyClientId !== creds.basic.id)
    throw new OAuthError('invalid_request', 'client_id does not match the Authorization header.');
  const id = creds.basic?.id ?? creds.bodyClientId;
  if (id === undefined || id.length === 0) throw invalidClient('The client must identify itself.');
  const method: ClientAuthMethod = creds.basic
    ? 'client_secret_basic'
    : creds.bodySecret !== undefined
      ? 'client_secret_post'
      : 'none';
  const secret = creds.basic ? creds.basic.secret : creds.bodySecret;
  const client = CLIENT_ID.test(id) ? await store.getClient(id) : null;
  // Hash even when the client is unknown, so both cases cost the same.
  const presented = sha256(secret ?? '');
  if (!client) throw invalidClient();
  if (client.authMethod !== method) throw invalidClient();
  if (method !== 'none' && (client.secretHash === null || !safeEqual(client.secretHash, presented)))
    throw invalidClient();
  return client;
}
