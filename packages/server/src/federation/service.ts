/**
 * Signing in through upstream providers. Every protocol step (discovery, the authorization
 * request with state, nonce and PKCE S256, the response checks including `iss` per RFC 9207,
 * the code exchange, ID token validation, user info) is openid-client's; this module decides
 * what the result means for Tessera's accounts. No HTTP framework in here.
 */
import * as oidc from 'openid-client';
import type { Config } from '../config.js';
import type { AuthService, ClientInfo, IssuedTokens } from '../domain/auth.js';
import type { Secrets } from '../domain/secrets.js';
import { checkUsernameScripts, normalizeUsername } from '../domain/users.js';
import { type ErrorCode, TesseraError } from '../errors.js';
import type { Stores } from '../store/ports.js';
import type { IdentityRecord, SessionMode, UserRecord } from '../store/types.js';
import { hmac, randomId, safeEqual } from '../util/crypto.js';
import { localPath } from '../util/next-path.js';
import { isLoopbackUrl, type ProviderConfig } from './providers.js';

/** How long a started sign-in may take at the provider. */
const FLOW_TTL_SECONDS = 600;
const UPSTREAM_TIMEOUT_SECONDS = 10;

/** What the browser keeps between start and callback, signed, in an HttpOnly cookie. */
export interface FlowState {
  provider: string;
  state: string;
  nonce: string;
  verifier: string;
  mode: SessionMode;
  next: string | undefined;
  /** Linking: the signed-in user who started it, and the session (or token family) they started it in. */
  linkUser: string | undefined;
  linkSession: string | undefined;
  expiresAt: number;
}

export type CallbackResult =
  | { kind: 'signed_in'; issued: IssuedTokens; next: string | undefined; created: boolean }
  | { kind: 'linked'; next: string | undefined };

export interface FederationDeps {
  config: Config;
  stores: Pick<Stores, 'users' | 'identities'>;
  auth: AuthService;
  secrets: Secrets;
  now?: () => number;
}

export class FederationService {
  private readonly configurations = new Map<string, Promise<oidc.Configuration>>();
  private readonly now: () => number;

