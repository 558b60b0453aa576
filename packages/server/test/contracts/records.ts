// Records the contract suites build their cases from.
import type { AuthorizationCodeRecord, OAuthRefreshTokenRecord } from '../../src/oauth/types.js';
import { refreshTokenId, type SessionUser } from '../../src/store/ports.js';
import type {
  RefreshTokenRecord,
  SessionRecord,
  SigningKeyRecord,
  UserRecord,
} from '../../src/store/types.js';
import { randomId } from '../../src/util/crypto.js';

/** A fixed clock far from the real one, so no case depends on when it runs. */
export const T0 = 1_800_000_000_000;

export function user(overrides: Partial<UserRecord> = {}): UserRecord {
  return {
    id: randomId(),
    username: `user-${randomId().toLowerCase()}`,
    passwordHash: '$argon2id$fake',
    roles: ['user'],
    disabled: false,
    createdAt: T0,
    passwordChangedAt: T0,
    email: null,
    emailVerified: false,
    ...overrides,
  };
}

export function sessionUser(u: UserRecord): SessionUser {
  return { id: u.id, username: u.username, roles: u.roles, disabled: u.disabled };
}

export function session(userId: string, overrides: Partial<SessionRecord> = {}): SessionRecord {
  return {
    id: randomId(),
    userId,
    mode: 'token',
    secretHash: null,
    createdAt: T0,
    lastSeenAt: T0,
    expiresAt: T0 + 3_600_000,
    idleExpiresAt: T0 + 600_000,
    userAgent: 'test-agent',
    ip: '127.0.0.1',
    revokedAt: null,
    revokeReason: null,
    ...overrides,
  };
}

/** A refresh token of a session; its id begins with the session's id (ports.ts, refreshTokenId). */
export function refresh(sessionId: string, overrides: Partial<RefreshTokenRecord> = {}): RefreshTokenRecord {
  return {
    id: refreshTokenId(sessionId, randomId()),
    sessionId,
    secretHash: `hash-${randomId()}`,
    parentId: null,
    createdAt: T0,
    expiresAt: T0 + 600_000,
    usedAt: null,
    ...overrides,
  };
}

export function key(kid: string, state: SigningKeyRecord['state'], createdAt = T0): SigningKeyRecord {
  return {
    kid,
    alg: 'ES256',
    state,
    publicJwk: { kty: 'EC', kid },
    privateKeyEnc: `enc-${kid}`,
    createdAt,
    retireUntil: null,
  };
}

export function oauthCode(
  grantId: string,
  over: Partial<AuthorizationCodeRecord> = {},
): AuthorizationCodeRecord {
  return {
    codeHash: randomId(),
    clientId: 'c',
    userId: 'u',
    grantId,
    redirectUri: 'https://app.example/cb',
    redirectUriGiven: true,
    scope: 'openid api',
    codeChallenge: 'x'.repeat(43),
    nonce: null,
    authTime: T0,
    dpopJkt: null,
    createdAt: T0,
    expiresAt: T0 + 60_000,
    consumedAt: null,
    ...over,
  };
}

export function oauthRefresh(
  grantId: string,
  over: Partial<OAuthRefreshTokenRecord> = {},
): OAuthRefreshTokenRecord {
  return {
    id: randomId(),
    grantId,
    clientId: 'c',
    userId: 'u',
    secretHash: 'h',
    scope: 'api',
    dpopJkt: null,
    parentId: null,
    createdAt: T0,
    expiresAt: T0 + 86_400_000,
    familyExpiresAt: T0 + 30 * 86_400_000,
    usedAt: null,
    ...over,
  };
}
