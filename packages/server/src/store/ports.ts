/**
 * Storage as role ports: each port is what one kind of caller needs, and nothing else.
 * A deployment picks a backend per role (see store/open.ts); a backend class may serve several
 * roles, but no class exists only to forward calls to another.
 *
 * Every port has one contract suite in test/contracts/, run against every backend that
 * implements it. Times are milliseconds since the epoch unless a name says seconds.
 */
import type { OAuthStore } from '../oauth/types.js';
import type {
  AuditEvent,
  AuditQuery,
  EmailTokenPurpose,
  EmailTokenRecord,
  IdentityRecord,
  NewAuditEvent,
  NewQueuedMail,
  NewRevocation,
  QueuedMail,
  RefreshTokenRecord,
  RevocationEntry,
  SessionRecord,
  SigningKeyRecord,
  UserRecord,
} from './types.js';

/** Accounts: the durable source of truth for users. */
export interface UserStore {
  /** Returns null when the username is taken. */
  createUser(user: UserRecord): Promise<UserRecord | null>;
  getUserById(id: string): Promise<UserRecord | null>;
  getUserByUsername(username: string): Promise<UserRecord | null>;
  listUsers(limit: number, offset: number): Promise<UserRecord[]>;
  /**
   * Sets the password hash; with `expectedHash`, only while the stored hash is still that one (a
   * rehash at login must not put back a password changed meanwhile). False when nothing was set.
   */
  setPasswordHash(
    userId: string,
    passwordHash: string,
    changedAt: number,
    expectedHash?: string,
  ): Promise<boolean>;
  setUserDisabled(userId: string, disabled: boolean): Promise<boolean>;
  /** The account whose verified address `email` (normalised) is; unverified claims are not found. */
  getUserByEmail(email: string): Promise<UserRecord | null>;
  /**
   * Sets the address (null: none) and whether it is verified. False when the user is missing, or
   * when `verified` and another account holds the address verified (the store enforces it).
   */
  setEmail(userId: string, email: string | null, verified: boolean): Promise<boolean>;
  /** Stores a one-time token (by its hash). */
  createEmailToken(token: EmailTokenRecord): Promise<void>;
  /** The token with this hash and purpose if it is unused and unexpired at `now`; nothing is spent. */
  getEmailToken(hash: string, purpose: EmailTokenPurpose, now: number): Promise<EmailTokenRecord | null>;
  /**
   * Spends the token in one atomic step and returns it; null when it is unknown, of another
   * purpose, used or expired, so of concurrent uses exactly one gets it.
   */
  useEmailToken(hash: string, purpose: EmailTokenPurpose, now: number): Promise<EmailTokenRecord | null>;
  /**
   * Spends, at `now`, every unused token of `userId` with one of `purposes` (issued at
   * `issuedFrom` or later, when given), so no link mailed before an account was secured (a
   * password changed or reset, sign out everywhere) still works; returns how many it spent.
   */
  spendEmailTokens(
    userId: string,
    purposes: readonly EmailTokenPurpose[],
    now: number,
    issuedFrom?: number,
  ): Promise<number>;
  /** Drops tokens that expired before `now`, used or not. */
  pruneEmailTokens(now: number): Promise<number>;
}

/**
 * Mails waiting to be sent: in every backend that holds users, so a restart or a mail server
 * that is down loses none, and every instance of a deployment drains the same queue. A mail is
 * claimed with a lease before it is sent, so of instances claiming at once each mail goes to one.
 */
export interface MailOutbox {
  /** Stores a mail, due at once. */
  queueMail(mail: NewQueuedMail): Promise<void>;
  /**
   * Leases up to `limit` mails that are due at `now` and not leased (or whose lease ended), oldest
   * first, to `lease` until `leaseUntil`, in one atomic step: concurrent claims get disjoint mails.
   */
  claimMail(lease: string, now: number, leaseUntil: number, limit: number): Promise<QueuedMail[]>;
  /** Sent or given up: removes the mail, if `lease` still holds it. */
  deleteMail(id: string, lease: string): Promise<boolean>;
  /** A failed attempt, if `lease` still holds the mail: counted, the lease ended, due again at `nextAttemptAt`. */
  retryMail(id: string, lease: string, nextAttemptAt: number): Promise<boolean>;
  /** Mails waiting, and how many of them have failed at least once. */
  countMail(): Promise<{ queued: number; retrying: number }>;
}

