import { randomUUID } from 'node:crypto';
import type { RevocationHub } from '../domain/revocations.js';
import { connectRedis, type RedisClient } from '../store/redis.js';
import type { RevocationEntry } from '../store/types.js';

/**
 * Shares revocations between instances over Redis pub/sub: what one instance records is
 * delivered to the revocation streams of every other instance within milliseconds. The store
 * stays the source of truth: pub/sub drops what a subscriber was not connected for, so every
 * stream also reads the store again with each heartbeat (http/routes/feed.ts) and sends what a
 * lost message left out. On a Redis Cluster a message published on any node reaches the
 * subscribers on every node.
 */
export class RevocationBridge {
  private readonly instance = randomUUID();
  /** Seconds between another instance publishing an entry and this one receiving it, last seen. */
  lastLagSeconds = 0;

  /** `channel` is per deployment: pub/sub ignores Redis db numbers and key prefixes. */
  private constructor(
    private readonly pub: RedisClient,
    private readonly sub: RedisClient,
    private readonly hub: RevocationHub,
    private readonly channel: string,
  ) {}

  /**
   * `prefix` is the deployment's TESSERA_REDIS_PREFIX: deployments sharing a Redis must not hear
   * each other. `cluster`: `url` names nodes of a Redis Cluster.
   */
  static async start(
    url: string,
    hub: RevocationHub,
    prefix: string,
    cluster = false,
  ): Promise<RevocationBridge> {
    const [pub, sub] = await Promise.allSettled([
      connectRedis(url, { cluster, connectionName: 'tessera-feed-pub' }),
      connectRedis(url, { cluster, subscriber: true, connectionName: 'tessera-feed-sub' }),
    ]);
    if (pub.status === 'rejected' || sub.status === 'rejected') {
      for (const c of [pub, sub]) if (c.status === 'fulfilled') c.value.disconnect();
      throw pub.status === 'rejected' ? pub.reason : (sub as PromiseRejectedResult).reason;
    }
    const bridge = new RevocationBridge(pub.value, sub.value, hub, `${prefix}revocations`);
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
