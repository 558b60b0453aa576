import { RevocationBridge } from './cluster/revocation-bridge.js';
import type { Config } from './config.js';
import { AuthService } from './domain/auth.js';
import { EmailAccounts } from './domain/email.js';
import { KeyRing } from './domain/keys.js';
import { RevocationHub, Revocations } from './domain/revocations.js';
import { deriveSecrets, loadOrCreateSecret, type Secrets } from './domain/secrets.js';
import { TokenIssuer } from './domain/tokens.js';
import { FederationService } from './federation/service.js';
import { type App, buildApp } from './http/app.js';
import { MailQueue } from './mail/queue.js';
import { OAuthService } from './oauth/service.js';
import type { OAuthStore } from './oauth/types.js';
import { closeStores, openStores } from './store/open.js';
import type { Stores } from './store/ports.js';
import { countersInProcess, lockDataFolder, type ServerLock } from './store/server-lock.js';
import { SessionCache } from './store/session-cache.js';

/**
 * How long an ended session (and its refresh tokens) stays in the store before upkeep deletes it.
 * Nothing reads an ended session, since every read checks liveness; the day keeps it at hand for
 * an operator looking at the database. The audit log keeps the history.
 */
const ENDED_SESSION_RETENTION_MS = 24 * 60 * 60_000;

export interface TesseraOptions {
  /** Every storage role; default: what the config names (openStores). Either way closed with the rest. */
  stores?: Stores;
  /** false: the parts without the HTTP app and its upkeep timer (the CLI's commands). */
  http?: boolean;
  /** pino options or false; tests pass false. */
  logger?: boolean | Record<string, unknown>;
  now?: () => number;
  heartbeatMs?: number;
  /** Tests: answers serialized with JSON.stringify, not the response schemas (see AppOptions). */
  rawSerializer?: boolean;
  /** Between upkeep runs (key rotation when due, pruning); default one hour. */
  upkeepMs?: number;
}

/** The OAuth provider and the store it keeps clients, codes and grants in (one of `stores`). */
export interface OAuthParts {
  service: OAuthService;
  store: OAuthStore;
}

/** Everything one Tessera instance runs on, opened together and closed together. */
export interface TesseraCore {
  config: Config;
  stores: Stores;
  secrets: Secrets;
  /** The secret was generated into the data folder by this start. */
  secretGenerated: boolean;
  keys: KeyRing;
  tokens: TokenIssuer;
  revocations: Revocations;
  auth: AuthService;
  /** Email verification, recovery and notices. */
  email: EmailAccounts;
  /** Sends the mails waiting in the store (through SMTP, or into the development outbox). */
  mail: MailQueue;
  /** Undefined when the provider is off (`TESSERA_OAUTH=false`). */
  oauth: OAuthParts | undefined;
  /**
   * Rotates keys when due and prunes expired revocations, OAuth state, mailed tokens and the
   * sessions (with their refresh tokens) that ended a day ago; rejects with the first failure.
   */
  upkeep(): Promise<void>;
  /**
   * Releases everything, newest first: timer, HTTP server, the data-folder lock, bridge, stores.
   * Safe to call twice.
   */
  close(): Promise<void>;
}

export interface Tessera extends TesseraCore {
  app: App;
  /**
   * Listens on the configured host and port; resolves to the address. With the counters in the
   * process (the embedded store without Redis) it first takes the data folder for this process
   * (lockDataFolder, released by close()), and rejects with DataFolderInUseError when another
   * server holds it.
   */
  listen(): Promise<string>;
}

/**
 * Builds one Tessera instance from its configuration: the store, the secret, the key ring,
 * revocations (with the Redis bridge between instances when Redis is configured), auth, the
 * OAuth provider and, unless `http: false`, the Fastify app and its upkeep timer. If any part
 * fails to open, the parts already open are closed before the error is thrown.
 */