/** What `createUserWithIdentity` did: both rows, or neither. */
export type CreateWithIdentityResult = 'created' | 'username_taken' | 'identity_taken';

/** What `unlinkIdentity` did. `last`: refused, it is the user's only way in (no password, no other identity). */
export type UnlinkResult = 'unlinked' | 'not_found' | 'last';

/**
 * Upstream sign-in identities, keyed by (issuer, subject), each linked to one user: in every
 * backend that holds users, beside them. A user without a password (`passwordHash` '') signs in
 * only through their identities.
 */
export interface IdentityStore {
  getIdentity(issuer: string, subject: string): Promise<IdentityRecord | null>;
  /** The user's identities, oldest first. */
  listIdentities(userId: string): Promise<IdentityRecord[]>;
  /** Links an identity to an existing user; null when (issuer, subject) is linked already, to anyone. */
  linkIdentity(identity: IdentityRecord): Promise<IdentityRecord | null>;
  /** A new user and their first identity in one step: both are stored, or neither. */
  createUserWithIdentity(user: UserRecord, identity: IdentityRecord): Promise<CreateWithIdentityResult>;
  /**
   * Removes one of the user's identities, in one step with the check that the user keeps a way
   * in (a password or another identity); concurrent unlinks cannot leave a user with none.
   */
  unlinkIdentity(userId: string, identityId: string): Promise<UnlinkResult>;
}

/**
 * What a request needs to know of the user behind a session. Sessions are created from a user
 * and ended whenever the account is disabled or its password changes, so a backend that keeps
 * sessions apart from users (Redis) may keep this snapshot with the session.
 */
export type SessionUser = Pick<UserRecord, 'id' | 'username' | 'roles' | 'disabled'>;

/** A live session with its user, read in one round trip. */
export interface LiveSession {
  session: SessionRecord;
  user: SessionUser;
}

export interface RotateRequest {
  /** The presented refresh token: its id, and the hash of its secret (checked inside the step). */
  id: string;
  secretHash: string;
  /** The successor, derived from the parent by the caller (so a retry names the same one). */
  successorId: string;
  successorSecretHash: string;
  now: number;
  graceMs: number;
  /** The family's new idle end is min(session end, now + idleTtlMs). */
  idleTtlMs: number;
}

export type RotateResult =
  /**
   * `rotated`: the caller won; `grace`: a retry within the grace window while the successor is
   * still unused, answered with that successor (a replay whose successor is spent too is `reused`).
   */
  | {
      outcome: 'rotated' | 'grace';
      session: SessionRecord;
      user: SessionUser;
      /** When the successor refresh token expires. */
      successorExpiresAt: number;
    }
  /** Used before, outside the grace window: the session has been revoked in the same step. */
  | { outcome: 'reused'; sessionId: string; userId: string }
  /** Unknown id, wrong secret, expired token, or a session that is gone or ended. */
  | { outcome: 'invalid' };

/** How many characters of a refresh token's id follow its session's id. */
const REFRESH_ID_SUFFIX = 22;

/**
 * A refresh token's id is its session's id followed by 22 characters (random for the first token
 * of a session, derived from the parent for a successor), so a backend finds a token's session
 * from the presented id alone, with no lookup first: Redis keeps a session's refresh tokens in the
 * session's hash slot (store/redis-sessions.ts). `suffix` must have at least 22 characters.
 */
export function refreshTokenId(sessionId: string, suffix: string): string {
  if (suffix.length < REFRESH_ID_SUFFIX)
    throw new Error(`a refresh token id suffix has ${REFRESH_ID_SUFFIX} characters`);
  return sessionId + suffix.slice(0, REFRESH_ID_SUFFIX);
}

/** sessionOfRefreshToken's grace for a token used at any time (what a family's holder may do). */
export const ANY_USE = Number.MAX_SAFE_INTEGER;

/** sessionOfRefreshToken's grace for an unused token only (what acts for the user). */
export const UNUSED_ONLY = -1;

/** The session a refresh token id names; null when the id is too short to name one. */
export function sessionIdOfRefreshToken(id: string): string | null {
  return id.length > REFRESH_ID_SUFFIX ? id.slice(0, -REFRESH_ID_SUFFIX) : null;
}

/**
 * Whether a refresh token (its own expiry, when it was used) is one rotation would still honour
 * at `now`: unused and unexpired, or used at most `graceMs` ago (never, for a negative one). The
 * SQL stores' reading of sessionOfRefreshToken; the Redis script says the same in Lua.
 */
