export { type Config, ConfigError, loadConfig } from './config.js';
export { ERROR_CODES, type ErrorCode, StoreUnavailableError, statusOf, TesseraError } from './errors.js';
export { type App, type AppOptions, buildApp } from './http/app.js';
export { type OpenApiDocument, openApiDocument } from './openapi/document.js';
export { type RunningServer, startServer } from './server.js';
export { closeStores, openStores } from './store/open.js';
export type * from './store/ports.js';
export { DataFolderInUseError } from './store/server-lock.js';
export { openSqliteStores } from './store/sqlite.js';
export type * from './store/types.js';
export {
  createTessera,
  type OAuthParts,
  type Tessera,
  type TesseraCore,
  type TesseraOptions,
} from './tessera.js';
