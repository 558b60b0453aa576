import { RevocationBridge } from './cluster/revocation-bridge.js';
import { type Config, loadConfig } from './config.js';
import { loadOrCreateSecret } from './domain/secrets.js';
import { type App, buildApp } from './http/app.js';
import { openStore } from './store/open.js';
import type { Store } from './store/types.js';

export interface RunningServer {
  app: App;
  url: string;
  close(): Promise<void>;
}

/** Starts the account server: opens the store, builds the app, listens, and schedules upkeep. */
export async function startServer(
  options: {
    config?: Config;
    store?: Store;
    logger?: boolean | Record<string, unknown>;
    heartbeatMs?: number;
  } = {},
): Promise<RunningServer> {
  const config = options.config ?? loadConfig();
  const store = options.store ?? (await openStore(config));
  const { secret, generated } = loadOrCreateSecret(config.secret, config.dataDir);
  const app = await buildApp({
    config,
    store,
    secret,
    logger: options.logger,
    heartbeatMs: options.heartbeatMs,
  });
  const log = app.fastify.log;
  const bridge = config.redisUrl
    ? await RevocationBridge.start(config.redisUrl, app.revocations.hub, config.redisPrefix)
    : undefined;
  if (generated) log.info({ dataDir: config.dataDir }, 'generated a server secret into the data folder');
  if (!config.secureCookies) {
    log.warn(
      'cookies are not Secure and have no __Host- prefix: plain-HTTP development mode; use an https issuer in production',
    );
  }
  if (config.internalAuth && config.internalAllow.length === 0) {
    if (config.feedToken === undefined)
      log.warn('the revocation feed answers 403 until TESSERA_FEED_TOKEN or TESSERA_INTERNAL_ALLOW is set');
    if (config.metricsToken === undefined)
      log.warn('/metrics answers 403 until TESSERA_METRICS_TOKEN or TESSERA_INTERNAL_ALLOW is set');
  }
  // Upkeep: rotate keys when due, prune expired revocations.
  const upkeep = setInterval(() => {
    void (async () => {
      try {
        await app.keys.init();
        await store.pruneRevocations(Math.floor(Date.now() / 1000));
      } catch (err) {
        log.warn({ err: String(err) }, 'upkeep failed');
      }
    })();
  }, 60 * 60_000);
  upkeep.unref();
  const address = await app.fastify.listen({ port: config.port, host: config.host });
  log.info({ address, issuer: config.issuer, store: store.kind }, 'tessera listening');
  return {
    app,
    url: address,
    async close() {
      clearInterval(upkeep);
      await app.fastify.close();
      await bridge?.close();
      await store.close();
    },
  };
}
