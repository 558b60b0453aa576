import { createHash } from 'node:crypto';
import {
  boundJkt,
  type DpopFailureReason,
  type DpopReplayStore,
  rememberProof,
  scopesOf,
  VerifyError,
  verifyDpopProof,
  verifyTokenRequestProof,
} from '@tessera/verify';
import type { Config } from '../config.js';
import type { Revocations } from '../domain/revocations.js';
import { refreshSuccessor, type Secrets } from '../domain/secrets.js';
import type { AccessClaims, TokenIssuer } from '../domain/tokens.js';
import type { SessionUser, Stores } from '../store/ports.js';
import type { AuditType, SessionRecord, UserRecord } from '../store/types.js';
import { hmac, randomId, randomToken, safeEqual, sha256, splitIdSecret } from '../util/crypto.js';
import { type AuthorizationRequest, type Params, resolveScope, single } from './authorize.js';
import {
  authenticateClient,
  buildClient,
  type ClientCredentials,
  ClientRegistrationError,
  type NewClient,
} from './clients.js';
import { OAuthError } from './errors.js';
import {
  type ClientRecord,
  clientSubject,
  type GrantRecord,
  type OAuthRefreshTokenRecord,
  type OAuthStore,
  userOfSubject,
} from './types.js';

export const CODE_TTL_MS = 60_000;
/** Scopes that concern the user's identity; they make no sense without a user. */
const USER_SCOPES = new Set(['openid', 'profile', 'offline_access']);
/** How long a consent form may be answered after it was shown. */
const CONSENT_FORM_SECONDS = 600;

export interface OAuthDeps {
  config: Config;
  stores: Pick<Stores, 'users' | 'audit' | 'oauth'>;
  tokens: TokenIssuer;
  revocations: Revocations;
  secrets: Secrets;
  now?: () => number;
}

export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer' | 'DPoP';
  expires_in: number;
  scope: string;
  refresh_token?: string;
  id_token?: string;
}

/** What the token endpoint was sent, besides the form. */
export interface TokenRequestContext {
  credentials: ClientCredentials;
  dpopProof: string | undefined;
}

export interface IntrospectionResponse {
  active: boolean;
  [claim: string]: unknown;
}

/** What an access token is bound to: a DPoP key (`cnf.jkt`) and a resource (`aud`). */
interface Issue {
  jkt: string | undefined;
  resource: string | undefined;
}

/** error_description for each way a DPoP proof is refused. */
const DPOP_REFUSALS: Record<DpopFailureReason, string> = {
  missing: 'A DPoP proof is required.',
  multiple: 'Send exactly one DPoP proof.',
  too_large: 'The DPoP proof is too large.',
  malformed: 'The DPoP proof is not a JWT.',
  typ: 'The DPoP proof must have typ dpop+jwt.',
  alg: 'DPoP proofs must be signed with ES256.',
  crit: 'The DPoP proof has unsupported critical headers.',
  jwk: 'The DPoP proof must carry a public P-256 jwk.',
  signature: 'The DPoP proof signature is wrong.',
  htm: 'The DPoP proof is for another HTTP method.',
  htu: 'The DPoP proof is for another URL.',
  iat: 'The DPoP proof is too old or from the future.',
  jti: 'The DPoP proof needs a jti.',
  ath: 'The DPoP proof is not for this access token.',
};

/**
 * A DPoP check of @tessera/verify as the OAuth error clients expect; a replay store that cannot
 * answer surfaces as the store's own error.
 */
async function dpopChecked<T>(check: () => T | Promise<T>): Promise<T> {
  try {
    return await check();
  } catch (err) {
    if (!(err instanceof VerifyError)) throw err;
    if (err.code === 'dpop_replay_unavailable') throw err.cause;
    if (err.code === 'dpop_replayed')
      throw new OAuthError('invalid_dpop_proof', 'The DPoP proof was used before.');
    throw new OAuthError('invalid_dpop_proof', DPOP_REFUSALS[err.reason ?? 'malformed']);
  }
}

const invalidGrant = (why = 'The grant is invalid, expired or revoked.') =>
  new OAuthError('invalid_grant', why);

/** The OAuth 2 authorization server's domain: no HTTP in here. */
export class OAuthService {
  private readonly now: () => number;
  readonly tokenEndpoint: string;
  /** Proof ids, kept in the OAuth store so a proof is accepted once across every instance. */
  private readonly dpopReplay: DpopReplayStore;

