// Records and set-up shared by the contract suites.
import { after, before } from 'node:test';
import type { AuthorizationCodeRecord, OAuthRefreshTokenRecord } from '../../src/oauth/types.js';
import { closeStores } from '../../src/store/open.js';
import type { Stores } from '../../src/store/ports.js';
import type { SessionRecord, UserRecord } from '../../src/store/types.js';
import { randomId } from '../../src/util/crypto.js';

export const T0 = 1_800_000_000_000;

/** What a contract suite is handed: a factory of stores that no test here can collide with. */
export type Open<K extends keyof Stores> = () => Promise<Pick<Stores, K | 'backends'>>;

export function user(overrides: Partial<UserRecord> = {}): UserRecord {
  return {
    id: randomId(),
    username: `user-${randomId().toLowerCase()}`,
    passwordHash: '$argon2id$fake',
    roles: ['user'],
    disabled: false,
    createdAt: T0,
    passwordChangedAt: T0,
    ...overrides,
  };
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
    usedAt: null,
    ...over,
  };
}

/** Opens the stores once for the enclosing describe and closes them after it; call inside it. */
export function opened<K extends keyof Stores>(open: Open<K>): { readonly stores: Pick<Stores, K> } {
  const holder: { stores: Pick<Stores, K | 'backends'> | undefined } = { stores: undefined };
  before(async () => {
    holder.stores = await open();
  });
  after(async () => {
    if (holder.stores) await closeStores(holder.stores);
  });
  return {
    get stores() {
      if (!holder.stores) throw new Error('stores not open yet');
      return holder.stores;
    },
  };
}