  constructor(private readonly deps: FederationDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** The configured providers, for the sign-in page and `GET /auth/providers`. */
  list(): { id: string; name: string }[] {
    return this.deps.config.providers.map((p) => ({ id: p.id, name: p.name }));
  }

  provider(id: string): ProviderConfig {
    const p = this.deps.config.providers.find((x) => x.id === id);
    if (!p) throw new TesseraError('not_found', 'No such sign-in provider.');
    return p;
  }

  redirectUri(p: ProviderConfig): string {
    return `${this.deps.config.issuer}/auth/providers/${p.id}/callback`;
  }

  /** The provider's configuration, discovered once (a failed discovery is tried again next time). */
  private configuration(p: ProviderConfig): Promise<oidc.Configuration> {
    let found = this.configurations.get(p.id);
    if (!found) {
      found = this.discover(p);
      this.configurations.set(p.id, found);
      found.catch(() => this.configurations.delete(p.id));
    }
    return found;
  }

  private async discover(p: ProviderConfig): Promise<oidc.Configuration> {
    const insecure = new URL(p.type === 'oidc' ? p.issuer : p.authorizationEndpoint).protocol === 'http:';
    const execute = insecure && isLoopbackUrl(new URL(p.issuer)) ? [oidc.allowInsecureRequests] : [];
    try {
      if (p.type === 'oidc') {
        return await oidc.discovery(
          new URL(p.issuer),
          p.clientId,
          undefined,
          oidc.ClientSecretBasic(p.clientSecret),
          {
            execute,
            timeout: UPSTREAM_TIMEOUT_SECONDS,
          },
        );
      }
      const config = new oidc.Configuration(
        {
          issuer: p.issuer,
          authorization_endpoint: p.authorizationEndpoint,
          token_endpoint: p.tokenEndpoint,
          userinfo_endpoint: p.userinfoEndpoint,
        },
        p.clientId,
        undefined,
        oidc.ClientSecretPost(p.clientSecret),
      );
      config.timeout = UPSTREAM_TIMEOUT_SECONDS;
      for (const fn of execute) fn(config);
      return config;
    } catch (err) {
      throw upstreamError(err, p);
    }
  }

  /** Where to send the browser, and the flow state its cookie keeps. */
  async start(
    providerId: string,
    options: {
      mode: SessionMode;
      next: string | undefined;
      link: { userId: string; sessionId: string } | undefined;
    },
  ): Promise<{ url: string; flow: FlowState }> {
    const p = this.provider(providerId);
    const config = await this.configuration(p);
    const flow: FlowState = {
      provider: p.id,
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      verifier: oidc.randomPKCECodeVerifier(),
      mode: options.mode,
      next: localPath(options.next),
      linkUser: options.link?.userId,
      linkSession: options.link?.sessionId,
      expiresAt: this.now() + FLOW_TTL_SECONDS * 1000,
    };
    const params: Record<string, string> = {
      redirect_uri: this.redirectUri(p),
      scope: requestedScopes(p, config).join(' '),
      state: flow.state,
      code_challenge: await oidc.calculatePKCECodeChallenge(flow.verifier),
      code_challenge_method: 'S256',
    };
    if (p.type === 'oidc') params.nonce = flow.nonce;
    return { url: oidc.buildAuthorizationUrl(config, params).href, flow };
  }

  /** The flow state as its cookie carries it: the JSON, then its HMAC under a server key. */
  sealFlow(flow: FlowState): string {
    const body = Buffer.from(JSON.stringify(flow)).toString('base64url');
    return `${body}.${hmac(this.deps.secrets.csrf, 'federation-flow', body)}`;
  }

  /** The flow state of a cookie, if it is one this server made for `providerId` and it has not expired. */
  openFlow(cookie: string | undefined, providerId: string): FlowState {
    const invalid = new TesseraError(
      'provider_state_invalid',
      'This sign-in was not started in this browser, or it took too long. Start it again.',
    );
    const [body, mac, ...rest] = (cookie ?? '').split('.');
    if (!body || !mac || rest.length > 0) throw invalid;
    if (!safeEqual(mac, hmac(this.deps.secrets.csrf, 'federation-flow', body))) throw invalid;
    let flow: FlowState;
    try {
      flow = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as FlowState;
    } catch {
      throw invalid;
    }
    if (flow.provider !== providerId || flow.expiresAt <= this.now()) throw invalid;
    return flow;
  }

  /**
   * The provider's answer: checked and exchanged by openid-client, then a sign-in (an unknown
   * identity gets a new account, never someone else's by a matching email or name) or, for a flow
   * started by a signed-in user, a link to that user while the session they started it in lives.
   * That session is the flow's, not the cookie's: the way back from the provider is a cross-site
   * chain of redirects, on which a SameSite=Strict session cookie is not sent.
   */
  async callback(
    providerId: string,
    currentUrl: URL,
    flow: FlowState,
    client: ClientInfo,
  ): Promise<CallbackResult> {
    const p = this.provider(providerId);
    const config = await this.configuration(p);
    let profile: { subject: string; email: string | null; name: string | null; username: string | null };
    try {
      const tokens = await oidc.authorizationCodeGrant(config, currentUrl, {
        pkceCodeVerifier: flow.verifier,
        expectedState: flow.state,
        ...(p.type === 'oidc' ? { expectedNonce: flow.nonce, idTokenExpected: true } : {}),
      });
      profile =
        p.type === 'oidc' ? await oidcProfile(config, tokens) : await oauth2Profile(config, p, tokens);
    } catch (err) {
      const failure = upstreamError(err, p);
      await this.deps.auth.auditFederation('federated_login_failed', {
        userId: flow.linkUser ?? null,
        client,
        detail: `${p.id} ${failure.code}`,
      });
      throw failure;
    }
    const now = this.now();
    const identity: IdentityRecord = {
      id: randomId(),
      userId: '',
      issuer: p.issuer,
      subject: profile.subject,
      providerId: p.id,
      email: profile.email,
      name: profile.name,
      createdAt: now,
    };
    const { users, identities } = this.deps.stores;
    const known = await identities.getIdentity(p.issuer, profile.subject);

    if (flow.linkUser !== undefined) {
      const userId = flow.linkUser;
      const sessionId = flow.linkSession;
      if (sessionId === undefined || !(await this.deps.auth.sessionStillLive(sessionId, userId)))
        throw new TesseraError('unauthorized', 'Sign in again, then link the provider.');
      if (known && known.userId !== userId) throw identityTaken();
      if (!known) {
        const linked = await identities.linkIdentity({ ...identity, userId });
        if (!linked) throw identityTaken();
        await this.deps.auth.auditFederation('identity_linked', {
          userId,
          sessionId,
          client,
          detail: p.id,
        });
        this.deps.auth.email?.providerChanged(userId, p.name, 'linked');
      }
      return { kind: 'linked', next: flow.next };
    }

    if (known) {
      const user = await users.getUserById(known.userId);
      if (!user) throw new TesseraError('not_found', 'The account of this identity is gone.');
      const issued = await this.deps.auth.federatedLogin(user, flow.mode, client, p.id);
      return { kind: 'signed_in', issued, next: flow.next, created: false };
    }

    // An identity never seen before: a new account of its own, whatever its email or name match.
    const base = usernameBase(profile.username ?? profile.email?.split('@')[0] ?? profile.name, p.id);
    for (let attempt = 0; attempt < 5; attempt++) {
      const username = attempt === 0 ? base : `${base.slice(0, 56)}-${randomId().slice(0, 6).toLowerCase()}`;
      const user: UserRecord = {
        id: randomId(),
        username,
        passwordHash: '',
        roles: ['user'],
        disabled: false,
        createdAt: now,
        passwordChangedAt: now,
        // An upstream address is the provider's word, not a verified one: it is not taken.
        email: null,
        emailVerified: false,
      };
      const outcome = await identities.createUserWithIdentity(user, { ...identity, userId: user.id });
      if (outcome === 'username_taken') continue;
      if (outcome === 'identity_taken') {
        // Another sign-in with the same identity won the race: sign in to its account.
        const winner = await identities.getIdentity(p.issuer, profile.subject);
        const owner = winner ? await users.getUserById(winner.userId) : null;
        if (!owner) throw identityTaken();
        const issued = await this.deps.auth.federatedLogin(owner, flow.mode, client, p.id);
        return { kind: 'signed_in', issued, next: flow.next, created: false };
      }
      await this.deps.auth.auditFederation('register', { userId: user.id, client, detail: p.id });
      await this.deps.auth.auditFederation('identity_linked', { userId: user.id, client, detail: p.id });
      const issued = await this.deps.auth.federatedLogin(user, flow.mode, client, p.id);
      return { kind: 'signed_in', issued, next: flow.next, created: true };
    }
    throw new TesseraError('unavailable', 'No free username was found; try again.');
  }

  listIdentities(userId: string): Promise<IdentityRecord[]> {
    return this.deps.stores.identities.listIdentities(userId);
  }

  async unlink(userId: string, identityId: string, sessionId: string, client: ClientInfo): Promise<void> {
    const mine = (await this.deps.stores.identities.listIdentities(userId)).find((i) => i.id === identityId);
    const outcome = await this.deps.stores.identities.unlinkIdentity(userId, identityId);
    if (outcome === 'not_found') throw new TesseraError('not_found', 'No such linked identity.');
    if (outcome === 'last')
      throw new TesseraError(
        'last_sign_in_method',
        'This is the only way into the account: link another provider first.',
      );
    await this.deps.auth.auditFederation('identity_unlinked', {
      userId,
      sessionId,
      client,
      detail: mine?.providerId ?? 'unknown',
    });
    const provider = this.deps.config.providers.find((p) => p.id === mine?.providerId);
    this.deps.auth.email?.providerChanged(
      userId,
      provider?.name ?? mine?.providerId ?? 'A provider',
      'unlinked',
    );
  }
}

/**
 * What to ask the provider for: the configured scopes as they are; the default ones only as far
 * as its metadata says it supports them (a provider may refuse a scope it does not know).
 */
function requestedScopes(p: ProviderConfig, config: oidc.Configuration): string[] {
  const supported = config.serverMetadata().scopes_supported;
  if (p.scopesGiven || !Array.isArray(supported)) return p.scopes;
  return p.scopes.filter((s) => s === 'openid' || supported.includes(s));
}

function identityTaken(): TesseraError {
  return new TesseraError('identity_taken', 'That provider account is linked to another Tessera account.');
}

function claimText(v: unknown): string | null {
  return typeof v === 'string' && v.length > 0 && v.length <= 512
    ? v
    : typeof v === 'number'
      ? String(v)
      : null;
}

async function oidcProfile(
  config: oidc.Configuration,
  tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>,
) {
  const claims = tokens.claims();
  if (!claims) throw new TesseraError('provider_response_invalid', 'The provider sent no ID token.');
  let info: Record<string, unknown> = {};
  if (config.serverMetadata().userinfo_endpoint && (!claims.email || !claims.name)) {
    info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
  }
  const all = { ...info, ...claims } as Record<string, unknown>;
  return {
    subject: claims.sub,
    email: claimText(all.email),
    name: claimText(all.name),
    username: claimText(all.preferred_username),
  };
}

async function oauth2Profile(
  config: oidc.Configuration,
  p: Extract<ProviderConfig, { type: 'oauth2' }>,
  tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>,
) {
  const res = await oidc.fetchProtectedResource(
    config,
    tokens.access_token,
    new URL(p.userinfoEndpoint),
    'GET',
    undefined,
    new Headers({ accept: 'application/json' }),
  );
  if (!res.ok) throw new TesseraError('provider_rejected', 'The provider refused the user-info request.');
  const info = (await res.json().catch(() => null)) as Record<string, unknown> | null;
  const field = (path: string | undefined) =>
    path === undefined || info === null
      ? null
      : claimText(
          path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | null)?.[k], info),
        );
  const subject = field(p.mapping.subject);
  if (!subject) throw new TesseraError('provider_response_invalid', 'The user info names no subject.');
  return { subject, email: field(p.mapping.email), name: field(p.mapping.name), username: null };
}

