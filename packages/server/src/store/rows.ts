import {
  type AuthorizationCodeRecord,
  type ClientRecord,
  type GrantRecord,
  type OAuthRefreshTokenRecord,
  userOfSubject,
} from '../oauth/types.js';
import type { SessionUser } from './ports.js';
import type {
  AuditEvent,
  EmailTokenRecord,
  IdentityRecord,
  QueuedMail,
  RevocationEntry,
  SessionRecord,
  SigningKeyRecord,
  UserRecord,
} from './types.js';

/**
 * Row → record mappers shared by the SQL backends. Both use the same snake_case columns; they differ
 * only in how JSON and booleans come back (text and 0/1 in SQLite, JSONB and boolean in PostgreSQL).
 */
export type Row = Record<string, unknown>;

const json = <T>(v: unknown): T => (typeof v === 'string' ? (JSON.parse(v) as T) : (v as T));
const bool = (v: unknown): boolean => v === true || v === 1;
const orNull = <T>(v: unknown): T | null => (v ?? null) as T | null;

export function toUser(r: Row): UserRecord {
  return {
    id: r.id as string,
    username: r.username as string,
    passwordHash: r.password_hash as string,
    roles: json<string[]>(r.roles),
    disabled: bool(r.disabled),
    createdAt: r.created_at as number,
    passwordChangedAt: r.password_changed_at as number,
    email: orNull(r.email),
    emailVerified: bool(r.email_verified),
  };
}

export function toEmailToken(r: Row): EmailTokenRecord {
  return {
    hash: r.hash as string,
    purpose: r.purpose as EmailTokenRecord['purpose'],
    userId: r.user_id as string,
    email: r.email as string,
    createdAt: r.created_at as number,
    expiresAt: r.expires_at as number,
    usedAt: orNull(r.used_at),
  };
}

export function toQueuedMail(r: Row): QueuedMail {
  return {
    id: r.id as string,
    sealed: r.sealed as string,
    queuedAt: r.queued_at as number,
    attempts: r.attempts as number,
    nextAttemptAt: r.next_attempt_at as number,
    lease: orNull(r.lease),
    leaseUntil: orNull(r.lease_until),
  };
}

export function toSession(r: Row): SessionRecord {
  return {
    id: r.id as string,
    userId: r.user_id as string,
    mode: r.mode as SessionRecord['mode'],
    secretHash: orNull(r.secret_hash),
    createdAt: r.created_at as number,
    lastSeenAt: r.last_seen_at as number,
    expiresAt: r.expires_at as number,
    idleExpiresAt: r.idle_expires_at as number,
    userAgent: orNull(r.user_agent),
    ip: orNull(r.ip),
    revokedAt: orNull(r.revoked_at),
    revokeReason: orNull(r.revoke_reason),
  };
}

/** The user fields joined onto a session row as `u_username`, `u_roles`, `u_disabled`. */
export function toSessionUser(r: Row): SessionUser {
  return {
    id: r.user_id as string,
    username: r.u_username as string,
    roles: json<string[]>(r.u_roles),
    disabled: bool(r.u_disabled),
  };
}

export function toKey(r: Row): SigningKeyRecord {
  return {
    kid: r.kid as string,
    alg: r.alg as string,
    state: r.state as SigningKeyRecord['state'],
    publicJwk: json<Record<string, unknown>>(r.public_jwk),
    privateKeyEnc: r.private_key_enc as string,
    createdAt: r.created_at as number,
    retireUntil: orNull(r.retire_until),
  };
}

export function toRevocation(r: Row): RevocationEntry {
  return {
    seq: r.seq as number,
    sid: orNull(r.sid),
    sub: orNull(r.sub),
    notBefore: orNull(r.not_before),
    expiresAt: r.expires_at as number,
    reason: r.reason as string,
  };
}

export function toAudit(r: Row): AuditEvent {
  return {
    seq: r.seq as number,
    at: r.at as number,
    type: r.type as AuditEvent['type'],
    userId: orNull(r.user_id),
    sessionId: orNull(r.session_id),
    ip: orNull(r.ip),
    userAgent: orNull(r.user_agent),
    detail: orNull(r.detail),
  };
}

export function toClient(r: Row): ClientRecord {
  return {
    id: r.id as string,
    name: r.name as string,
    type: r.type as ClientRecord['type'],
    secretHash: orNull(r.secret_hash),
    authMethod: r.auth_method as ClientRecord['authMethod'],
    redirectUris: json<string[]>(r.redirect_uris),
    grantTypes: json<ClientRecord['grantTypes']>(r.grant_types),
    scopes: json<string[]>(r.scopes),
    requireDpop: bool(r.require_dpop),
    resources: json<string[]>(r.resources),
    createdAt: r.created_at as number,
  };
}

export function toGrant(r: Row): GrantRecord {
  return {
    id: r.id as string,
    userId: r.subject as string,
    clientId: r.client_id as string,
    scope: r.scope as string,
    createdAt: r.created_at as number,
    updatedAt: r.updated_at as number,
    revokedAt: orNull(r.revoked_at),
    revokeReason: orNull(r.revoke_reason),
  };
}

