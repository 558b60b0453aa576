import { isClientError, SIGNED_OUT_CODES, TesseraClientError } from './errors.js';
import {
  type Credentials,
  changeEmailRequest,
  changePasswordRequest,
  csrfRequest,
  type Delivery,
  emailRequest,
  endSessionRequest,
  forgotPasswordRequest,
  grantsRequest,
  type HttpRequest,
  identitiesRequest,
  loginRequest,
  logoutAllRequest,
  logoutRequest,
  type Mode,
  meRequest,
  providerStartUrl,
  refreshRequest,
  registerRequest,
  requestVerificationRequest,
  resetPasswordRequest,
  revokeGrantRequest,
  sessionsRequest,
  unlinkIdentityRequest,
  verifyEmailCodeRequest,
  verifyEmailRequest,
} from './requests.js';
import {
  type EmailAddress,
  type EmailRedeemed,
  errorFrom,
  type GrantInfo,
  type IdentityInfo,
  type Issued,
  type Me,
  type ProviderInfo,
  processCsrf,
  processEmailAddress,
  processEmailRedeemed,
  processGrants,
  processIdentities,
  processIssued,
  processMe,
  processNoContent,
  processProviders,
  processRegister,
  processSessions,
  type SessionInfo,
  type User,
} from './responses.js';
import { memoryStorage, type StoredLogin, type TokenStorage } from './storage.js';
import {
  type Coordinator,
  localCoordinator,
  type SharedState,
  type TabMessage,
  tabCoordinator,
} from './tabs.js';

export interface ClientOptions {
  /** The account server's base URL, e.g. `https://auth.example.com`. */
  issuer: string;
  /** Mode for `login` and the first guess of `restore`; default `token`. */
  mode?: Mode;
  /** Default: `cookie` in a browser page, `header` elsewhere. */
  delivery?: Delivery;
  /** Default: the global `fetch`. */
  fetch?: typeof fetch;
  /** Header delivery only: where the refresh or session token is kept. Default: memory. */
  storage?: TokenStorage;
  /** Cross-tab coordination; default: Web Locks + BroadcastChannel for cookie delivery in a browser. */
  coordinator?: Coordinator;
  /** Refresh on a timer shortly before the access token expires; default: on for cookie delivery. */
  autoRefresh?: boolean;
  now?: () => number;
}

export interface LoginResult {
  mode: Mode;
  sessionId: string;
  expiresIn: number;
}

export type AuthListener = (session: { mode: Mode; sessionId: string } | null) => void;

interface State extends SharedState {
  refreshToken?: string;
  sessionToken?: string;
}

/** Seconds before expiry to refresh: a fifth of the lifetime, between 2 and 60 seconds. */
function refreshMargin(ttlSeconds: number): number {
  return Math.min(60, Math.max(2, ttlSeconds * 0.2));
}

const nextTask = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

/**
 * The Tessera client. Holds the login in memory only; in token mode it refreshes the access
 * token shortly before expiry and once after a 401, one refresh at a time across tabs.
 */
export class TesseraClient {
  readonly issuer: string;
  readonly delivery: Delivery;
  private readonly mode: Mode;
  private readonly fetcher: typeof fetch;
  private readonly storage: TokenStorage;
  private readonly tabs: Coordinator;
  private readonly autoRefresh: boolean;
  private readonly now: () => number;
  private state: State | null = null;
  /** Bumped on every change of the access token, ours or another tab's. */
  private version = 0;
  private inflight: Promise<void> | undefined;
  /** Lifetime in seconds of the current access token, for the refresh margin. */
  private ttl = 300;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly listeners = new Set<AuthListener>();
  private readonly unsubscribe: () => void;

  constructor(options: ClientOptions) {
    if (typeof options?.issuer !== 'string')
      throw new TypeError('TesseraClient: `issuer` (the account server URL) is required');
    const issuer = new URL(options.issuer);
    if (issuer.protocol !== 'https:' && issuer.protocol !== 'http:')
      throw new TypeError('TesseraClient: issuer must be http(s)');
    this.issuer = issuer.href.replace(/\/+$/, '');
    const inBrowser = typeof document !== 'undefined';
    this.delivery = options.delivery ?? (inBrowser ? 'cookie' : 'header');
    this.mode = options.mode ?? 'token';
    const f = options.fetch ?? globalThis.fetch;
    if (typeof f !== 'function') throw new TypeError('TesseraClient: no fetch available; pass options.fetch');
    this.fetcher = options.fetch ? f : (input, init) => globalThis.fetch(input, init);
    if (options.storage && this.delivery === 'cookie') {
      throw new TypeError(
        'TesseraClient: storage is for header delivery; cookie delivery keeps tokens in HttpOnly cookies',
      );
    }
    this.storage = options.storage ?? memoryStorage();
    this.tabs =
      options.coordinator ??
      (this.delivery === 'cookie' ? tabCoordinator(`tessera:${this.issuer}`) : localCoordinator());
    this.autoRefresh = options.autoRefresh ?? this.delivery === 'cookie';
    this.now = options.now ?? Date.now;
    this.unsubscribe = this.tabs.subscribe((m) => this.onTabMessage(m));
  }

