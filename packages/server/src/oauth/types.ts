/**
 * What the OAuth 2 authorization server keeps: its role port, served by the same backend as the
 * accounts (store/ports.ts). Every implementation passes test/contracts/oauth.ts.
 * Times are milliseconds since the epoch; secrets are stored only as hashes.
 */

export type ClientType = 'public' | 'confidential';
export type GrantType = 'authorization_code' | 'refresh_token' | 'client_credentials';
export type ClientAuthMethod = 'none' | 'client_secret_basic' | 'client_secret_post';

export interface ClientRecord {
  id: string;
  name: string;
  type: ClientType;
  /** sha256 of the client secret (confidential clients), null for public clients. */
  secretHash: string | null;
  authMethod: ClientAuthMethod;
  /** Compared as exact strings, never as prefixes or patterns. */
  redirectUris: string[];
  grantTypes: GrantType[];
  /** The scopes this client may ask for. */
  scopes: string[];
  /** Access tokens of this client must be DPoP-bound. */
  requireDpop: boolean;
  /**
   * RFC 8707 resource indicators this client may ask tokens for (exact strings); each becomes
   * the `aud` of the access tokens issued for it.
   */
  resources: string[];
  createdAt: number;
}

/** The subject of a client's own grant (client credentials): never a user id, which has no colon. */
export function clientSubject(clientId: string): string {
  return `client:${clientId}`;
}

/** The user a grant's subject names, or null for a client's own grant. */
export function userOfSubject(subject: string): string | null {
  return subject.startsWith('client:') ? null : subject;
}

/**
 * A grant: one user's standing consent to one client (or a client's own, see clientSubject), and the `sid` of every token issued under
 * it. At most one live grant per (user, client); revoking it kills all its tokens.
 */
export interface GrantRecord {
  id: string;
  userId: string;
  clientId: string;
  /** Space-separated scopes the user consented to. */
  scope: string;
  createdAt: number;
  updatedAt: number;
  revokedAt: number | null;
  revokeReason: string | null;
}

/** What upsertGrant is given: the id a new grant takes, and the scope to grant. */
export interface UpsertGrantInput {
  id: string;
  userId: string;
  clientId: string;
  scope: string;
  now: number;
}

/** The grant upsertGrant creates when (user, client) has none live. */
export function newGrant(input: UpsertGrantInput, scope: string): GrantRecord {
  return {
    id: input.id,
    userId: input.userId,
    clientId: input.clientId,
    scope,
    createdAt: input.now,
    updatedAt: input.now,
    revokedAt: null,
    revokeReason: null,
  };
}

export interface AuthorizationCodeRecord {
  /** sha256 of the code: the code itself is never stored. */
  codeHash: string;
  clientId: string;
  userId: string;
  grantId: string;
  redirectUri: string;
  /** The authorization request named the redirect_uri (then the token request must repeat it). */
  redirectUriGiven: boolean;
  scope: string;
  codeChallenge: string;
  nonce: string | null;
  /** When the user last signed in (ms): the ID token's auth_time. */
  authTime: number;
  /** RFC 9449 §10: the DPoP key the authorization request bound the code to, if any. */
  dpopJkt: string | null;
  createdAt: number;
  expiresAt: number;
  consumedAt: number | null;
}

export interface OAuthRefreshTokenRecord {
  id: string;
  grantId: string;
  clientId: string;
  userId: string;
  secretHash: string;
  scope: string;
  /** DPoP key thumbprint the token is bound to (public clients using DPoP). */
  dpopJkt: string | null;
  parentId: string | null;
  createdAt: number;
  /** The earlier of its idle end and its chain's absolute end. */
  expiresAt: number;
  /**
   * The absolute end of its chain (the code exchange that began it plus the refresh absolute
   * lifetime), passed on to every successor. A spent token is kept until then, so a replay of it
   * however late is reuse while any token of its chain can still be used. Null on a token issued
   * before chains had one: its successor's chain ends the refresh absolute lifetime after it.
   */
  familyExpiresAt: number | null;
  usedAt: number | null;
}

/**
 * How long prune keeps a token from before chains had an absolute end (familyExpiresAt null)
 * after it was issued: the longest absolute lifetime a setting allows, plus the day every ended
 * row is kept.
 */
export const LEGACY_CHAIN_KEPT_MS = 366 * 86_400_000;

export type OAuthRotateOutcome =
  | { outcome: 'rotated' }
  /** Used before, within the grace window, its successor unused: the caller answers with that (derived) successor. */
  | { outcome: 'grace' }
  /** Used before, outside the grace window: theft suspected; the caller revokes the grant. */
  | { outcome: 'reused'; grantId: string }
  | { outcome: 'invalid' };

export interface OAuthStore {
  // clients
  /** False when the id is taken. */
  createClient(client: ClientRecord): Promise<boolean>;
  getClient(id: string): Promise<ClientRecord | null>;
  listClients(): Promise<ClientRecord[]>;
  /** True when it existed. Its grants are revoked by the caller (see OAuthService.removeClient). */
  deleteClient(id: string): Promise<boolean>;

  // grants
  /** The live grant of a user to a client, if any. */
  getLiveGrant(userId: string, clientId: string): Promise<GrantRecord | null>;
  getGrant(id: string): Promise<GrantRecord | null>;
  /**
   * Creates the live grant of (user, client) or widens its scope to include `scope`; one
   * transaction, so two concurrent consents leave one grant. Returns it.
   */
  upsertGrant(input: UpsertGrantInput): Promise<GrantRecord>;
  /** Live grants of a user, newest first. */
  listGrants(userId: string): Promise<GrantRecord[]>;
  /** Live grants of a client (for removing a client). */
  listClientGrants(clientId: string): Promise<GrantRecord[]>;
  /** Revokes a live grant and its refresh tokens; true when it was live. */
  revokeGrant(id: string, now: number, reason: string): Promise<boolean>;

  // authorization codes
  insertCode(code: AuthorizationCodeRecord): Promise<void>;
  getCode(codeHash: string): Promise<AuthorizationCodeRecord | null>;
  /** The consume-once compare-and-set: exactly one caller gets true. */
  consumeCode(codeHash: string, now: number): Promise<boolean>;

  // refresh tokens
  insertRefreshToken(token: OAuthRefreshTokenRecord): Promise<void>;
  getRefreshToken(id: string): Promise<OAuthRefreshTokenRecord | null>;
  /**
   * Marks `id` used and stores `successor`, atomically, if `id` is unused, unexpired and its
   * grant live. A token used at most `graceMs` ago answers `grace`; used earlier, `reused` (the
   * caller revokes the grant).
   */
  rotateRefreshToken(
    id: string,
    now: number,
    successor: OAuthRefreshTokenRecord,
    graceMs?: number,
  ): Promise<OAuthRotateOutcome>;

  // DPoP replay cache
  /** Records a proof's jti until `expiresAt`; false when it was seen before (a replay). */
  rememberJti(key: string, expiresAt: number, now: number): Promise<boolean>;

  /**
   * Deletes what ended a day before `now`: codes, jti entries, and refresh tokens that can no
   * longer count. An unused token goes a day after it expired; a spent one only a day after its
   * chain's absolute end (or its grant's revocation), so its replay is reuse until then.
   */
  prune(now: number): Promise<void>;
}
