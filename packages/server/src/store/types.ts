/**
 * The storage interface, named for what the domain needs. Every implementation (SQLite,
 * PostgreSQL, Redis) passes the one contract suite in test/store-contract.ts.
 * Times are milliseconds since the epoch.
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

export type RotateOutcome =
  /** The caller won: the token is now used and the successor stored. */
  | { outcome: 'rotated' }
  /** Used before, within the grace window: the caller answers with the same successor. */
  | { outcome: 'grace' }
  /** Used before, outside the grace window: the whole family has been revoked. */
  | { outcome: 'reused'; sessionId: string }
  /** No such live token (unknown, expired, or its session is gone). */
  | { outcome: 'invalid' };

export interface RotateRequest {
  id: string;
  successor: RefreshTokenRecord;
  now: number;
  graceMs: number;
  /** New idle end for the family session. */
  sessionIdleExpiresAt: number;
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
  | 'oauth_client_removed';

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

export interface Store {
  readonly kind: string;

  // users
  /** Returns null when the username is taken. */
  createUser(user: UserRecord): Promise<UserRecord | null>;
  getUserById(id: string): Promise<UserRecord | null>;
  getUserByUsername(username: string): Promise<UserRecord | null>;
  listUsers(limit: number, offset: number): Promise<UserRecord[]>;
  setPasswordHash(userId: string, passwordHash: string, changedAt: number): Promise<void>;
  setUserDisabled(userId: string, disabled: boolean): Promise<boolean>;

  // sessions
  createSession(session: SessionRecord): Promise<void>;
  getSession(id: string): Promise<SessionRecord | null>;
  /** Sliding expiry; a no-op on a revoked session. */
  touchSession(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void>;
  /** Live (not revoked, not expired) sessions of a user, newest first. */
  listSessions(userId: string, now: number): Promise<SessionRecord[]>;
  /** Revokes one session; true when it was live before. */
  revokeSession(id: string, now: number, reason: string): Promise<boolean>;
  /** Revokes every live session of a user but `exceptId`; returns the ids it revoked. */
  revokeUserSessions(userId: string, now: number, reason: string, exceptId?: string): Promise<string[]>;

  // refresh tokens
  insertRefreshToken(token: RefreshTokenRecord): Promise<void>;
  getRefreshToken(id: string): Promise<RefreshTokenRecord | null>;
  /** The atomic compare-and-set at the heart of refresh rotation. */
  rotateRefreshToken(request: RotateRequest): Promise<RotateOutcome>;

  // signing keys
  listSigningKeys(): Promise<SigningKeyRecord[]>;
  /**
   * Inserts `newNext` and, in the same transaction, moves next to current and current to
   * retired (with `retireUntil`, its private key erased), provided the ring's current kid is still `expectedCurrent`
   * (null for an empty ring). Returns false when another instance rotated first.
   */
  rotateSigningKeys(
    newNext: SigningKeyRecord,
    expectedCurrent: string | null,
    now: number,
    retireUntil: number,
  ): Promise<boolean>;
  /** Adds keys to an empty ring (first start); false if the ring was not empty. */
  initSigningKeys(keys: SigningKeyRecord[]): Promise<boolean>;
  deleteRetiredKeys(now: number): Promise<number>;

  // revocation feed
  appendRevocations(entries: NewRevocation[]): Promise<RevocationEntry[]>;
  /** Entries with seq > afterSeq that have not expired, oldest first. */
  listRevocations(afterSeq: number, nowSeconds: number, limit: number): Promise<RevocationEntry[]>;
  pruneRevocations(nowSeconds: number): Promise<number>;

  // counters (rate limits, lockouts)
  /**
   * Adds `by` (default 1; -1 gives a reservation back) to `key` in one atomic step and returns
   * the new count, never below 0. The window starts at the first hit and lasts `windowMs`.
   */
  hitCounter(key: string, windowMs: number, now: number, by?: number): Promise<number>;
  getCounter(key: string, now: number): Promise<number>;
  resetCounter(key: string): Promise<void>;
  /** A lock on `key` until `until`; getLock returns its end, or 0. */
  setLock(key: string, until: number): Promise<void>;
  getLock(key: string, now: number): Promise<number>;

  // audit trail
  appendAuditEvent(event: NewAuditEvent): Promise<void>;
  /** Newest first. */
  listAuditEvents(query: AuditQuery): Promise<AuditEvent[]>;

  ping(): Promise<void>;
  close(): Promise<void>;
}
