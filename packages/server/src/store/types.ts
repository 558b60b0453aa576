/**
 * The records the storage role ports (ports.ts) hold. Times are milliseconds since the epoch.
 */

export type SessionMode = 'session' | 'token';

export interface UserRecord {
  id: string;
  /** Normalised (NFKC, lower case): the unique key. */
  username: string;
  passwordHash: string;
  roles: string[];
  disabled: boolean;
  createdAt: number;
  passwordChangedAt: number;
  /** Normalised (NFKC, trimmed, lower case); null: none. Unique among verified addresses only. */
  email: string | null;
  /** The user proved they read mail at `email` (a link or a code from it). */
  emailVerified: boolean;
}

/** What a one-time email token is for: each purpose is redeemed by its own operation. */
export type EmailTokenPurpose = 'verify' | 'reset' | 'change' | 'undo';

/**
 * A one-time token sent by mail (a link, or a short code): only its hash is stored. It is bound
 * to one purpose, one user and the address it was sent to, and works once, before `expiresAt`.
 */
export interface EmailTokenRecord {
  hash: string;
  purpose: EmailTokenPurpose;
  userId: string;
  /** The address it was sent to (change: the new address; undo: the address to restore). */
  email: string;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
}

/**
 * A mail waiting to be sent. The store keeps it sealed (encrypted by the queue, see
 * mail/queue.ts) and never reads it: the links in it carry one-time tokens.
 */
export interface QueuedMail {
  id: string;
  /** The rendered mail, AES-256-GCM under a key derived from the server secret, bound to `id`. */
  sealed: string;
  queuedAt: number;
  /** Failed attempts so far. */
  attempts: number;
  /** Not tried again before this. */
  nextAttemptAt: number;
  /** Who claimed it to send it (a token of that claim), and until when; null when nobody has. */
  lease: string | null;
  leaseUntil: number | null;
}

export type NewQueuedMail = Pick<QueuedMail, 'id' | 'sealed' | 'queuedAt'>;

/**
 * A sign-in identity at an upstream provider, linked to one user. Keyed by (issuer, subject),
 * never by email: the email and name are what the provider said, kept for display only.
 */
export interface IdentityRecord {
  id: string;
  userId: string;
  issuer: string;
  subject: string;
  /** The configured provider it came through (`/auth/providers/{id}`). */
  providerId: string;
  email: string | null;
  name: string | null;
  createdAt: number;
}

export interface SessionRecord {
  id: string;
  userId: string;
  mode: SessionMode;
  /** Hash of the session secret (session mode); null in token mode, where refresh tokens carry secrets. */
  secretHash: string | null;
  createdAt: number;
  lastSeenAt: number;
  /** Absolute end. */
  expiresAt: number;
  /** Idle end; pushed forward by touchSession. */
  idleExpiresAt: number;
  userAgent: string | null;
  ip: string | null;
  revokedAt: number | null;
  revokeReason: string | null;
}

export interface RefreshTokenRecord {
  id: string;
  sessionId: string;
  secretHash: string;
  parentId: string | null;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
}

export type KeyState = 'next' | 'current' | 'retired';

export interface SigningKeyRecord {
  kid: string;
  alg: string;
  state: KeyState;
  publicJwk: Record<string, unknown>;
  /** Private key, encrypted at rest (see domain/keys.ts); empty once retired: it never signs again. */
  privateKeyEnc: string;
  createdAt: number;
  /** When a retired key may be dropped from the JWKS. Null while not retired. */
  retireUntil: number | null;
}

export interface RevocationEntry {
  /** Monotonic cursor, assigned by the store. */
  seq: number;
  sid: string | null;
  sub: string | null;
  /** With `sub`: tokens issued before this (unix seconds) are revoked. */
  notBefore: number | null;
  /** Unix seconds after which no token it could affect is alive. */
  expiresAt: number;
  reason: string;
}

export type NewRevocation = Omit<RevocationEntry, 'seq'>;

export type AuditType =
  | 'register'
  | 'login_ok'
  | 'login_failed'
  | 'lockout'
  | 'refresh_reuse'
  | 'logout'
  | 'logout_all'
  | 'session_ended'
  | 'password_change'
  | 'account_disabled'
  | 'account_enabled'
  | 'key_rotation'
  | 'oauth_consent'
  | 'oauth_code_replay'
  | 'oauth_refresh_reuse'
  | 'oauth_grant_revoked'
  | 'oauth_client_added'
  | 'oauth_client_removed'
  | 'identity_linked'
  | 'identity_unlinked'
  | 'federated_login'
  | 'federated_login_failed'
  | 'email_verification_sent'
  | 'email_verified'
  | 'email_change_requested'
  | 'email_changed'
  | 'email_change_undone'
  | 'password_reset_requested'
  | 'password_reset'
  | 'email_token_refused'
  | 'new_device_notice';

/** One security event; append-only, never holding a secret, a token or a password. */
export interface AuditEvent {
  /** Assigned by the store; newer events have larger numbers. */
  seq: number;
  at: number;
  type: AuditType;
  userId: string | null;
  sessionId: string | null;
  ip: string | null;
  userAgent: string | null;
  /** A short, secret-free note (a reason, a kid, a username that failed). */
  detail: string | null;
}

export type NewAuditEvent = Omit<AuditEvent, 'seq'>;

export interface AuditQuery {
  userId?: string;
  type?: AuditType;
  /** Only events older than this seq (paging backwards). */
  beforeSeq?: number;
  limit: number;
}