export function toCode(r: Row): AuthorizationCodeRecord {
  return {
    codeHash: r.code_hash as string,
    clientId: r.client_id as string,
    userId: r.user_id as string,
    grantId: r.grant_id as string,
    redirectUri: r.redirect_uri as string,
    redirectUriGiven: bool(r.redirect_uri_given),
    scope: r.scope as string,
    codeChallenge: r.code_challenge as string,
    nonce: orNull(r.nonce),
    authTime: r.auth_time as number,
    dpopJkt: orNull(r.dpop_jkt),
    createdAt: r.created_at as number,
    expiresAt: r.expires_at as number,
    consumedAt: orNull(r.consumed_at),
  };
}

export function toOAuthRefresh(r: Row): OAuthRefreshTokenRecord {
  return {
    id: r.id as string,
    grantId: r.grant_id as string,
    clientId: r.client_id as string,
    userId: r.user_id as string,
    secretHash: r.secret_hash as string,
    scope: r.scope as string,
    dpopJkt: orNull(r.dpop_jkt),
    parentId: orNull(r.parent_id),
    createdAt: r.created_at as number,
    expiresAt: r.expires_at as number,
    familyExpiresAt: orNull(r.family_expires_at),
    usedAt: orNull(r.used_at),
  };
}

export function toIdentity(r: Row): IdentityRecord {
  return {
    id: r.id as string,
    userId: r.user_id as string,
    issuer: r.issuer as string,
    subject: r.subject as string,
    providerId: r.provider_id as string,
    email: orNull(r.email),
    name: orNull(r.name),
    createdAt: r.created_at as number,
  };
}

/** `INSERT INTO table (columns) VALUES (…)`, each value's placeholder in the backend's style (its 0-based index). */
export function insertSql(
  table: string,
  columns: readonly string[],
  placeholder: (i: number) => string,
): string {
  return `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((_, i) => placeholder(i)).join(', ')})`;
}

/** How a backend writes list and boolean columns. */
export interface ColumnEncoding {
  /** A list of strings: TEXT[] in PostgreSQL, JSON text in SQLite. */
  list(v: readonly string[]): unknown;
  /** A boolean: BOOLEAN in PostgreSQL, 0/1 in SQLite. */
  flag(v: boolean): unknown;
}

/**
 * Record → column values for the OAuth inserts of both SQL backends, the inverse of the mappers
 * above: each table's `values` lists a record's values in the order of its `columns`. Lists and
 * booleans go through the backend's encoding; every other value is written as it is.
 */
export const oauthRows = {
  clients: {
    columns: [
      'id',
      'name',
      'type',
      'secret_hash',
      'auth_method',
      'redirect_uris',
      'grant_types',
      'scopes',
      'require_dpop',
      'resources',
      'created_at',
    ],
    values: (c: ClientRecord, enc: ColumnEncoding): unknown[] => [
      c.id,
      c.name,
      c.type,
      c.secretHash,
      c.authMethod,
      enc.list(c.redirectUris),
      enc.list(c.grantTypes),
      enc.list(c.scopes),
      enc.flag(c.requireDpop),
      enc.list(c.resources),
      c.createdAt,
    ],
  },
  /** `subject` holds the record's userId; `user_id` is the user it names (null for a client's own grant). */
  grants: {
    columns: [
      'id',
      'subject',
      'user_id',
      'client_id',
      'scope',
      'created_at',
      'updated_at',
      'revoked_at',
      'revoke_reason',
    ],
    values: (g: GrantRecord): unknown[] => [
      g.id,
      g.userId,
      userOfSubject(g.userId),
      g.clientId,
      g.scope,
      g.createdAt,
      g.updatedAt,
      g.revokedAt,
      g.revokeReason,
    ],
  },
  codes: {
    columns: [
      'code_hash',
      'client_id',
      'user_id',
      'grant_id',
      'redirect_uri',
      'redirect_uri_given',
      'scope',
      'code_challenge',
      'nonce',
      'auth_time',
      'dpop_jkt',
      'created_at',
      'expires_at',
      'consumed_at',
    ],
    values: (c: AuthorizationCodeRecord, enc: ColumnEncoding): unknown[] => [
      c.codeHash,
      c.clientId,
      c.userId,
      c.grantId,
      c.redirectUri,
      enc.flag(c.redirectUriGiven),
      c.scope,
      c.codeChallenge,
      c.nonce,
      c.authTime,
      c.dpopJkt,
      c.createdAt,
      c.expiresAt,
      c.consumedAt,
    ],
  },
  refreshTokens: {
    columns: [
      'id',
      'grant_id',
      'client_id',
      'user_id',
      'secret_hash',
      'scope',
      'dpop_jkt',
      'parent_id',
      'created_at',
      'expires_at',
      'family_expires_at',
      'used_at',
    ],
    values: (t: OAuthRefreshTokenRecord): unknown[] => [
      t.id,
      t.grantId,
      t.clientId,
      t.userId,
      t.secretHash,
      t.scope,
      t.dpopJkt,
      t.parentId,
      t.createdAt,
      t.expiresAt,
      t.familyExpiresAt,
      t.usedAt,
    ],
  },
} as const;