  constructor(private readonly deps: OAuthDeps) {
    this.now = deps.now ?? Date.now;
    this.tokenEndpoint = `${deps.config.issuer}/oauth/token`;
    this.dpopReplay = {
      remember: (id, expiresAt, now) => deps.stores.oauth.rememberJti(id, expiresAt, now),
    };
  }

  get store(): OAuthStore {
    return this.deps.stores.oauth;
  }

  /** The account server's audit trail; the grant id goes where a session id would. */
  private audit(
    type: AuditType,
    userId: string | null,
    grantId: string | null,
    detail: string,
  ): Promise<void> {
    return this.deps.stores.audit.appendAuditEvent({
      at: this.now(),
      type,
      // Machines' grants belong to no user.
      userId: userId === null ? null : userOfSubject(userId),
      sessionId: grantId,
      ip: null,
      userAgent: null,
      detail,
    });
  }

  // clients

  async addClient(input: NewClient): Promise<{ client: ClientRecord; secret: string | null }> {
    const built = buildClient(input, this.now());
    // First-party APIs trust the configured audience: no OAuth client may be issued tokens for it.
    if (built.client.resources.includes(this.deps.config.audience))
      throw new ClientRegistrationError('resource: the first-party audience cannot be an OAuth resource');
    if (!(await this.deps.stores.oauth.createClient(built.client))) {
      throw new OAuthError('invalid_request', 'A client with this id exists.');
    }
    await this.audit('oauth_client_added', null, null, `client ${built.client.id}`);
    return built;
  }

  /** Removes a client and kills everything issued to it. */
  async removeClient(id: string): Promise<boolean> {
    for (const grant of await this.deps.stores.oauth.listClientGrants(id))
      await this.revokeGrant(grant.id, 'client_removed');
    const removed = await this.deps.stores.oauth.deleteClient(id);
    if (removed) await this.audit('oauth_client_removed', null, null, `client ${id}`);
    return removed;
  }

  authenticateClient(credentials: ClientCredentials): Promise<ClientRecord> {
    return authenticateClient(this.deps.stores.oauth, credentials);
  }

  // consent and codes

  /** The scopes still to be consented to; empty when the live grant already covers the request. */
  async missingConsent(userId: string, request: AuthorizationRequest): Promise<string[]> {
    const grant = await this.deps.stores.oauth.getLiveGrant(userId, request.client.id);
    const have = new Set(grant ? grant.scope.split(' ') : []);
    return request.scope.filter((s) => !have.has(s));
  }

  /**
   * Binds the consent form to the session, to the exact authorization request it showed (client,
   * redirect URI, scope, PKCE challenge, nonce, DPoP key) and to when it was shown:
   * `<seconds>.<mac>`, good for CONSENT_FORM_SECONDS.
   */
  consentToken(sessionId: string, request: AuthorizationRequest, at = Math.floor(this.now() / 1000)): string {
    const mac = hmac(
      this.deps.secrets.csrf,
      'oauth-consent',
      sessionId,
      request.client.id,
      request.redirectUri,
      request.scope.join(' '),
      request.codeChallenge,
      request.nonce ?? '',
      request.dpopJkt ?? '',
      String(at),
    );
    return `${at}.${mac}`;
  }

  checkConsentToken(
    sessionId: string,
    request: AuthorizationRequest,
    presented: string | undefined,
  ): boolean {
    const m = presented === undefined ? null : /^(\d{1,12})\.[A-Za-z0-9_-]+$/.exec(presented);
    if (!m) return false;
    const at = Number(m[1]);
    const age = this.now() / 1000 - at;
    if (age < -5 || age > CONSENT_FORM_SECONDS) return false;
    return safeEqual(presented!, this.consentToken(sessionId, request, at));
  }

