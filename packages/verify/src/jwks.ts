import type { Algorithm, TrustedKey } from './algorithms.js';
import { importJwk } from './keys.js';

export interface JwksClientOptions {
  /** Where the account server publishes its keys, e.g. `${issuer}/.well-known/jwks.json`. */
  url: string | URL;
  /** Algorithms keys may be used with; keys for anything else are skipped. */
  algorithms?: readonly Algorithm[];
  fetch?: typeof fetch;
  /** Minimum time between two fetches that were not asked for by `Cache-Control` expiry. */
  cooldownMs?: number;
  /** Freshness when the response has no usable `Cache-Control: max-age`. */
  defaultMaxAgeMs?: number;
  /** Bounds applied to the server's `max-age`. */
  minMaxAgeMs?: number;
  maxMaxAgeMs?: number;
  timeoutMs?: number;
  maxResponseBytes?: number;
  maxKeys?: number;
  clock?: () => number;
  /** Told about fetch failures and skipped keys; the client keeps serving what it has. */
  onError?: (err: Error) => void;
}

export type KeysRemovedListener = (kids: readonly string[]) => void;

/**
 * Fetches and caches the account server's JWKS. Lookups are synchronous map reads; network work
 * happens in the background (on expiry) or on an unknown `kid`, single-flight and rate-limited by a
 * cooldown so a flood of junk `kid`s costs the account server at most one request per cooldown.
 * When the account server is down the last good key set keeps being used.
 */
export class JwksClient {
  readonly url: URL;
  #keys = new Map<string, TrustedKey>();
  #loaded = false;
  #expiresAt = 0;
  #lastAttemptAt = Number.NEGATIVE_INFINITY;
  #inflight: Promise<void> | undefined;
  #lastError: Error | undefined;
  #listeners: KeysRemovedListener[] = [];
  readonly #fetch: typeof fetch;
  readonly #algorithms: readonly Algorithm[];
  readonly #cooldownMs: number;
  readonly #defaultMaxAgeMs: number;
  readonly #minMaxAgeMs: number;
  readonly #maxMaxAgeMs: number;
  readonly #timeoutMs: number;
  readonly #maxBytes: number;
  readonly #maxKeys: number;
  readonly #clock: () => number;
  readonly #onError: ((err: Error) => void) | undefined;
  /** Number of HTTP requests made (for tests and metrics). */
  fetchCount = 0;

  constructor(options: JwksClientOptions) {
    this.url = new URL(options.url);
    if (this.url.protocol !== 'https:' && this.url.protocol !== 'http:') {
      throw new TypeError('jwks url must be http(s)');
    }
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#algorithms = options.algorithms ?? ['ES256'];
    this.#cooldownMs = options.cooldownMs ?? 10_000;
    this.#defaultMaxAgeMs = options.defaultMaxAgeMs ?? 300_000;
    this.#minMaxAgeMs = options.minMaxAgeMs ?? 30_000;
    this.#maxMaxAgeMs = options.maxMaxAgeMs ?? 86_400_000;
    this.#timeoutMs = options.timeoutMs ?? 5_000;
    this.#maxBytes = options.maxResponseBytes ?? 256 * 1024;
    this.#maxKeys = options.maxKeys ?? 64;
    this.#clock = options.clock ?? Date.now;
    this.#onError = options.onError;
  }

  /** True once a key set has been loaded at least once. */
  get loaded(): boolean {
    return this.#loaded;
  }

  get lastError(): Error | undefined {
    return this.#lastError;
  }

