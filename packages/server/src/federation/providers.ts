/**
 * Upstream sign-in providers as configuration: OpenID Connect providers by their issuer URL, and
 * plain OAuth 2 providers (no ID token) by their endpoints and a mapping of the profile fields.
 * Read through the settings table (`providers`, `TESSERA_PROVIDERS`); a client secret is never
 * repeated in a problem, a log line or the printed configuration.
 */
import type { ParseContext } from '../settings.js';

interface ProviderCommon {
  /** In the URLs (`/auth/providers/{id}/…`). */
  id: string;
  /** On the sign-in button. */
  name: string;
  /**
   * The identity namespace: identities are keyed by (issuer, subject). For OpenID Connect the
   * issuer URL itself; for plain OAuth 2 the configured `issuer`, else the authorization endpoint's origin.
   */
  issuer: string;
  clientId: string;
  clientSecret: string;
  scopes: string[];
  /**
   * Whether `scopes` came from the configuration. The default ones (OpenID Connect: openid,
   * email, profile) are asked for only as far as the provider's metadata lists them.
   */
  scopesGiven: boolean;
}

export interface OidcProviderConfig extends ProviderCommon {
  type: 'oidc';
}

export interface OAuth2ProviderConfig extends ProviderCommon {
  type: 'oauth2';
  authorizationEndpoint: string;
  tokenEndpoint: string;
  userinfoEndpoint: string;
  /** Which user-info fields hold the subject (required), the email and the name. */
  mapping: { subject: string; email?: string; name?: string };
}

export type ProviderConfig = OidcProviderConfig | OAuth2ProviderConfig;

const ID = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const FIELD = /^[A-Za-z0-9_.-]{1,64}$/;
const COMMON_KEYS = ['id', 'name', 'type', 'issuer', 'client_id', 'client_secret', 'scopes'];
const OAUTH2_KEYS = ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'mapping'];

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|localhost)$/;

/** Plain http is allowed only to a loopback address (development and tests); everything else is https. */
export function isLoopbackUrl(url: URL): boolean {
  return LOOPBACK.test(url.hostname);
}

/** The config-file value (an array) or `TESSERA_PROVIDERS` (a JSON array) as checked provider entries. */
export function parseProviders(v: unknown, { label, problems }: ParseContext): ProviderConfig[] {
  if (v === undefined) return [];
  let list: unknown = v;
  if (typeof v === 'string') {
    try {
      list = JSON.parse(v);
    } catch {
      problems.push(`${label} must be a JSON array of provider objects (it does not parse as JSON)`);
      return [];
    }
  }
  if (!Array.isArray(list)) {
    problems.push(`${label} must be a JSON array of provider objects`);
    return [];
  }
  const out: ProviderConfig[] = [];
  const seen = new Set<string>();
  list.forEach((entry: unknown, index) => {
    const before = problems.length;
    const at = `${label}[${index}]`;
    const provider = parseEntry(entry, at, problems);
    if (provider && seen.has(provider.id)) problems.push(`${at}: the id "${provider.id}" is used twice`);
    if (provider && problems.length === before) {
      seen.add(provider.id);
      out.push(provider);
    }
  });
  return out;
}