export function refreshStillHonoured(
  expiresAt: number,
  usedAt: number | null,
  now: number,
  graceMs: number,
): boolean {
  return usedAt === null ? expiresAt > now : graceMs >= 0 && now - usedAt <= graceMs;
}

/** Sessions a store deletes per transaction when it prunes ended ones. */
export const SESSION_PRUNE_BATCH = 500;

/** Sessions and the refresh-token families that live in them. */
export interface SessionStore {
  /** Stores a session and, in token mode, its first refresh token, in one step. */
  createSession(session: SessionRecord, user: SessionUser, firstRefresh?: RefreshTokenRecord): Promise<void>;
  getSession(id: string): Promise<SessionRecord | null>;
  /** The session if it is live at `now` (not revoked, not past either end), with its user. */
  getLiveSession(id: string, now: number): Promise<LiveSession | null>;
  /** Sliding expiry; a no-op on a revoked session. */
  touchSession(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void>;
  /** Live sessions of a user, newest first. */
  listSessions(userId: string, now: number): Promise<SessionRecord[]>;
  /** Revokes one session; true when it was live before. */
  revokeSession(id: string, now: number, reason: string): Promise<boolean>;
  /** Revokes every live session of a user but `exceptId`; returns the ids it revoked. */
  revokeUserSessions(userId: string, now: number, reason: string, exceptId?: string): Promise<string[]>;
  /**
   * The live session of a refresh token that rotation would still honour, without using the
   * token (CSRF tokens, logout, linking a provider): unused and unexpired, or used at most
   * `graceMs` ago. A spent token is no credential here either. `graceMs` of
   * Number.MAX_SAFE_INTEGER (ANY_USE) takes a token used at any time: its family's; a negative
   * one (UNUSED_ONLY) only an unused token, whatever the clocks say.
   */
  sessionOfRefreshToken(
    id: string,
    secretHash: string,
    now: number,
    graceMs: number,
  ): Promise<SessionRecord | null>;
  /** The compare-and-set at the heart of rotation: everything the caller needs, in one round trip. */
  rotateRefreshToken(request: RotateRequest): Promise<RotateResult>;
  /**
   * Deletes the sessions that ended (revoked, or past their idle or absolute end) before
   * `endedBefore`, with their refresh tokens; returns how many sessions went. Never touches a
   * session that is live or ended later. A store whose entries expire by themselves (Redis)
   * has nothing to delete.
   */
  pruneSessions(endedBefore: number): Promise<number>;
  /**
   * Resolves once no copy of a session this store has ended can still be served by any instance
   * (store/session-cache.ts); absent where nothing is copied. Whatever ends sessions calls it
   * before it answers, after it has told the revocation feed.
   */
  settle?(): Promise<void>;
}

/** The signing-key ring. */
export interface KeyStore {
  listSigningKeys(): Promise<SigningKeyRecord[]>;
  /**
   * Inserts `newNext` and, in the same step, moves next to current and current to retired (with
   * `retireUntil`, its private key erased), provided the ring's current kid is still
   * `expectedCurrent` (null for an empty ring). False when another instance rotated first.
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
}

/** The revocation log behind the feed. */
export interface RevocationLog {
  appendRevocations(entries: NewRevocation[]): Promise<RevocationEntry[]>;
  /** Entries with seq > afterSeq that have not expired, oldest first. */
  listRevocations(afterSeq: number, nowSeconds: number, limit: number): Promise<RevocationEntry[]>;
  pruneRevocations(nowSeconds: number): Promise<number>;
}

/** Rate limits and lockouts: hot, disposable state. */
export interface Counters {
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
}

/** The append-only audit trail. */
export interface AuditLog {
  appendAuditEvent(event: NewAuditEvent): Promise<void>;
  /** Newest first. */
  listAuditEvents(query: AuditQuery): Promise<AuditEvent[]>;
}

/** A connection to one backend (a database file, a PostgreSQL pool, a Redis client). */
export interface Backend {
  readonly kind: string;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Every role a running server needs, each from the backend the deployment picked for it. */
export interface Stores {
  users: UserStore;
  sessions: SessionStore;
  keys: KeyStore;
  revocations: RevocationLog;
  counters: Counters;
  audit: AuditLog;
  oauth: OAuthStore;
  identities: IdentityStore;
  mail: MailOutbox;
  /** The backends behind the roles, each once: readiness pings them all, shutdown closes them all. */
  backends: Backend[];
}
