import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import { jwkThumbprint } from '@tessera/verify';
import type { Stores } from '../store/ports.js';
import type { SigningKeyRecord } from '../store/types.js';
import { seal, unseal } from '../util/crypto.js';

export interface PublicJwk {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
  kid: string;
  alg: 'ES256';
  use: 'sig';
}

interface LoadedKey {
  record: SigningKeyRecord;
  publicKey: KeyObject;
  privateKey: KeyObject | undefined;
}

export function generateSigningKey(
  encryptionKey: Buffer,
  state: SigningKeyRecord['state'],
  now: number,
): SigningKeyRecord {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' }) as { x: string; y: string };
  // The kid is the key's RFC 7638 thumbprint.
  const kid = jwkThumbprint(jwk);
  const publicJwk: PublicJwk = { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, kid, alg: 'ES256', use: 'sig' };
  return {
    kid,
    alg: 'ES256',
    state,
    publicJwk: { ...publicJwk },
    privateKeyEnc: seal(privateKey.export({ format: 'der', type: 'pkcs8' }), encryptionKey),
    createdAt: now,
    retireUntil: null,
  };
}

/**
 * The signing key ring: `next` is published before it signs, `current` signs, `retired` keys
 * stay published until every token they signed has expired. Read from the store and cached;
 * every instance of a cluster converges on the store's ring within `refreshMs`.
 */
export class KeyRing {
  private keys: LoadedKey[] = [];
  private loadedAt = 0;
  /** Grows whenever the set of published keys changes, so verifiers built on it know to rebuild. */
  generation = 0;
  private loading: Promise<void> | undefined;

  constructor(
    private readonly stores: Pick<Stores, 'keys' | 'audit'>,
    private readonly encryptionKey: Buffer,
    private readonly options: { rotationDays: number; accessTokenTtl: number; refreshMs?: number },
  ) {}

  /**
   * Loads the ring, creating it on first start and rotating it when due; drops the retired keys
   * whose tokens have all expired (upkeep runs this hourly, so a key taken out of signing by a
   * rotation stops being trusted soon after its last token ends, not at the next rotation).
   */
  async init(now = Date.now()): Promise<void> {
    await this.stores.keys.deleteRetiredKeys(now);
    let records = await this.stores.keys.listSigningKeys();
    if (records.length === 0) {
      await this.stores.keys.initSigningKeys([
        generateSigningKey(this.encryptionKey, 'current', now),
        generateSigningKey(this.encryptionKey, 'next', now + 1),
      ]);
      records = await this.stores.keys.listSigningKeys();
    }
    this.install(records, now);
    const current = this.current();
    // Due when `next` has been published for a whole period: it was made at the last rotation,
    // while `current` was made a period before it began to sign (as the `next` of its day).
    const next = this.keys.find((k) => k.record.state === 'next') ?? current;
    if (now - next.record.createdAt > this.options.rotationDays * 86_400_000) await this.rotate(now);
  }

  private install(records: SigningKeyRecord[], now: number): void {
    const previous = new Map(this.keys.map((k) => [k.record.kid, k]));
    const before = [...previous.keys()].join(',');
    this.keys = records.map((record) => {
      const known = previous.get(record.kid);
      if (known)
        return { ...known, record, privateKey: record.state === 'retired' ? undefined : known.privateKey };
      const publicKey = createPublicKey({ key: record.publicJwk as JsonWebKey, format: 'jwk' });
      let privateKey: KeyObject | undefined;
      if (record.state !== 'retired') {
        privateKey = createPrivateKey({
          key: unseal(record.privateKeyEnc, this.encryptionKey),
          format: 'der',
          type: 'pkcs8',
        });
      }
      return { record, publicKey, privateKey };
    });
    this.loadedAt = now;
    if (this.keys.map((k) => k.record.kid).join(',') !== before) this.generation += 1;
  }

  /** Re-reads the ring when the cached copy is older than refreshMs (single-flight). */
  async refresh(now = Date.now(), force = false): Promise<void> {
    if (!force && now - this.loadedAt < (this.options.refreshMs ?? 30_000)) return;
    this.loading ??= this.stores.keys
      .listSigningKeys()
      .then((records) => this.install(records, Date.now()))
      .finally(() => {
        this.loading = undefined;
      });
    await this.loading;
  }

  private current(): LoadedKey {
    const key = this.keys.find((k) => k.record.state === 'current');
    if (!key?.privateKey) throw new Error('key ring has no current key; call init() first');
    return key;
  }

  signingKey(): { kid: string; key: KeyObject } {
    const current = this.current();
    return { kid: current.record.kid, key: current.privateKey! };
  }

  /** Any published key, for verifying tokens this server issued. */
  publicKey(kid: string): KeyObject | undefined {
    return this.keys.find((k) => k.record.kid === kid)?.publicKey;
  }

  jwks(): { keys: PublicJwk[] } {
    const order = { current: 0, next: 1, retired: 2 } as const;
    return {
      keys: [...this.keys]
        .sort((a, b) => order[a.record.state] - order[b.record.state])
        .map((k) => ({ ...(k.record.publicJwk as unknown as PublicJwk), kid: k.record.kid })),
    };
  }

  list(): SigningKeyRecord[] {
    return this.keys.map((k) => k.record);
  }

  /**
   * next → current, current → retired (kept for the longest access-token lifetime plus a
   * margin), and a new next. A compare-and-set, so two instances rotating at once rotate once.
   */
  async rotate(now = Date.now()): Promise<boolean> {
    await this.refresh(now, true);
    const current = this.keys.find((k) => k.record.state === 'current')?.record.kid ?? null;
    const retireUntil = now + (this.options.accessTokenTtl + 300) * 1000;
    const rotated = await this.stores.keys.rotateSigningKeys(
      generateSigningKey(this.encryptionKey, 'next', now),
      current,
      now,
      retireUntil,
    );
    await this.stores.keys.deleteRetiredKeys(now);
    await this.refresh(now, true);
    if (rotated) {
      const current = this.keys.find((k) => k.record.state === 'current')?.record.kid ?? null;
      await this.stores.audit.appendAuditEvent({
        at: now,
        type: 'key_rotation',
        userId: null,
        sessionId: null,
        ip: null,
        userAgent: null,
        detail: `current kid ${current}`,
      });
    }
    return rotated;
  }
}
