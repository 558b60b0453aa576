import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { RevocationHub } from '../domain/revocations.js';
import type { RevocationEntry } from '../store/types.js';

/**
 * Shares revocations between instances over Redis pub/sub: what one instance records is
 * delivered to the revocation streams of every other instance within milliseconds. The store
 * stays the source of truth; a stream that missed a message while Redis was away catches up
 * from its cursor on reconnect.
 */
export class RevocationBridge {
  private readonly instance = randomUUID();
  private readonly pub: Redis;
  private readonly sub: Redis;
  /** Seconds between another instance publishing an entry and this one receiving it, last seen. */
  lastLagSeconds = 0;

  /** `channel` is per deployment: pub/sub ignores Redis db numbers and key prefixes. */
  private constructor(
    url: string,
    private readonly hub: RevocationHub,
    private readonly channel: string,
  ) {
    const options = {
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      connectTimeout: 2000,
      lazyConnect: true,
    };
    this.pub = new Redis(url, { ...options, connectionName: 'tessera-feed-pub' });
    this.sub = new Redis(url, {
      ...options,
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      connectionName: 'tessera-feed-sub',
    });
    this.pub.on('error', () => undefined);
    this.sub.on('error', () => undefined);
  }

  /** `prefix` is the deployment's TESSERA_REDIS_PREFIX: deployments sharing a Redis must not hear each other. */
  static async start(url: string, hub: RevocationHub, prefix: string): Promise<RevocationBridge> {
    const bridge = new RevocationBridge(url, hub, `${prefix}revocations`);
    await Promise.all([bridge.pub.connect(), bridge.sub.connect()]);
    bridge.sub.on('message', (_channel: string, message: string) => bridge.receive(message));
    await bridge.sub.subscribe(bridge.channel);
    hub.broadcast = (entries) => bridge.publish(entries);
    return bridge;
  }

  private receive(message: string): void {
    try {
      const parsed = JSON.parse(message) as { from: string; at?: number; entries: RevocationEntry[] };
      if (parsed.from === this.instance || !Array.isArray(parsed.entries)) return;
      if (typeof parsed.at === 'number') this.lastLagSeconds = Math.max(0, Date.now() - parsed.at) / 1000;
      this.hub.deliver(parsed.entries);
    } catch {
      // a malformed message on our channel is ignored; the store remains the source of truth
    }
  }

  async publish(entries: RevocationEntry[]): Promise<void> {
    await this.pub.publish(this.channel, JSON.stringify({ from: this.instance, at: Date.now(), entries }));
  }

  async close(): Promise<void> {
    this.hub.broadcast = undefined;
    this.pub.disconnect();
    this.sub.disconnect();
  }
}
