import { parseRevocationEntry, type RevocationSet } from './revocation.js';
import { type SseEvent, SseParser } from './sse.js';

export interface RevocationFeedClientOptions {
  /** The account server's issuer URL; the feed lives at `/auth/revocations` under it. */
  issuer: string | URL;
  /** The set the feed keeps up to date (create it with `maxStalenessMs` to fail closed). */
  set: RevocationSet;
  fetch?: typeof fetch;
  /** The account server's feed secret (its `TESSERA_FEED_TOKEN`), sent as `Authorization: Bearer`. */
  token?: string;
  /** Reconnect backoff: doubles from `initialBackoffMs` up to `maxBackoffMs`, with jitter. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Reconnect when the stream has been silent this long (a half-open connection). */
  idleTimeoutMs?: number;
  /** Timeout of the snapshot request. */
  requestTimeoutMs?: number;
  maxSnapshotBytes?: number;
  /** Told about connection problems and dropped entries; the client keeps retrying. */
  onError?: (err: Error) => void;
}

type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

const sleep: Sleep = (ms, signal) =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/**
 * Keeps a RevocationSet in step with the account server: a snapshot from
 * `GET /auth/revocations`, then the live stream `GET /auth/revocations/stream?cursor=…`
 * (SSE, `event: revocation` with `id: <cursor>`, heartbeats). Reconnects with backoff and
 * resumes from its cursor; takes a new snapshot if the server no longer knows the cursor.
 */
export class RevocationFeedClient {
  readonly #snapshotUrl: URL;
  readonly #streamUrl: URL;
  readonly #set: RevocationSet;
  readonly #fetch: typeof fetch;
  readonly #initialBackoff: number;
  readonly #maxBackoff: number;
  readonly #idleTimeout: number;
  readonly #requestTimeout: number;
  readonly #maxSnapshotBytes: number;
  readonly #onError: ((err: Error) => void) | undefined;
  readonly #authorization: Record<string, string>;
  #cursor: string | undefined;
  #abort = new AbortController();
  #loop: Promise<void> | undefined;
  #connected = false;
  /** Number of stream connections opened (for tests and metrics). */
  connections = 0;

  constructor(options: RevocationFeedClientOptions) {
    const base = new URL(options.issuer);
    const prefix = base.pathname.replace(/\/+$/, '');
    this.#snapshotUrl = new URL(`${prefix}/auth/revocations`, base);
    this.#streamUrl = new URL(`${prefix}/auth/revocations/stream`, base);
    this.#set = options.set;
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#initialBackoff = options.initialBackoffMs ?? 500;
    this.#maxBackoff = options.maxBackoffMs ?? 30_000;
    this.#idleTimeout = options.idleTimeoutMs ?? 45_000;
    this.#requestTimeout = options.requestTimeoutMs ?? 10_000;
    this.#maxSnapshotBytes = options.maxSnapshotBytes ?? 64 * 1024 * 1024;
    this.#onError = options.onError;
    if (options.token !== undefined && !/^[\x21-\x7e]+$/.test(options.token))
      throw new TypeError('token must be printable ASCII without spaces');
    this.#authorization = options.token === undefined ? {} : { authorization: `Bearer ${options.token}` };
  }

  get cursor(): string | undefined {
    return this.#cursor;
  }

  get connected(): boolean {
    return this.#connected;
  }

