import { OAuthError } from './errors.js';
import type { ClientRecord, OAuthStore } from './types.js';

/** Request parameters, every value kept so that repeats can be refused (RFC 6749 §3.1). */
export type Params = Record<string, string[]>;

export function paramsFrom(search: URLSearchParams): Params {
  const out: Params = Object.create(null) as Params;
  for (const [k, v] of search) {
    const list = out[k];
    if (list) list.push(v);
    else out[k] = [v];
  }
  return out;
}

/** One value or undefined; an empty value counts as absent, a repeated one is an error. */
export function single(params: Params, name: string): string | undefined {
  const values = params[name];
  if (values === undefined) return undefined;
  if (values.length > 1) throw new OAuthError('invalid_request', `The ${name} parameter is repeated.`);
  const v = values[0]!;
  if (v.length > 4096) throw new OAuthError('invalid_request', `The ${name} parameter is too long.`);
  return v === '' ? undefined : v;
}

/** An authorization request that failed before its redirect URI was trusted: show a page, never redirect. */
export class UnsafeRedirectError extends Error {
  constructor(
    readonly code: 'invalid_request' | 'invalid_client',
    message: string,
  ) {
    super(message);
    this.name = 'UnsafeRedirectError';
  }
}

export interface ClientAndRedirect {
  client: ClientRecord;
  redirectUri: string;
  redirectUriGiven: boolean;
  state: string | undefined;
}

/**
 * Step one: which client, and where its answer may go. The redirect URI is compared with the
 * registered ones as an exact string (RFC 9700 §4.1.3): no prefixes, no port or case games.
 * Every failure here is an UnsafeRedirectError.
 */
export async function resolveClient(store: OAuthStore, params: Params): Promise<ClientAndRedirect> {
  let clientId: string | undefined;
  let redirectUri: string | undefined;
  try {
    clientId = single(params, 'client_id');
    redirectUri = single(params, 'redirect_uri');
  } catch {
    throw new UnsafeRedirectError('invalid_request', 'The client_id or redirect_uri parameter is repeated.');
  }
  if (clientId === undefined) throw new UnsafeRedirectError('invalid_request', 'The client_id is missing.');
  const client = /^[A-Za-z0-9._~-]{1,64}$/.test(clientId) ? await store.getClient(clientId) : null;
  if (!client) throw new UnsafeRedirectError('invalid_client', 'This application is not registered.');
  if (redirectUri === undefined) {
    if (client.redirectUris.length !== 1)
      throw new UnsafeRedirectError('invalid_request', 'The redirect_uri is missing.');
    redirectUri = client.redirectUris[0]!;
    const state = stateOf(params);
    return { client, redirectUri, redirectUriGiven: false, state };
  }
  if (!client.redirectUris.includes(redirectUri))
    throw new UnsafeRedirectError(
      'invalid_request',
      'The redirect_uri is not registered for this application.',
    );
  return { client, redirectUri, redirectUriGiven: true, state: stateOf(params) };
}

function stateOf(params: Params): string | undefined {
  const values = params.state;
  // A repeated state is reported to the client without echoing either value.
  return values?.length === 1 && values[0] !== '' ? values[0]!.slice(0, 4096) : undefined;
}

export interface AuthorizationRequest extends ClientAndRedirect {
  scope: string[];
  codeChallenge: string;
  nonce: string | undefined;
  prompt: Set<string>;
  maxAge: number | undefined;
  dpopJkt: string | undefined;
}

const PKCE_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;
const PROMPTS = new Set(['none', 'login', 'consent']);

/**
 * Scopes asked for, each one the client may have; missing means all the client's scopes.
 * Throws invalid_scope otherwise.
 */
export function resolveScope(requested: string | undefined, allowed: string[]): string[] {
  if (requested === undefined) return [...allowed];
  const scopes = [...new Set(requested.split(' ').filter(Boolean))];
  if (scopes.length === 0) return [...allowed];
  for (const s of scopes) {
    if (!allowed.includes(s))
      throw new OAuthError('invalid_scope', 'A requested scope is not allowed for this client.');
  }
  return scopes;
}

/**
 * Step two, once the redirect URI is trusted: everything else. Errors thrown here are OAuthErrors
 * that go back to the client on its redirect URI.
 */
export function validateAuthorization(params: Params, base: ClientAndRedirect): AuthorizationRequest {
  const { client } = base;
  if (params.state !== undefined && params.state.length > 1)
    throw new OAuthError('invalid_request', 'The state parameter is repeated.');
  if (params.request !== undefined)
    throw new OAuthError('request_not_supported', 'Request objects are not supported.');
  if (params.request_uri !== undefined)
    throw new OAuthError('request_uri_not_supported', 'request_uri is not supported.');
  const responseType = single(params, 'response_type');
  if (responseType === undefined) throw new OAuthError('invalid_request', 'The response_type is missing.');
  if (responseType !== 'code')
    throw new OAuthError('unsupported_response_type', 'Only response_type=code is supported.');
  const responseMode = single(params, 'response_mode');
  if (responseMode !== undefined && responseMode !== 'query')
    throw new OAuthError('invalid_request', 'Only response_mode=query is supported.');
  if (!client.grantTypes.includes('authorization_code'))
    throw new OAuthError('unauthorized_client', 'This client may not use the authorization code grant.');
  const challenge = single(params, 'code_challenge');
  const method = single(params, 'code_challenge_method');
  if (challenge === undefined)
    throw new OAuthError('invalid_request', 'PKCE is required: send code_challenge.');
  // A missing method means "plain" (RFC 7636 §4.3), which is refused like an explicit one.
  if (method !== 'S256') throw new OAuthError('invalid_request', 'code_challenge_method must be S256.');
  if (!PKCE_CHALLENGE.test(challenge))
    throw new OAuthError('invalid_request', 'code_challenge must be a base64url SHA-256 hash.');
  const scope = resolveScope(single(params, 'scope'), client.scopes);
  const resource = single(params, 'resource');
  if (resource !== undefined)
    throw new OAuthError('invalid_target', 'Send the resource with the token request.');
  const nonce = single(params, 'nonce');
  const prompt = new Set((single(params, 'prompt') ?? '').split(' ').filter(Boolean));
  for (const p of prompt) {
    if (!PROMPTS.has(p)) throw new OAuthError('invalid_request', 'Unsupported prompt value.');
  }
  if (prompt.has('none') && prompt.size > 1)
    throw new OAuthError('invalid_request', 'prompt=none cannot be combined with other values.');
  const maxAgeRaw = single(params, 'max_age');
  let maxAge: number | undefined;
  if (maxAgeRaw !== undefined) {
    if (!/^\d{1,9}$/.test(maxAgeRaw))
      throw new OAuthError('invalid_request', 'max_age must be a number of seconds.');
    maxAge = Number(maxAgeRaw);
  }
  const dpopJkt = single(params, 'dpop_jkt');
  if (dpopJkt !== undefined && !/^[A-Za-z0-9_-]{43}$/.test(dpopJkt))
    throw new OAuthError('invalid_request', 'dpop_jkt must be a JWK SHA-256 thumbprint.');
  return { ...base, scope, codeChallenge: challenge, nonce, prompt, maxAge, dpopJkt };
}

/** The authorization response, on the registered redirect URI, always with `iss` (RFC 9207). */
export function redirectTo(uri: string, params: Record<string, string | undefined>): string {
  const url = new URL(uri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.append(k, v);
  return url.href;
}