  /** Records consent (widening the live grant) and issues a single-use, 60-second code. */
  async issueCode(user: SessionUser, session: SessionRecord, request: AuthorizationRequest): Promise<string> {
    const now = this.now();
    const before = await this.deps.stores.oauth.getLiveGrant(user.id, request.client.id);
    const grant = await this.deps.stores.oauth.upsertGrant({
      id: randomId(),
      userId: user.id,
      clientId: request.client.id,
      scope: request.scope.join(' '),
      now,
    });
    if (before?.scope !== grant.scope)
      await this.audit('oauth_consent', user.id, grant.id, `client ${request.client.id}: ${grant.scope}`);
    const code = randomToken(32);
    await this.deps.stores.oauth.insertCode({
      codeHash: sha256(code),
      clientId: request.client.id,
      userId: user.id,
      grantId: grant.id,
      redirectUri: request.redirectUri,
      redirectUriGiven: request.redirectUriGiven,
      scope: request.scope.join(' '),
      codeChallenge: request.codeChallenge,
      nonce: request.nonce ?? null,
      authTime: session.createdAt,
      dpopJkt: request.dpopJkt ?? null,
      createdAt: now,
      expiresAt: now + CODE_TTL_MS,
      consumedAt: null,
    });
    return code;
  }

  // the token endpoint

  async token(params: Params, context: TokenRequestContext): Promise<TokenResponse> {
    const grantType = single(params, 'grant_type');
    if (grantType === undefined) throw new OAuthError('invalid_request', 'The grant_type is missing.');
    if (!['authorization_code', 'refresh_token', 'client_credentials'].includes(grantType)) {
      throw new OAuthError('unsupported_grant_type', 'This grant type is not supported.');
    }
    const client = await this.authenticateClient(context.credentials);
    if (!client.grantTypes.includes(grantType as ClientRecord['grantTypes'][number])) {
      throw new OAuthError('unauthorized_client', 'This client may not use this grant type.');
    }
    const resource = this.resourceFor(client, params);
    const now = this.now();
    const jkt =
      context.dpopProof !== undefined ? await this.tokenRequestProof(context.dpopProof, now) : undefined;
    if (client.requireDpop && jkt === undefined)
      throw new OAuthError('invalid_dpop_proof', 'This client must send a DPoP proof.');
    switch (grantType) {
      case 'authorization_code':
        return this.redeemCode(client, params, { jkt, resource }, now);
      case 'refresh_token':
        return this.redeemRefreshToken(client, params, { jkt, resource }, now);
      default:
        return this.clientCredentials(client, params, { jkt, resource }, now);
    }
  }

  /** RFC 9449 §5: a fresh proof for this endpoint; its key's thumbprint becomes the token's `cnf.jkt`. */
  private tokenRequestProof(proof: string, nowMs: number): Promise<string> {
    return dpopChecked(async () => {
      const checked = verifyTokenRequestProof(proof, { method: 'POST', url: this.tokenEndpoint, nowMs });
      await rememberProof(this.dpopReplay, checked, nowMs);
      return checked.jkt;
    });
  }

  /**
   * RFC 8707: the one resource the access token is for, among those registered for the client.
   * Without one the token's audience is this server (userinfo, introspection), never the
   * first-party audience, so APIs that expect first-party tokens refuse it.
   */
  private resourceFor(client: ClientRecord, params: Params): string | undefined {
    if ((params.resource?.length ?? 0) > 1)
      throw new OAuthError('invalid_target', 'Ask for one resource per token request.');
    const resource = single(params, 'resource');
    if (resource !== undefined && !client.resources.includes(resource))
      throw new OAuthError('invalid_target', 'This client may not ask tokens for this resource.');
    return resource;
  }

