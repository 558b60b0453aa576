/**
 * Coordination between browser tabs of one origin: one refresh at a time (Web Locks) and the
 * result shared with every tab (BroadcastChannel), so tabs never present the same refresh cookie
 * twice. Outside a browser it degrades to an in-process mutex.
 */

/** What a tab shares: never a refresh or session token, which stay in HttpOnly cookies. */
export interface SharedState {
  mode: 'session' | 'token';
  sessionId: string;
  accessToken?: string;
  /** Epoch milliseconds. */
  accessExpiresAt?: number;
  csrfToken?: string;
}

export type TabMessage = { type: 'state'; state: SharedState } | { type: 'signed_out' };

export interface Coordinator {
  /** Runs `fn` while no other holder of the same coordinator name (in any tab) runs one. */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  publish(message: TabMessage): void;
  subscribe(listener: (message: TabMessage) => void): () => void;
  close(): void;
}

/** A promise-chain mutex: enough inside one process. */
function mutex(): <T>(fn: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => undefined);
    return run;
  };
}

const optional = (v: unknown, type: 'string' | 'number') => v === undefined || typeof v === type;

/** A message of the shape tabs send, each field of its type (the receiver keeps only those fields). */
function isMessage(data: unknown): data is TabMessage {
  if (typeof data !== 'object' || data === null) return false;
  const m = data as { type?: unknown; state?: Record<string, unknown> };
  if (m.type === 'signed_out') return true;
  const s = m.state;
  return (
    m.type === 'state' &&
    typeof s === 'object' &&
    s !== null &&
    typeof s.sessionId === 'string' &&
    (s.mode === 'token' || s.mode === 'session') &&
    optional(s.accessToken, 'string') &&
    optional(s.accessExpiresAt, 'number') &&
    optional(s.csrfToken, 'string')
  );
}

/**
 * Web Locks when the page is a secure context (https or loopback), else an in-tab mutex (the
 * server's refresh grace window then covers concurrent tabs). BroadcastChannel when present.
 */
export function tabCoordinator(name: string): Coordinator {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  const local = mutex();
  const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(name) : undefined;
  const listeners = new Set<(m: TabMessage) => void>();
  if (channel) {
    channel.onmessage = (event: MessageEvent) => {
      if (!isMessage(event.data)) return;
      for (const l of listeners) l(event.data);
    };
  }
  return {
    exclusive: <T>(fn: () => Promise<T>): Promise<T> =>
      locks ? local(() => locks.request(name, { mode: 'exclusive' }, fn) as Promise<T>) : local(fn),
    publish: (message) => channel?.postMessage(message),
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: () => channel?.close(),
  };
}

/** No other tabs: Node, workers, tests. */
export function localCoordinator(): Coordinator {
  const local = mutex();
  return { exclusive: local, publish: () => {}, subscribe: () => () => {}, close: () => {} };
}
