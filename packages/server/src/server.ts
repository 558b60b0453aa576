import { type Config, loadConfig, redactedConfig } from './config.js';
import type { App } from './http/app.js';
import { storeLabel } from './store/open.js';
import type { Stores } from './store/ports.js';
import { createTessera, type Tessera } from './tessera.js';

export interface RunningServer {
  app: App;
  tessera: Tessera;
  url: string;
  close(): Promise<void>;
}

/** Starts the account server: builds the instance (createTessera), says what needs saying, listens. */
export async function startServer(
  options: {
    config?: Config;
    /** Default: what the config names (openStores); closed with the server either way. */
    stores?: Stores;
    logger?: boolean | Record<string, unknown>;
    heartbeatMs?: number;
  } = {},
): Promise<RunningServer> {
  const config = options.config ?? loadConfig();
  const tessera = await createTessera(config, {
    stores: options.stores,
    logger: options.logger,
    heartbeatMs: options.heartbeatMs,
  });
  const log = tessera.app.fastify.log;
  log.debug({ config: redactedConfig(config) }, 'configuration');
  if (tessera.secretGenerated) {
    log.info({ dataDir: config.dataDir }, 'generated a server secret into the data folder');
  }
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
  let address: string;
  try {
    address = await tessera.listen();
  } catch (err) {
    await tessera.close();
    throw err;
  }
  log.info({ address, issuer: config.issuer, store: storeLabel(tessera.stores) }, 'tessera listening');
  return { app: tessera.app, tessera, url: address, close: () => tessera.close() };
}
