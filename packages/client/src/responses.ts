/**
 * Processing the account server's answers: `Response` in, typed value or `TesseraClientError` out.
 * Nothing here sends a request or holds state.
 */
import { type ClientErrorCode, TesseraClientError } from './errors.js';
import type { Mode } from './requests.js';
import { SERVER_ERROR_CODES } from './server-codes.js';

export interface User {
  id: string;
  username: string;
}

/** What a mailed link or code did (`POST /auth/email/verify`). */
export interface EmailRedeemed {
  action: 'verified' | 'changed' | 'restored';
  user: User & { email: string; emailVerified: boolean };
}

/** The account's address (`GET /auth/email`): `null` when it has none. */
export interface EmailAddress {
  email: string | null;
  emailVerified: boolean;
}

export interface Me {
  user: User & { roles: string[] };
  session: { id: string; mode: Mode; createdAt: string; expiresAt: string };
}

export interface SessionInfo {
  id: string;
  mode: Mode;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string | undefined;
  userAgent: string | null;
  current: boolean;
}

/** An OAuth grant: an app the user allowed to use their account, and with which scopes. */
export interface GrantInfo {
  id: string;
  clientId: string;
  /** The app's registered name (its client id when it has none). */
  clientName: string;
  /** The granted scopes, e.g. `['openid', 'offline_access', 'api']`. */
  scopes: string[];
  createdAt: string;
  /** Last change of the grant, e.g. when the user allowed more scopes. */
  updatedAt: string;
}

/** An upstream identity linked to the account. */
export interface IdentityInfo {
  id: string;
  /** The provider's id, as in `/auth/providers/{id}`, and its display name. */
  provider: string;
  providerName: string;
  email: string | null;
  name: string | null;
  createdAt: string;
}

/** A configured sign-in provider. */
export interface ProviderInfo {
  id: string;
  name: string;
}

/** A login or refresh answer, whatever the mode and delivery. */
export interface Issued {
  mode: Mode;
  sessionId: string;
  /** Seconds the access token (token mode) or the session (session mode) lives. */
  expiresIn: number;
  accessToken?: string;
  refreshToken?: string;
  refreshExpiresIn?: number;
  /** Header-delivered session token. */
  sessionToken?: string;
  /** Cookie delivery only. */
  csrfToken?: string;
}

const KNOWN_CODES: ReadonlySet<string> = new Set(SERVER_ERROR_CODES);

type Json = Record<string, unknown>;

function bad(what: string, status: number): TesseraClientError {
  return new TesseraClientError('bad_response', `Unexpected answer from the account server (${what}).`, {
    status,
  });
}

async function body(res: Response): Promise<unknown> {
  const text = await res.text();
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The coded error for a failed answer; unknown codes become `http_error`. */
export async function errorFrom(res: Response): Promise<TesseraClientError> {
  const parsed = (await body(res)) as Json | undefined;
  const code =
    typeof parsed?.error === 'string' && KNOWN_CODES.has(parsed.error) ? parsed.error : 'http_error';
  const message = typeof parsed?.message === 'string' ? parsed.message : `HTTP ${res.status}`;
  const retry = Number(res.headers.get('retry-after'));
  return new TesseraClientError(code as ClientErrorCode, message, {
    status: res.status,
    retryAfter: Number.isFinite(retry) && retry > 0 ? retry : undefined,
  });
}

async function json(res: Response): Promise<Json> {
  if (!res.ok) throw await errorFrom(res);
  const parsed = await body(res);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw bad('not a JSON object', res.status);
  return parsed as Json;
}

function str(o: Json, key: string, status: number): string {
  const v = o[key];
  if (typeof v !== 'string') throw bad(`${key} missing`, status);
  return v;
}

function num(o: Json, key: string, status: number): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`${key} missing`, status);
  return v;
}

function obj(o: Json, key: string, status: number): Json {
  const v = o[key];
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(`${key} missing`, status);
  return v as Json;
}

function mode(v: unknown, status: number): Mode {
  if (v !== 'session' && v !== 'token') throw bad('mode', status);
  return v;
}

export async function processNoContent(res: Response): Promise<void> {
  if (!res.ok) throw await errorFrom(res);
  await res.body?.cancel();
}

export async function processRegister(res: Response): Promise<User> {
  const o = await json(res);
  const user = obj(o, 'user', res.status);
  return { id: str(user, 'id', res.status), username: str(user, 'username', res.status) };
}

