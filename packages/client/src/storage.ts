import type { Mode } from './requests.js';

/**
 * What header delivery keeps between calls (Node, CLIs, server-to-server). Browsers use cookie
 * delivery and never store any of this.
 */
export interface StoredLogin {
  mode: Mode;
  sessionId: string;
  refreshToken?: string;
  sessionToken?: string;
  accessToken?: string;
  /** Epoch milliseconds. */
  accessExpiresAt?: number;
}

/** Where a header-delivery client keeps its login; pass a file- or keychain-backed one to survive restarts. */
export interface TokenStorage {
  load(): StoredLogin | null | Promise<StoredLogin | null>;
  save(login: StoredLogin): void | Promise<void>;
  clear(): void | Promise<void>;
}

export function memoryStorage(initial: StoredLogin | null = null): TokenStorage {
  let value = initial;
  return {
    load: () => value,
    save: (login) => {
      value = { ...login };
    },
    clear: () => {
      value = null;
    },
  };
}