  /**
   * Starts following the feed in the background. Resolves once the first snapshot is loaded, or
   * rejects with its error (the client keeps retrying either way until `stop()`).
   */
  start(): Promise<void> {
    if (this.#loop) throw new Error('feed client already started');
    let first: { resolve: () => void; reject: (e: Error) => void } | undefined;
    const initial = new Promise<void>((resolve, reject) => {
      first = { resolve, reject };
    });
    // Handled here so an un-awaited start() cannot crash the process; callers still see it.
    initial.catch(() => undefined);
    this.#loop = this.#run((err) => {
      if (err) first?.reject(err);
      else first?.resolve();
      first = undefined;
    });
    return initial;
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
  }

  async #run(onFirstSnapshot: (err?: Error) => void): Promise<void> {
    const signal = this.#abort.signal;
    let attempt = 0;
    while (!signal.aborted) {
      try {
        if (this.#cursor === undefined) {
          await this.#snapshot(signal);
          onFirstSnapshot();
        }
        if (await this.#stream(signal)) attempt = 0;
      } catch (err) {
        if (signal.aborted) break;
        const error = err instanceof Error ? err : new Error(String(err));
        if (this.#cursor === undefined) onFirstSnapshot(error);
        this.#onError?.(error);
      }
      this.#connected = false;
      if (signal.aborted) break;
      const base = Math.min(this.#maxBackoff, this.#initialBackoff * 2 ** Math.min(attempt, 20));
      attempt++;
      await sleep(base / 2 + Math.random() * (base / 2), signal);
    }
    this.#connected = false;
  }

  async #snapshot(signal: AbortSignal): Promise<void> {
    const res = await this.#fetch(this.#snapshotUrl, {
      headers: { accept: 'application/json', ...this.#authorization },
      signal: AbortSignal.any([signal, AbortSignal.timeout(this.#requestTimeout)]),
    });
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new Error(`revocation snapshot answered ${res.status}`);
    }
    const text = await res.text();
    if (text.length > this.#maxSnapshotBytes) throw new Error('revocation snapshot too large');
    const body = JSON.parse(text) as { cursor?: unknown; entries?: unknown } | null;
    if (
      !body ||
      !Array.isArray(body.entries) ||
      (typeof body.cursor !== 'string' && typeof body.cursor !== 'number')
    ) {
      throw new Error('revocation snapshot has the wrong shape');
    }
    let dropped = 0;
    for (const entry of body.entries) if (!this.#set.add(entry) && !parseRevocationEntry(entry)) dropped++;
    if (dropped > 0) this.#onError?.(new Error(`revocation snapshot: ${dropped} malformed entries ignored`));
    this.#cursor = String(body.cursor);
    this.#set.touch();
  }

  /** Follows the stream until it ends. Returns true if the server spoke on it (resets the backoff). */
  async #stream(signal: AbortSignal): Promise<boolean> {
    const url = new URL(this.#streamUrl);
    url.searchParams.set('cursor', this.#cursor ?? '');
    const idle = new AbortController();
    // One timer covers both connecting and silence on an open stream (half-open connections).
    let timer = setTimeout(() => idle.abort(), this.#idleTimeout);
    const alive = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => idle.abort(), this.#idleTimeout);
    };
    try {
      return await this.#follow(url, AbortSignal.any([signal, idle.signal]), alive, idle.signal);
    } finally {
      clearTimeout(timer);
    }
  }

  async #follow(url: URL, signal: AbortSignal, alive: () => void, idle: AbortSignal): Promise<boolean> {
    const res = await this.#fetch(url, {
      headers: { accept: 'text/event-stream', 'last-event-id': this.#cursor ?? '', ...this.#authorization },
      signal,
    });
    if (res.status === 410 || res.status === 400 || res.status === 404) {
      // The server forgot our cursor (or never had it): start over from a snapshot.
      await res.body?.cancel();
      this.#cursor = undefined;
      throw new Error(`revocation stream answered ${res.status}; taking a new snapshot`);
    }
    if (res.status !== 200 || !res.body) {
      await res.body?.cancel();
      throw new Error(`revocation stream answered ${res.status}`);
    }
    if (!(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
      await res.body.cancel();
      throw new Error('revocation stream is not text/event-stream');
    }
    this.connections++;
    this.#connected = true;
    alive();
    // Fresh only once the server speaks (its hello, a heartbeat, an entry): an answer that opens a
    // stream and then says nothing (a buffering proxy, a stalled server) never counts as fresh.
    let heard = false;
    const parser = new SseParser(
      (e) => {
        heard = true;
        this.#onEvent(e, alive);
      },
      () => {
        heard = true;
        alive();
        this.#set.touch();
      },
    );
    const decoder = new TextDecoder();
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        alive();
        parser.push(decoder.decode(value, { stream: true }));
      }
    } catch (err) {
      if (!idle.aborted) throw err;
      this.#onError?.(new Error('revocation stream idle; reconnecting'));
    } finally {
      await reader.cancel().catch(() => undefined);
    }
    return heard;
  }

  #onEvent(e: SseEvent, alive: () => void): void {
    alive();
    if (e.event === 'heartbeat' || e.event === 'hello') {
      this.#set.touch();
      return;
    }
    if (e.event !== 'revocation') return;
    let entry: unknown;
    try {
      entry = JSON.parse(e.data);
    } catch {
      entry = undefined;
    }
    if (!this.#set.add(entry) && !parseRevocationEntry(entry)) {
      this.#onError?.(new Error('revocation event with a malformed entry ignored'));
    }
    if (e.id !== undefined && e.id !== '') this.#cursor = e.id;
    this.#set.touch();
  }
}