export async function createTessera(
  config: Config,
  options: TesseraOptions & { http: false },
): Promise<TesseraCore>;
export async function createTessera(config: Config, options?: TesseraOptions): Promise<Tessera>;
export async function createTessera(
  config: Config,
  options: TesseraOptions = {},
): Promise<Tessera | TesseraCore> {
  const now = options.now ?? Date.now;
  const closers: (() => Promise<void> | void)[] = [];
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      for (const release of closers.reverse()) await release();
    })();
    return closing;
  };
  try {
    const opened = options.stores ?? (await openStores(config));
    closers.push(() => closeStores(opened));
    const stores: Stores =
      config.sessionCacheMs > 0
        ? { ...opened, sessions: new SessionCache(opened.sessions, config.sessionCacheMs) }
        : opened;
    const { secret, generated } = loadOrCreateSecret(config.secret, config.dataDir);
    const secrets = deriveSecrets(secret);
    const keys = new KeyRing(stores, secrets.keyEncryption, {
      rotationDays: config.keyRotationDays,
      accessTokenTtl: config.accessTokenTtl,
    });
    await keys.init(now());
    const hub = new RevocationHub();
    const revocations = new Revocations(stores.revocations, hub, config.accessTokenTtl + 120, options.now);
    const tokens = new TokenIssuer({ config, keys, now: options.now });
    const auth = new AuthService({ config, stores, tokens, secrets, revocations, now: options.now });
    const mail = MailQueue.fromConfig(config, stores.mail, secrets.mailQueue);
    closers.push(() => mail.close());
    const email = new EmailAccounts({ config, stores, secrets, mail, auth, now: options.now });
    auth.email = email;
    closers.push(() => email.drained());
    let oauth: OAuthParts | undefined;
    if (config.oauth) {
      const service = new OAuthService({
        config,
        stores,
        tokens,
        revocations,
        secrets,
        now: options.now,
      });
      auth.grants = service;
      oauth = { service, store: stores.oauth };
    }
    if (config.redisUrl) {
      const bridge = await RevocationBridge.start(
        config.redisUrl,
        hub,
        config.redisPrefix,
        config.redisCluster,
      );
      closers.push(() => bridge.close());
    }
    const upkeep = async (): Promise<void> => {
      const failures: unknown[] = [];
      const steps: (() => Promise<unknown> | undefined)[] = [
        () => keys.init(now()),
        () => stores.revocations.pruneRevocations(Math.floor(now() / 1000)),
        () => oauth?.store.prune(now()),
        () => stores.users.pruneEmailTokens(now()),
        () => stores.sessions.pruneSessions(now() - ENDED_SESSION_RETENTION_MS),
      ];
      for (const step of steps)
        await Promise.resolve()
          .then(step)
          .catch((err) => failures.push(err));
      if (failures.length > 0) throw failures[0];
    };
    const core: TesseraCore = {
      config,
      stores,
      secrets,
      secretGenerated: generated,
      keys,
      tokens,
      revocations,
      auth,
      email,
      mail,
      oauth,
      upkeep,
      close,
    };
    if (options.http === false) return core;

    const app = await buildApp({
      config,
      stores,
      keys,
      tokens,
      revocations,
      auth,
      email,
      mail,
      oauth,
      federation: new FederationService({ config, stores, auth, secrets, now: options.now }),
      logger: options.logger,
      now: options.now,
      heartbeatMs: options.heartbeatMs,
      rawSerializer: options.rawSerializer,
    });
    // Released once the HTTP server has closed: until then this process still counts.
    let lock: ServerLock | undefined;
    closers.push(() => lock?.release());
    closers.push(() => app.fastify.close());
    const listen = async (): Promise<string> => {
      const taken =
        lock === undefined && countersInProcess(stores) ? lockDataFolder(config.dataDir) : undefined;
      lock ??= taken;
      try {
        return await app.fastify.listen({ port: config.port, host: config.host });
      } catch (err) {
        if (taken) {
          taken.release();
          lock = undefined;
        }
        throw err;
      }
    };
    const timer = setInterval(
      () => {
        upkeep().catch((err: unknown) => app.fastify.log.warn({ err: String(err) }, 'upkeep failed'));
      },
      options.upkeepMs ?? 60 * 60_000,
    );
    timer.unref();
    closers.push(() => clearInterval(timer));
    mail.start();
    return {
      ...core,
      app,
      listen,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