  private async redeemCode(
    client: ClientRecord,
    params: Params,
    { jkt, resource }: Issue,
    now: number,
  ): Promise<TokenResponse> {
    const code = single(params, 'code');
    const verifier = single(params, 'code_verifier');
    const redirectUri = single(params, 'redirect_uri');
    if (code === undefined) throw new OAuthError('invalid_request', 'The code is missing.');
    if (verifier === undefined)
      throw new OAuthError('invalid_request', 'PKCE is required: send code_verifier.');
    const codeHash = sha256(code);
    const record = code.length <= 128 ? await this.deps.stores.oauth.getCode(codeHash) : null;
    if (!record) throw invalidGrant();
    // RFC 6749 §4.1.2: a code used twice revokes what its first use issued.
    if (record.consumedAt !== null) {
      await this.audit('oauth_code_replay', record.userId, record.grantId, `client ${client.id}`);
      await this.revokeGrant(record.grantId, 'code_replay');
      throw invalidGrant();
    }
    if (record.expiresAt <= now) throw invalidGrant('The authorization code has expired.');
    if (record.clientId !== client.id) throw invalidGrant();
    if (
      record.redirectUriGiven
        ? redirectUri !== record.redirectUri
        : redirectUri !== undefined && redirectUri !== record.redirectUri
    ) {
      throw invalidGrant('The redirect_uri does not match the authorization request.');
    }
    if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier)) throw invalidGrant('The code_verifier is malformed.');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    if (!safeEqual(challenge, record.codeChallenge)) throw invalidGrant('PKCE verification failed.');
    if (record.dpopJkt !== null && record.dpopJkt !== jkt)
      throw new OAuthError('invalid_dpop_proof', 'The DPoP key differs from the one the code is bound to.');
    if (!(await this.deps.stores.oauth.consumeCode(codeHash, now))) {
      await this.audit('oauth_code_replay', record.userId, record.grantId, `client ${client.id}`);
      await this.revokeGrant(record.grantId, 'code_replay');
      throw invalidGrant();
    }
    const grant = await this.liveGrant(record.grantId, client.id);
    const user = await this.liveUser(grant.userId);
    // A refresh token only where the user consented to access while away (`offline_access`).
    const scopes = record.scope.split(' ');
    const refreshToken =
      client.grantTypes.includes('refresh_token') && scopes.includes('offline_access')
        ? await this.newRefreshToken(grant, client, record.scope, jkt, null, now)
        : undefined;
    return this.respond({
      client,
      sub: user.id,
      grantId: grant.id,
      scope: record.scope,
      jkt,
      resource,
      now,
      refreshToken,
      idToken: scopes.includes('openid')
        ? { user, nonce: record.nonce, authTime: record.authTime }
        : undefined,
    });
  }

  private async redeemRefreshToken(
    client: ClientRecord,
    params: Params,
    { jkt, resource }: Issue,
    now: number,
  ): Promise<TokenResponse> {
    const token = single(params, 'refresh_token');
    if (token === undefined) throw new OAuthError('invalid_request', 'The refresh_token is missing.');
    const parts = splitIdSecret(token);
    const record = parts ? await this.deps.stores.oauth.getRefreshToken(parts.id) : null;
    if (!parts || !record || !safeEqual(record.secretHash, sha256(parts.secret))) throw invalidGrant();
    if (record.clientId !== client.id) throw invalidGrant();
    if (record.dpopJkt !== null && record.dpopJkt !== jkt)
      throw new OAuthError('invalid_dpop_proof', 'This refresh token is bound to another DPoP key.');
    const requested = single(params, 'scope');
    const scope =
      requested === undefined ? record.scope : resolveScope(requested, record.scope.split(' ')).join(' ');
    const successor = this.refreshRecord(
      record.grantId,
      client,
      record.userId,
      record.scope,
      record.dpopJkt,
      record.id,
      now,
      record.familyExpiresAt ?? record.createdAt + this.deps.config.refreshAbsoluteTtl * 1000,
      // Derived like first-party successors: a retry within the grace window gets the same one.
      refreshSuccessor(this.deps.secrets.refreshDerivation, parts.id, parts.secret),
    );
    const result = await this.deps.stores.oauth.rotateRefreshToken(
      record.id,
      now,
      successor.record,
      this.deps.config.refreshGraceSeconds * 1000,
    );
    if (result.outcome === 'reused') {
      await this.audit('oauth_refresh_reuse', record.userId, result.grantId, `client ${client.id}`);
      await this.revokeGrant(result.grantId, 'refresh_reuse');
      throw invalidGrant('The refresh token was used before; the grant has been revoked.');
    }
    if (result.outcome === 'invalid') throw invalidGrant();
    const grant = await this.liveGrant(record.grantId, client.id);
    const user = await this.liveUser(grant.userId);
    return this.respond({
      client,
      sub: user.id,
      grantId: grant.id,
      scope,
      jkt,
      resource,
      now,
      refreshToken: successor.token,
      idToken: undefined,
    });
  }

  private async clientCredentials(
    client: ClientRecord,
    params: Params,
    { jkt, resource }: Issue,
    now: number,
  ): Promise<TokenResponse> {
    if (client.type !== 'confidential')
      throw new OAuthError('unauthorized_client', 'Only confidential clients may use client_credentials.');
    const allowed = client.scopes.filter((s) => !USER_SCOPES.has(s));
    const scope = resolveScope(single(params, 'scope'), allowed).join(' ');
    const subject = clientSubject(client.id);
    const grant = await this.deps.stores.oauth.upsertGrant({
      id: randomId(),
      userId: subject,
      clientId: client.id,
      scope,
      now,
    });
    return this.respond({
      client,
      sub: subject,
      grantId: grant.id,
      scope,
      jkt,
      resource,
      now,
      refreshToken: undefined,
      idToken: undefined,
    });
  }

  private async liveGrant(id: string, clientId: string): Promise<GrantRecord> {
    const grant = await this.deps.stores.oauth.getGrant(id);
    if (!grant || grant.revokedAt !== null || grant.clientId !== clientId) throw invalidGrant();
    return grant;
  }

  private async liveUser(id: string): Promise<UserRecord> {
    const user = await this.deps.stores.users.getUserById(id);
    if (!user || user.disabled) throw invalidGrant();
    return user;
  }

  private refreshRecord(
    grantId: string,
    client: ClientRecord,
    userId: string,
    scope: string,
    jkt: string | null,
    parentId: string | null,
    now: number,
    familyExpiresAt: number,
    derived?: { id: string; secret: string },
  ): { token: string; record: OAuthRefreshTokenRecord } {
    const id = derived?.id ?? randomId();
    const secret = derived?.secret ?? randomToken(32);
    return {
      token: `${id}.${secret}`,
      record: {
        id,
        grantId,
        clientId: client.id,
        userId,
        secretHash: sha256(secret),
        scope,
        dpopJkt: jkt,
        parentId,
        createdAt: now,
        expiresAt: Math.min(now + this.deps.config.refreshIdleTtl * 1000, familyExpiresAt),
        familyExpiresAt,
        usedAt: null,
      },
    };
  }

  private async newRefreshToken(
    grant: GrantRecord,
    client: ClientRecord,
    scope: string,
    jkt: string | undefined,
    parentId: string | null,
    now: number,
  ): Promise<string> {
    // RFC 9449 §5: only public clients' refresh tokens are bound to their DPoP key.
    const bind = client.type === 'public' ? (jkt ?? null) : null;
    const { token, record } = this.refreshRecord(
      grant.id,
      client,
      grant.userId,
      scope,
      bind,
      parentId,
      now,
      now + this.deps.config.refreshAbsoluteTtl * 1000,
    );
    await this.deps.stores.oauth.insertRefreshToken(record);
    return token;
  }

  private async respond(input: {
    client: ClientRecord;
    sub: string;
    grantId: string;
    scope: string;
    jkt: string | undefined;
    resource: string | undefined;
    now: number;
    refreshToken: string | undefined;
    idToken: { user: UserRecord; nonce: string | null; authTime: number } | undefined;
  }): Promise<TokenResponse> {
    const { config, tokens } = this.deps;
    const accessToken = await tokens.oauthAccessToken(
      {
        sub: input.sub,
        grantId: input.grantId,
        scope: input.scope,
        clientId: input.client.id,
        resource: input.resource,
        jkt: input.jkt,
      },
      input.now,
    );
    const out: TokenResponse = {
      access_token: accessToken,
      token_type: input.jkt !== undefined ? 'DPoP' : 'Bearer',
      expires_in: config.accessTokenTtl,
      scope: input.scope,
    };
    if (input.refreshToken !== undefined) out.refresh_token = input.refreshToken;
    if (input.idToken) {
      out.id_token = await tokens.idToken(
        {
          user: input.idToken.user,
          clientId: input.client.id,
          nonce: input.idToken.nonce,
          authTime: input.idToken.authTime,
          accessToken,
          profile: input.scope.split(' ').includes('profile'),
        },
        input.now,
      );
    }
    return out;
  }

  // revocation, introspection, userinfo

  /** Revokes a grant and every token issued under it, and tells every API server (the feed). */
  async revokeGrant(id: string, reason: string): Promise<boolean> {
    const now = this.now();
    const grant = await this.deps.stores.oauth.getGrant(id);
    const wasLive = await this.deps.stores.oauth.revokeGrant(id, now, reason);
    if (wasLive) {
      await this.deps.revocations.revokeSessions([id], reason, now);
      await this.audit(
        'oauth_grant_revoked',
        grant?.userId ?? null,
        id,
        `client ${grant?.clientId}: ${reason}`,
      );
    }
    return wasLive;
  }

  private audiencesOf(client: ClientRecord): string[] {
    return [this.deps.config.issuer, ...client.resources];
  }

  /** An OAuth access token of ours for one of `audiences`, or undefined for anything else. */
  private async verifyAccessToken(
    token: string,
    audiences: readonly string[],
  ): Promise<AccessClaims | undefined> {
    try {
      return await this.deps.tokens.verifyOAuth(token, audiences);
    } catch (err) {
      if (err instanceof VerifyError) return undefined;
      throw err;
    }
  }

  /** RFC 7009: always "done", whether or not there was anything to revoke. */
  async revoke(params: Params, credentials: ClientCredentials): Promise<void> {
    const client = await this.authenticateClient(credentials);
    const token = single(params, 'token');
    if (token === undefined) throw new OAuthError('invalid_request', 'The token is missing.');
    single(params, 'token_type_hint');
    const parts = splitIdSecret(token);
    if (parts) {
      const record = await this.deps.stores.oauth.getRefreshToken(parts.id);
      if (record && record.clientId === client.id && safeEqual(record.secretHash, sha256(parts.secret))) {
        await this.revokeGrant(record.grantId, 'revoked_by_client');
      }
      return;
    }
    const claims = await this.verifyAccessToken(token, this.audiencesOf(client));
    if (claims && claims.client_id === client.id) await this.revokeGrant(claims.sid, 'revoked_by_client');
  }

  /** RFC 7662, for confidential clients, about tokens issued to them. */
  async introspect(params: Params, credentials: ClientCredentials): Promise<IntrospectionResponse> {
    const client = await this.authenticateClient(credentials);
    if (client.type !== 'confidential')
      throw new OAuthError('invalid_client', 'Only confidential clients may introspect tokens.');
    const token = single(params, 'token');
    if (token === undefined) throw new OAuthError('invalid_request', 'The token is missing.');
    single(params, 'token_type_hint');
    const inactive = { active: false };
    const parts = splitIdSecret(token);
    if (parts) {
      const record = await this.deps.stores.oauth.getRefreshToken(parts.id);
      if (!record || record.clientId !== client.id || !safeEqual(record.secretHash, sha256(parts.secret)))
        return inactive;
      if (record.usedAt !== null || record.expiresAt <= this.now()) return inactive;
      const grant = await this.deps.stores.oauth.getGrant(record.grantId);
      const user = await this.deps.stores.users.getUserById(record.userId);
      if (!grant || grant.revokedAt !== null || !user || user.disabled) return inactive;
      if (await this.deps.revocations.isRevoked({ sid: grant.id }, this.now())) return inactive;
      return {
        active: true,
        token_type: 'refresh_token',
        client_id: record.clientId,
        sub: record.userId,
        username: user.username,
        scope: record.scope,
        iat: Math.floor(record.createdAt / 1000),
        exp: Math.floor(record.expiresAt / 1000),
        iss: this.deps.config.issuer,
      };
    }
    const claims = await this.verifyAccessToken(token, this.audiencesOf(client));
    if (!claims || claims.client_id !== client.id) return inactive;
    const grant = await this.deps.stores.oauth.getGrant(claims.sid);
    if (!grant || grant.revokedAt !== null || grant.clientId !== client.id) return inactive;
    if (await this.deps.revocations.isRevoked(claims, this.now())) return inactive;
    let username: string | undefined;
    if (userOfSubject(grant.userId) !== null) {
      const user = await this.deps.stores.users.getUserById(grant.userId);
      if (!user || user.disabled) return inactive;
      username = user.username;
    }
    return {
      active: true,
      token_type: boundJkt(claims) !== undefined ? 'DPoP' : 'Bearer',
      ...claims,
      ...(username !== undefined ? { username } : {}),
    };
  }

  /**
   * OIDC userinfo for an access token with the openid scope. DPoP-bound tokens need the DPoP
   * scheme and a proof for this request carrying the token's hash.
   */
  async userinfo(input: {
    scheme: 'Bearer' | 'DPoP';
    token: string;
    dpopProof: string | undefined;
    method: string;
    url: string;
  }): Promise<Record<string, unknown>> {
    const bad = (why: string) => new OAuthError('invalid_token', why);
    // Userinfo is this server's own resource: tokens for another resource are not good here.
    const claims = await this.verifyAccessToken(input.token, [this.deps.config.issuer]);
    if (!claims || typeof claims.client_id !== 'string') throw bad('The access token is not valid.');
    const jkt = boundJkt(claims);
    if (jkt !== undefined) {
      if (input.scheme !== 'DPoP') throw bad('This token is DPoP-bound: use the DPoP scheme and a proof.');
      const nowMs = this.now();
      const proof = await dpopChecked(() =>
        verifyDpopProof(input.dpopProof ?? '', {
          method: input.method,
          url: input.url,
          accessToken: input.token,
          nowMs,
        }),
      );
      if (!safeEqual(proof.jkt, jkt)) throw bad('The DPoP proof key is not the one the token is bound to.');
      await dpopChecked(() => rememberProof(this.dpopReplay, proof, nowMs));
    } else if (input.scheme !== 'Bearer') {
      throw bad('This token is not DPoP-bound.');
    }
    const grant = await this.deps.stores.oauth.getGrant(claims.sid);
    if (!grant || grant.revokedAt !== null || grant.userId !== claims.sub)
      throw bad('The access token is revoked.');
    const user = await this.deps.stores.users.getUserById(claims.sub);
    if (!user || user.disabled || (await this.deps.revocations.isRevoked(claims, this.now())))
      throw bad('The access token is revoked.');
    const scopes = scopesOf(claims);
    if (!scopes.includes('openid'))
      throw new OAuthError('insufficient_scope', 'The openid scope is needed for userinfo.');
    const out: Record<string, unknown> = { sub: user.id };
    if (scopes.includes('profile')) out.preferred_username = user.username;
    return out;
  }

  // the user's view of their grants

  async listUserGrants(userId: string): Promise<
    {
      id: string;
      client_id: string;
      client_name: string;
      scope: string;
      created_at: string;
      updated_at: string;
    }[]
  > {
    const grants = await this.deps.stores.oauth.listGrants(userId);
    const out = [];
    for (const g of grants) {
      const client = await this.deps.stores.oauth.getClient(g.clientId);
      out.push({
        id: g.id,
        client_id: g.clientId,
        client_name: client?.name ?? g.clientId,
        scope: g.scope,
        created_at: new Date(g.createdAt).toISOString(),
        updated_at: new Date(g.updatedAt).toISOString(),
      });
    }
    return out;
  }

  /** Ends every live grant of a user (sign out everywhere, password change, account disabled). */
  async revokeUserGrants(userId: string, reason: string): Promise<number> {
    let n = 0;
    for (const grant of await this.deps.stores.oauth.listGrants(userId)) {
      if (await this.revokeGrant(grant.id, reason)) n++;
    }
    return n;
  }

  /** Revokes one of the user's own live grants; false for anything else (unknown, someone else's). */
  async revokeUserGrant(userId: string, grantId: string): Promise<boolean> {
    const grant = await this.deps.stores.oauth.getGrant(grantId);
    if (!grant || grant.userId !== userId || grant.revokedAt !== null) return false;
    return this.revokeGrant(grant.id, 'revoked_by_user');
  }

  /** RFC 8414 / OIDC Discovery metadata. */
  metadata(): Record<string, unknown> {
    const issuer = this.deps.config.issuer;
    return {
      issuer,
      authorization_endpoint: `${issuer}/oauth/authorize`,
      token_endpoint: this.tokenEndpoint,
      jwks_uri: `${issuer}/.well-known/jwks.json`,
      userinfo_endpoint: `${issuer}/oauth/userinfo`,
      introspection_endpoint: `${issuer}/oauth/introspect`,
      revocation_endpoint: `${issuer}/oauth/revoke`,
      response_types_supported: ['code'],
      response_modes_supported: ['query'],
      grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
      introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
      code_challenge_methods_supported: ['S256'],
      scopes_supported: ['openid', 'profile', 'offline_access'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['ES256'],
      claims_supported: [
        'sub',
        'iss',
        'aud',
        'exp',
        'iat',
        'auth_time',
        'nonce',
        'at_hash',
        'preferred_username',
      ],
      prompt_values_supported: ['none', 'login', 'consent'],
      authorization_response_iss_parameter_supported: true,
      dpop_signing_alg_values_supported: ['ES256'],
      request_parameter_supported: false,
      request_uri_parameter_supported: false,
    };
  }
}