function parseEntry(entry: unknown, at: string, problems: string[]): ProviderConfig | undefined {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    problems.push(`${at} must be an object`);
    return undefined;
  }
  const e = entry as Record<string, unknown>;
  const type = e.type ?? 'oidc';
  if (type !== 'oidc' && type !== 'oauth2') {
    problems.push(`${at}.type must be "oidc" or "oauth2"`);
    return undefined;
  }
  const allowed = type === 'oauth2' ? [...COMMON_KEYS, ...OAUTH2_KEYS] : COMMON_KEYS;
  for (const key of Object.keys(e)) {
    // Only the key is named: an unknown key may hold a secret put in the wrong place.
    if (!allowed.includes(key)) problems.push(`${at}: unknown field "${key.slice(0, 64)}"`);
  }
  const text = (key: string, required: boolean): string | undefined => {
    const value = e[key];
    if (value === undefined && !required) return undefined;
    if (typeof value !== 'string' || value.length === 0 || value.length > 2048) {
      problems.push(`${at}.${key} must be a non-empty string`);
      return undefined;
    }
    return value;
  };
  const id = text('id', true);
  if (id !== undefined && !ID.test(id))
    problems.push(`${at}.id must be 1 to 32 of a-z 0-9 _ - (starting with a letter or digit)`);
  const name = text('name', false);
  const clientId = text('client_id', true);
  // Never echoed: only whether it is there.
  const clientSecret = text('client_secret', true);
  let scopes: string[] = type === 'oidc' ? ['openid', 'email', 'profile'] : [];
  if (e.scopes !== undefined) {
    if (
      !Array.isArray(e.scopes) ||
      !e.scopes.every((s) => typeof s === 'string' && /^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/.test(s))
    ) {
      problems.push(`${at}.scopes must be an array of scope names`);
    } else scopes = e.scopes as string[];
  }
  const scopesGiven = e.scopes !== undefined;
  if (type === 'oidc' && !scopes.includes('openid')) scopes = ['openid', ...scopes];
  const url = (key: string, required: boolean, bare: boolean): string | undefined => {
    const value = text(key, required);
    if (value === undefined) return undefined;
    try {
      const u = new URL(value);
      if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopbackUrl(u)))
        throw new Error('https is required (plain http only on a loopback address)');
      if (u.username || u.password) throw new Error('no credentials in the URL');
      if (bare && (u.search || u.hash)) throw new Error('no query or fragment allowed');
      if (u.hash) throw new Error('no fragment allowed');
    } catch (err) {
      problems.push(`${at}.${key} is not a usable URL: ${(err as Error).message}`);
      return undefined;
    }
    return bare ? value.replace(/\/+$/, '') : value;
  };
  if (type === 'oidc') {
    const issuer = url('issuer', true, true);
    if (id === undefined || clientId === undefined || clientSecret === undefined || issuer === undefined)
      return undefined;
    return { type, id, name: name ?? id, issuer, clientId, clientSecret, scopes, scopesGiven };
  }
  const authorizationEndpoint = url('authorization_endpoint', true, false);
  const tokenEndpoint = url('token_endpoint', true, false);
  const userinfoEndpoint = url('userinfo_endpoint', true, false);
  const issuer = url('issuer', false, true);
  const m = e.mapping;
  let mapping: OAuth2ProviderConfig['mapping'] | undefined;
  if (typeof m !== 'object' || m === null || Array.isArray(m)) {
    problems.push(`${at}.mapping must be an object naming the user-info fields: {subject, email?, name?}`);
  } else {
    const fields = m as Record<string, unknown>;
    const bad = Object.entries(fields).filter(
      ([k, v]) => !['subject', 'email', 'name'].includes(k) || typeof v !== 'string' || !FIELD.test(v),
    );
    if (typeof fields.subject !== 'string' || bad.length > 0)
      problems.push(
        `${at}.mapping must name the user-info fields: subject (required), email and name, each a field name`,
      );
    else mapping = fields as OAuth2ProviderConfig['mapping'];
  }
  if (
    id === undefined ||
    clientId === undefined ||
    clientSecret === undefined ||
    authorizationEndpoint === undefined ||
    tokenEndpoint === undefined ||
    userinfoEndpoint === undefined ||
    mapping === undefined
  )
    return undefined;
  return {
    type,
    id,
    name: name ?? id,
    issuer: issuer ?? new URL(authorizationEndpoint).origin,
    clientId,
    clientSecret,
    scopes,
    scopesGiven,
    authorizationEndpoint,
    tokenEndpoint,
    userinfoEndpoint,
    mapping,
  };
}

/** The providers fit to print: everything but the client secrets. */
export function redactProviders(value: unknown): unknown {
  return Array.isArray(value)
    ? value.map((p: ProviderConfig) => ({ ...p, clientSecret: '[redacted]' }))
    : '[redacted]';
}