/** Login and refresh answers share one shape per mode and delivery (docs/http-api.md, `POST /auth/login`). */
export async function processIssued(res: Response): Promise<Issued> {
  const o = await json(res);
  const s = res.status;
  const out: Issued = {
    mode: typeof o.access_token === 'string' ? 'token' : 'session',
    sessionId: str(o, 'session_id', s),
    expiresIn: num(o, 'expires_in', s),
  };
  if (out.mode === 'token') {
    out.accessToken = str(o, 'access_token', s);
    if (o.refresh_token !== undefined) {
      out.refreshToken = str(o, 'refresh_token', s);
      out.refreshExpiresIn = num(o, 'refresh_expires_in', s);
    }
  } else if (o.session_token !== undefined) {
    out.sessionToken = str(o, 'session_token', s);
  }
  if (o.csrf_token !== undefined) out.csrfToken = str(o, 'csrf_token', s);
  return out;
}

export async function processCsrf(res: Response): Promise<{ csrfToken: string; sessionId: string }> {
  const o = await json(res);
  return { csrfToken: str(o, 'csrf_token', res.status), sessionId: str(o, 'session_id', res.status) };
}

export async function processMe(res: Response): Promise<Me> {
  const o = await json(res);
  const s = res.status;
  const user = obj(o, 'user', s);
  const session = obj(o, 'session', s);
  const roles = Array.isArray(user.roles) ? user.roles.filter((r): r is string => typeof r === 'string') : [];
  return {
    user: { id: str(user, 'id', s), username: str(user, 'username', s), roles },
    session: {
      id: str(session, 'id', s),
      mode: mode(session.mode, s),
      createdAt: str(session, 'created_at', s),
      expiresAt: str(session, 'expires_at', s),
    },
  };
}

export async function processSessions(res: Response): Promise<SessionInfo[]> {
  const o = await json(res);
  const list = o.sessions;
  if (!Array.isArray(list)) throw bad('sessions missing', res.status);
  return list.map((item: unknown) => {
    if (typeof item !== 'object' || item === null) throw bad('session entry', res.status);
    const e = item as Json;
    return {
      id: str(e, 'id', res.status),
      mode: mode(e.mode, res.status),
      createdAt: str(e, 'created_at', res.status),
      lastSeenAt: str(e, 'last_seen_at', res.status),
      expiresAt: typeof e.expires_at === 'string' ? e.expires_at : undefined,
      userAgent: typeof e.user_agent === 'string' ? e.user_agent : null,
      current: e.current === true,
    };
  });
}

export async function processGrants(res: Response): Promise<GrantInfo[]> {
  const o = await json(res);
  const list = o.grants;
  if (!Array.isArray(list)) throw bad('grants missing', res.status);
  return list.map((item: unknown) => {
    if (typeof item !== 'object' || item === null) throw bad('grant entry', res.status);
    const e = item as Json;
    return {
      id: str(e, 'id', res.status),
      clientId: str(e, 'client_id', res.status),
      clientName: str(e, 'client_name', res.status),
      scopes: str(e, 'scope', res.status)
        .split(' ')
        .filter((s) => s !== ''),
      createdAt: str(e, 'created_at', res.status),
      updatedAt: str(e, 'updated_at', res.status),
    };
  });
}

export async function processIdentities(res: Response): Promise<IdentityInfo[]> {
  const o = await json(res);
  const list = o.identities;
  if (!Array.isArray(list)) throw bad('identities missing', res.status);
  return list.map((item: unknown) => {
    if (typeof item !== 'object' || item === null) throw bad('identity entry', res.status);
    const e = item as Json;
    return {
      id: str(e, 'id', res.status),
      provider: str(e, 'provider', res.status),
      providerName: str(e, 'provider_name', res.status),
      email: typeof e.email === 'string' ? e.email : null,
      name: typeof e.name === 'string' ? e.name : null,
      createdAt: str(e, 'created_at', res.status),
    };
  });
}

export async function processProviders(res: Response): Promise<ProviderInfo[]> {
  const o = await json(res);
  if (!Array.isArray(o.providers)) throw bad('providers missing', res.status);
  return o.providers.map((item: unknown) => {
    const e = (item ?? {}) as Json;
    return { id: str(e, 'id', res.status), name: str(e, 'name', res.status) };
  });
}

export async function processEmailRedeemed(res: Response): Promise<EmailRedeemed> {
  const o = await json(res);
  const user = obj(o, 'user', res.status);
  const action = str(o, 'action', res.status);
  if (action !== 'verified' && action !== 'changed' && action !== 'restored') throw bad('action', res.status);
  return {
    action,
    user: {
      id: str(user, 'id', res.status),
      username: str(user, 'username', res.status),
      email: str(user, 'email', res.status),
      emailVerified: user.email_verified === true,
    },
  };
}

export async function processEmailAddress(res: Response): Promise<EmailAddress> {
  const o = await json(res);
  const email = o.email === null ? null : str(o, 'email', res.status);
  if (typeof o.email_verified !== 'boolean') throw bad('email_verified missing', res.status);
  return { email, emailVerified: o.email_verified };
}