/** A username from what the provider calls the person, else from the provider's id: a name, never a key. */
function usernameBase(hint: string | null | undefined, providerId: string): string {
  const cleaned = (hint ?? '')
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}._-]+/gu, '')
    .slice(0, 48);
  try {
    const name = normalizeUsername(cleaned);
    checkUsernameScripts(name);
    return name;
  } catch {
    return normalizeUsername(`${providerId}-user`);
  }
}

/** What went wrong upstream, as one of the stable codes; the provider's own words only in `detail`. */
function upstreamError(err: unknown, p: ProviderConfig): TesseraError {
  if (err instanceof TesseraError) return err;
  // openid-client wraps oauth4webapi's errors: the specific words are on the causes.
  const messages: string[] = [];
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++)
    messages.push(e.message);
  const message = messages.join(': ') || String(err);
  const code = (err as { code?: unknown })?.code;
  const coded = (c: ErrorCode, text: string) =>
    new TesseraError(c, text, { detail: `${p.id}: ${message}`.slice(0, 300), cause: err });
  if (/"state"/.test(message))
    return coded('provider_state_invalid', 'The answer does not belong to the sign-in this browser started.');
  if (/"iss"/.test(message) && code === 'OAUTH_INVALID_RESPONSE')
    return coded('provider_issuer_mismatch', 'The answer came from another provider than the one started.');
  if (code === 'OAUTH_RESPONSE_BODY_ERROR' || code === 'OAUTH_AUTHORIZATION_RESPONSE_ERROR')
    return coded('provider_rejected', 'The provider refused the sign-in.');
  if (typeof code === 'string' && code.startsWith('OAUTH_'))
    return coded('provider_response_invalid', 'The provider’s answer did not pass the checks.');
  return coded('provider_unavailable', 'The sign-in provider cannot be reached right now.');
}
