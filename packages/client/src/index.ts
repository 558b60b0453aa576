export { type AuthListener, type ClientOptions, type LoginResult, TesseraClient } from './client.js';
export {
  type ClientErrorCode,
  describeError,
  isClientError,
  type SdkErrorCode,
  SIGNED_OUT_CODES,
  TesseraClientError,
} from './errors.js';
export * from './requests.js';
export * from './responses.js';
export { SERVER_ERROR_CODES, type ServerErrorCode } from './server-codes.js';
export { memoryStorage, type StoredLogin, type TokenStorage } from './storage.js';
export {
  type Coordinator,
  localCoordinator,
  type SharedState,
  type TabMessage,
  tabCoordinator,
} from './tabs.js';

import { type ClientOptions, TesseraClient } from './client.js';

export function createClient(options: ClientOptions): TesseraClient {
  return new TesseraClient(options);
}