  /** The current login, or null. */
  get session(): { mode: Mode; sessionId: string } | null {
    return signedIn(this.state) ? { mode: this.state.mode, sessionId: this.state.sessionId } : null;
  }

  /** Called with the new login (or null) whenever this client signs in or out, here or in another tab. */
  onChange(listener: AuthListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops timers and the tab channel. */
  close(): void {
    clearTimeout(this.timer);
    this.unsubscribe();
    this.tabs.close();
  }

  async register(username: string, password: string, options: { email?: string } = {}): Promise<User> {
    return processRegister(
      await this.send(registerRequest(this.issuer, { username, password, email: options.email })),
    );
  }

  /** Asks for a reset mail; resolves the same whether or not an account has the address. */
  async forgotPassword(email: string): Promise<void> {
    await processNoContent(await this.send(forgotPasswordRequest(this.issuer, email)));
  }

  /** Sets a new password with the token of a reset link; every session of the account ends. */
  async resetPassword(token: string, password: string): Promise<void> {
    await processNoContent(await this.send(resetPasswordRequest(this.issuer, { token, password })));
    if (this.state) await this.signedOut(true);
  }

  /** Redeems the token of a verification, confirmation or undo link. */
  async verifyEmail(token: string): Promise<EmailRedeemed> {
    return processEmailRedeemed(await this.send(verifyEmailRequest(this.issuer, token)));
  }

  /** Verifies the signed-in user's address with the mailed six-digit code. */
  verifyEmailCode(code: string): Promise<EmailRedeemed> {
    return this.authed((c) => verifyEmailCodeRequest(this.issuer, c, code), processEmailRedeemed);
  }

  /** The signed-in user's address as stored now (`null` when none) and whether it is verified. */
  email(): Promise<EmailAddress> {
    return this.authed((c) => emailRequest(this.issuer, c), processEmailAddress);
  }

  /** Mails the signed-in user a new verification link and code. */
  async requestEmailVerification(): Promise<void> {
    await this.authed((c) => requestVerificationRequest(this.issuer, c), processNoContent);
  }

  /** Mails a confirmation link to the new address; the account moves when it is followed. */
  async changeEmail(email: string): Promise<void> {
    await this.authed((c) => changeEmailRequest(this.issuer, c, email), processNoContent);
  }

  async login(username: string, password: string, options: { mode?: Mode } = {}): Promise<LoginResult> {
    const mode = options.mode ?? this.mode;
    const res = await this.send(
      loginRequest(this.issuer, { username, password, mode, delivery: this.delivery }),
    );
    const issued = await processIssued(res);
    await this.adopt(issued);
    return { mode: issued.mode, sessionId: issued.sessionId, expiresIn: issued.expiresIn };
  }

  /**
   * Picks up an earlier login: from storage (header delivery) or, in a browser after a reload,
   * from the HttpOnly cookie via `GET /auth/csrf` then `POST /auth/refresh` (token mode) or the
   * session cookie (session mode). Resolves false when there is none.
   */
  async restore(): Promise<boolean> {
    if (this.state) return true;
    if (this.delivery === 'header') return this.restoreFromStorage();
    let csrf: { csrfToken: string; sessionId: string };
    try {
      csrf = await processCsrf(await this.send(csrfRequest(this.issuer)));
    } catch (err) {
      if (isClientError(err) && SIGNED_OUT_CODES.has(err.code)) return false;
      throw err;
    }
    // Another tab may have shared a token while we asked.
    if (this.state) return true;
    const asSession = async (): Promise<boolean> => {
      const probe = meRequest(this.issuer, { cookies: true });
      const res = await this.send(probe);
      if (res.status === 401) return false;
      await processMe(res);
      this.setState({ mode: 'session', sessionId: csrf.sessionId, csrfToken: csrf.csrfToken });
      return true;
    };
    const asToken = async (): Promise<boolean> => {
      this.setState({ mode: 'token', sessionId: csrf.sessionId, csrfToken: csrf.csrfToken });
      try {
        await this.refreshShared(false);
        return this.state !== null;
      } catch (err) {
        if (isClientError(err) && SIGNED_OUT_CODES.has(err.code)) return false;
        throw err;
      }
    };
    return this.mode === 'session' ? (await asSession()) || asToken() : (await asToken()) || asSession();
  }

  /**
   * A fresh access token (token mode): refreshed first when it expires within the margin.
   * Rejects with `not_signed_in` or the refresh's error code.
   */
  async getAccessToken(): Promise<string> {
    const s = this.requireState();
    if (s.mode !== 'token')
      throw new TypeError('TesseraClient: session mode has no access token; log in with mode "token"');
    if (s.accessToken !== undefined && s.accessExpiresAt !== undefined) {
      const left = s.accessExpiresAt - this.now();
      if (left > refreshMargin(this.ttl) * 1000) return s.accessToken;
    }
    await this.refresh();
    const token = this.state?.accessToken;
    if (!token) throw new TesseraClientError('not_signed_in', 'Not signed in.');
    return token;
  }

  /**
   * Gets a new access token now (token mode; a no-op in session mode). Concurrent calls, in this
   * tab and others, share one refresh; a tab that waited for another's refresh uses its result.
   */
  refresh(): Promise<void> {
    return this.refreshShared(true);
  }

  /** `announce`: tell other tabs when the refresh proves the login is gone (not when merely probing). */
  private refreshShared(announce: boolean): Promise<void> {
    this.inflight ??= this.refreshOnce(announce).finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /** Ends this login on the server (session or refresh family) and forgets it here and in other tabs. */
  async logout(): Promise<void> {
    try {
      // Token mode in a browser signs out with the refresh cookie, which works even when the access token has expired.
      const creds =
        this.delivery === 'cookie' && this.state?.mode === 'token'
          ? { cookies: true, csrfToken: this.state.csrfToken }
          : await this.credentials({ refreshIfNeeded: true });
      if (creds) await processNoContent(await this.send(logoutRequest(this.issuer, creds)));
    } catch (err) {
      // Already signed out on the server is the goal anyway.
      if (!(isClientError(err) && SIGNED_OUT_CODES.has(err.code))) throw err;
    }
    await this.signedOut(true);
  }

  /** Ends every session of the user, this one included. */
  async logoutAll(): Promise<void> {
    await this.authed((c) => logoutAllRequest(this.issuer, c), processNoContent);
    await this.signedOut(true);
  }

  me(): Promise<Me> {
    return this.authed((c) => meRequest(this.issuer, c), processMe);
  }

  sessions(): Promise<SessionInfo[]> {
    return this.authed((c) => sessionsRequest(this.issuer, c), processSessions);
  }

  async endSession(id: string): Promise<void> {
    await this.authed((c) => endSessionRequest(this.issuer, c, id), processNoContent);
    if (id === this.state?.sessionId) await this.signedOut(true);
  }

  /** The apps the user allowed to use their account (OAuth grants). */
  grants(): Promise<GrantInfo[]> {
    return this.authed((c) => grantsRequest(this.issuer, c), processGrants);
  }

  /** Takes back an app's access; its access and refresh tokens stop working. `not_found` when already gone. */
  async revokeGrant(id: string): Promise<void> {
    await this.authed((c) => revokeGrantRequest(this.issuer, c, id), processNoContent);
  }

  /** The upstream providers this server signs in with (id and display name). */
  async providers(): Promise<ProviderInfo[]> {
    const res = await fetch(new URL('/auth/providers', this.issuer), { credentials: 'omit' });
    if (!res.ok) throw await errorFrom(res);
    return processProviders(res);
  }

  /**
   * Browser: navigates to the provider to sign in (or, with `link`, to link it to the account
   * signed in in this browser; the server takes a link only from a page of its own origin,
   * `csrf_failed` otherwise). The server answers with the cookies of a cookie-delivery login
   * and redirects to `next` (a path on the server) or `/account`.
   */
  signInWith(provider: string, options: { next?: string; link?: boolean } = {}): void {
    location.assign(providerStartUrl(this.issuer, provider, { mode: this.mode, ...options }));
  }

  /** The upstream identities linked to the account. */
  identities(): Promise<IdentityInfo[]> {
    return this.authed((c) => identitiesRequest(this.issuer, c), processIdentities);
  }

  /** Unlinks one; `last_sign_in_method` when it is the account's only way in. */
  async unlinkIdentity(id: string): Promise<void> {
    await this.authed((c) => unlinkIdentityRequest(this.issuer, c, id), processNoContent);
  }

  /** The server ends the user's other sessions; this one stays. */
  changePassword(currentPassword: string, newPassword: string): Promise<void> {
    return this.authed(
      (c) => changePasswordRequest(this.issuer, c, { currentPassword, newPassword }),
      processNoContent,
    );
  }

  /**
   * `fetch` for API servers (any origin) with `Authorization: Bearer <access token>`; after a 401
   * it refreshes once and retries once. Token mode only. Cookies are never sent.
   */
  async fetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
    const spare = input instanceof Request ? input.clone() : input;
    const attempt = (token: string, req: string | URL | Request): Promise<Response> => {
      const headers = new Headers(init.headers ?? (req instanceof Request ? req.headers : undefined));
      headers.set('authorization', `Bearer ${token}`);
      return this.fetcher(req, { credentials: 'omit', ...init, headers });
    };
    const token = await this.getAccessToken();
    const res = await attempt(token, input);
    if (res.status !== 401) return res;
    const fresh = await this.tokenAfter401(token);
    if (fresh === undefined) return res;
    await res.body?.cancel();
    return attempt(fresh, spare);
  }

  // ---- internals ----

  private async send(req: HttpRequest): Promise<Response> {
    try {
      return await this.fetcher(req.url, req.init);
    } catch (err) {
      throw new TesseraClientError('network_error', 'Could not reach the account server.', { cause: err });
    }
  }

  private requireState(): State {
    if (!this.state) throw new TesseraClientError('not_signed_in', 'Not signed in.');
    return this.state;
  }

  /** How to prove the login on an account-server request; null when there is nothing to prove it with. */
  private async credentials(options: { refreshIfNeeded: boolean }): Promise<Credentials | null> {
    const s = this.state;
    const cookies = this.delivery === 'cookie';
    if (!s) return cookies ? await this.cookieOnlyCredentials() : null;
    if (s.mode === 'session') return { bearer: s.sessionToken, cookies, csrfToken: s.csrfToken };
    let bearer = s.accessToken;
    if (options.refreshIfNeeded) bearer = await this.getAccessToken();
    return { bearer, cookies, csrfToken: s.csrfToken };
  }

  /** A page that has not restored yet can still sign out with its cookie. */
  private async cookieOnlyCredentials(): Promise<Credentials | null> {
    try {
      const { csrfToken } = await processCsrf(await this.send(csrfRequest(this.issuer)));
      return { cookies: true, csrfToken };
    } catch {
      return null;
    }
  }

  /** An account-server call with the login; in token mode, one refresh and one retry after a 401. */
  private async authed<T>(
    make: (c: Credentials) => HttpRequest,
    process: (r: Response) => Promise<T>,
  ): Promise<T> {
    try {
      const creds = await this.credentials({ refreshIfNeeded: true });
      if (!creds) throw new TesseraClientError('not_signed_in', 'Not signed in.');
      let res = await this.send(make(creds));
      if (res.status === 401 && this.state?.mode === 'token' && creds.bearer) {
        const fresh = await this.tokenAfter401(creds.bearer);
        if (fresh !== undefined) {
          await res.body?.cancel();
          res = await this.send(make({ ...creds, bearer: fresh }));
        }
      }
      return await process(res);
    } catch (err) {
      if (isClientError(err) && SIGNED_OUT_CODES.has(err.code) && err.code !== 'not_signed_in')
        await this.signedOut(false);
      throw err;
    }
  }

  /** The token to retry with after `used` got a 401: someone else's newer one, or one fresh refresh. */
  private async tokenAfter401(used: string): Promise<string | undefined> {
    if (this.state?.mode !== 'token') return undefined;
    if (this.state.accessToken !== undefined && this.state.accessToken !== used)
      return this.state.accessToken;
    // Make the token look spent so refreshOnce does not take it as fresh.
    this.state.accessExpiresAt = 0;
    try {
      await this.refresh();
    } catch {
      return undefined;
    }
    const token = this.state?.accessToken;
    return token !== undefined && token !== used ? token : undefined;
  }

  private async refreshOnce(announce: boolean): Promise<void> {
    const s = this.requireState();
    if (s.mode !== 'token') return;
    const seen = this.version;
    await this.tabs.exclusive(async () => {
      // Let messages from a tab that just released the lock arrive before deciding.
      await nextTask();
      const cur = this.state;
      if (!cur) throw new TesseraClientError('not_signed_in', 'Signed out in another tab.');
      if (
        this.version !== seen &&
        cur.accessExpiresAt !== undefined &&
        cur.accessExpiresAt - this.now() > 2000
      )
        return;
      let req: HttpRequest;
      if (this.delivery === 'header') {
        if (!cur.refreshToken) throw new TesseraClientError('not_signed_in', 'No refresh token.');
        req = refreshRequest(this.issuer, { refreshToken: cur.refreshToken });
      } else {
        const csrfToken =
          cur.csrfToken ?? (await processCsrf(await this.send(csrfRequest(this.issuer)))).csrfToken;
        req = refreshRequest(this.issuer, { csrfToken });
      }
      let issued: Issued;
      try {
        issued = await processIssued(await this.send(req));
      } catch (err) {
        if (isClientError(err) && SIGNED_OUT_CODES.has(err.code)) await this.signedOut(announce);
        throw err;
      }
      await this.adopt(issued);
    });
  }

  private async adopt(issued: Issued): Promise<void> {
    const state: State = { mode: issued.mode, sessionId: issued.sessionId };
    if (issued.accessToken !== undefined) {
      state.accessToken = issued.accessToken;
      state.accessExpiresAt = this.now() + issued.expiresIn * 1000;
    }
    if (issued.refreshToken !== undefined) state.refreshToken = issued.refreshToken;
    if (issued.sessionToken !== undefined) state.sessionToken = issued.sessionToken;
    state.csrfToken =
      issued.csrfToken ?? (this.state?.sessionId === issued.sessionId ? this.state.csrfToken : undefined);
    this.setState(state);
    if (this.delivery === 'header') await this.storage.save(state as StoredLogin);
    else this.tabs.publish({ type: 'state', state: shared(state) });
  }

  private setState(state: State | null): void {
    const before = this.state;
    this.state = state;
    this.version += 1;
    if (state?.accessExpiresAt !== undefined)
      this.ttl = Math.max(1, (state.accessExpiresAt - this.now()) / 1000);
    this.schedule();
    if (signedIn(before) !== signedIn(state) || (signedIn(state) && before?.sessionId !== state.sessionId)) {
      for (const l of this.listeners) l(this.session);
    }
  }

  private async signedOut(tellTabs: boolean): Promise<void> {
    if (this.state === null && !tellTabs) return;
    this.setState(null);
    if (this.delivery === 'header') await this.storage.clear();
    else if (tellTabs) this.tabs.publish({ type: 'signed_out' });
  }

  private onTabMessage(m: TabMessage): void {
    if (m.type === 'signed_out') {
      if (this.state) this.setState(null);
      return;
    }
    // The cookie jar is shared, so the newest login in any tab is this tab's login too. Only the
    // fields tabs share are taken: a message never brings a session or refresh token along.
    this.setState(shared(m.state));
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const s = this.state;
    if (!this.autoRefresh || !s || s.mode !== 'token' || s.accessExpiresAt === undefined) return;
    const ttl = (s.accessExpiresAt - this.now()) / 1000;
    const delay = Math.max(0, (ttl - refreshMargin(ttl)) * 1000);
    this.timer = setTimeout(() => {
      this.refresh().catch(() => {
        // A failed background refresh signs out (listeners hear it) or is retried on next use.
      });
    }, delay);
    (this.timer as { unref?: () => void }).unref?.();
  }

  private async restoreFromStorage(): Promise<boolean> {
    const saved = await this.storage.load();
    if (!saved) return false;
    this.setState({ ...saved });
    if (saved.mode === 'session') return true;
    try {
      await this.getAccessToken();
      return true;
    } catch (err) {
      if (isClientError(err) && SIGNED_OUT_CODES.has(err.code)) return false;
      throw err;
    }
  }
}

function signedIn(s: State | null): s is State {
  return s !== null && (s.mode === 'session' || s.accessToken !== undefined);
}

function shared(s: State): SharedState {
  const out: SharedState = { mode: s.mode, sessionId: s.sessionId };
  if (s.accessToken !== undefined) out.accessToken = s.accessToken;
  if (s.accessExpiresAt !== undefined) out.accessExpiresAt = s.accessExpiresAt;
  if (s.csrfToken !== undefined) out.csrfToken = s.csrfToken;
  return out;
}