  get kids(): string[] {
    return [...this.#keys.keys()];
  }

  /** Called with the kids that disappeared (or changed material) after a refresh. */
  onKeysRemoved(listener: KeysRemovedListener): void {
    this.#listeners.push(listener);
  }

  /** Synchronous lookup. Also starts a background refresh when the cached set has expired. */
  get(kid: string): TrustedKey | undefined {
    if (this.#clock() >= this.#expiresAt) this.#maybeRefreshInBackground();
    return this.#keys.get(kid);
  }

  /** Loads the key set if it never was; rejects if that fails. */
  async ready(): Promise<void> {
    if (this.#loaded) return;
    if (this.#inflight === undefined && this.#clock() - this.#lastAttemptAt < this.#cooldownMs) {
      throw this.#lastError ?? new Error('jwks not loaded');
    }
    await this.refresh();
  }

  /**
   * Asked for by a token with an unknown kid: refetch unless one is already running (then wait
   * for it) or the cooldown since the last attempt has not passed (then do nothing).
   */
  async refreshForUnknownKid(): Promise<void> {
    if (this.#inflight) return this.#inflight.catch(() => undefined);
    if (this.#clock() - this.#lastAttemptAt < this.#cooldownMs) return;
    return this.refresh().catch(() => undefined);
  }

  /** Fetches now (single-flight). Rejects on failure; the previous key set stays in use. */
  refresh(): Promise<void> {
    if (this.#inflight) return this.#inflight;
    this.#lastAttemptAt = this.#clock();
    const p = this.#load().finally(() => {
      this.#inflight = undefined;
    });
    this.#inflight = p;
    return p;
  }

  #maybeRefreshInBackground(): void {
    if (this.#inflight || this.#clock() - this.#lastAttemptAt < this.#cooldownMs) return;
    this.refresh().catch(() => undefined);
  }

  async #load(): Promise<void> {
    try {
      this.fetchCount++;
      const res = await this.#fetch(this.url, {
        headers: { accept: 'application/json' },
        redirect: 'error',
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new Error(`jwks fetch answered ${res.status}`);
      }
      const declared = Number(res.headers.get('content-length') ?? '0');
      if (declared > this.#maxBytes) {
        await res.body?.cancel();
        throw new Error('jwks response too large');
      }
      const text = await res.text();
      if (text.length > this.#maxBytes) throw new Error('jwks response too large');
      const body: unknown = JSON.parse(text);
      const list = (body as { keys?: unknown } | null)?.keys;
      if (!Array.isArray(list)) throw new Error('jwks response has no keys array');
      const next = new Map<string, TrustedKey>();
      for (const jwk of list.slice(0, this.#maxKeys)) {
        const imported = importJwk(jwk, this.#algorithms);
        if (typeof imported === 'string') {
          this.#onError?.(new Error(`jwks key skipped: ${imported}`));
        } else if (!next.has(imported.kid)) {
          next.set(imported.kid, imported);
        }
      }
      if (next.size === 0) throw new Error('jwks has no usable key');
      this.#install(next, this.#maxAge(res.headers.get('cache-control')));
      this.#lastError = undefined;
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.#lastError = error;
      this.#onError?.(error);
      throw error;
    }
  }

  #install(next: Map<string, TrustedKey>, maxAgeMs: number): void {
    const removed: string[] = [];
    for (const [kid, old] of this.#keys) {
      if (next.get(kid)?.fingerprint !== old.fingerprint) removed.push(kid);
    }
    this.#keys = next;
    this.#loaded = true;
    this.#expiresAt = this.#clock() + maxAgeMs;
    if (removed.length > 0) for (const l of this.#listeners) l(removed);
  }

  #maxAge(header: string | null): number {
    let ms = this.#defaultMaxAgeMs;
    if (header) {
      const h = header.toLowerCase();
      const m = /(?:^|[,\s])max-age\s*=\s*"?(\d{1,10})"?/.exec(h);
      if (/(?:^|[,\s])(?:no-store|no-cache)(?:$|[,\s])/.test(h)) ms = 0;
      else if (m) ms = Number(m[1]) * 1000;
    }
    return Math.min(Math.max(ms, this.#minMaxAgeMs), this.#maxMaxAgeMs);
  }
}
