import { createHash, sign as cryptoSign } from 'node:crypto';
import {
  type AccessTokenClaims,
  createVerifier,
  dpopConfirmation,
  type Verifier,
  VerifyError,
} from '@tessera/verify';
import type { Config } from '../config.js';
import { randomId } from '../util/crypto.js';
import type { KeyRing } from './keys.js';

/** A verified access token of this server: every one names the session or grant it belongs to. */
export type AccessClaims = AccessTokenClaims & { readonly sid: string };

/**
 * The leeway for exp, nbf and iat on every token this server checks (first-party routes,
 * introspection, revocation, userinfo, `tessera token inspect`). None: the server reads the
 * clock it signed with, so an access token ends exactly `accessTokenTtl` after it was issued.
 */
export const OWN_TOKEN_CLOCK_SKEW_SECONDS = 0;

/** Verifiers kept at once (one per audience set and binding rule); more clears the lot. */
const MAX_VERIFIERS = 64;

export interface TokenIssuerDeps {
  config: Pick<Config, 'issuer' | 'audience' | 'accessTokenTtl'>;
  keys: KeyRing;
  now?: () => number;
}

interface MintedAccessClaims {
  iss: string;
  sub: string;
  aud: string;
  exp: number;
  iat: number;
  jti: string;
  sid: string;
  scope: string;
  roles?: string[];
  client_id?: string;
  cnf?: { jkt: string };
}

/** What an OAuth access token is issued for. */
export interface OAuthAccessToken {
  sub: string;
  /** The grant: revoking it ends the token (`sid`). */
  grantId: string;
  scope: string;
  clientId: string;
  /** RFC 8707 resource; without one the audience is this server (userinfo, introspection). */
  resource: string | undefined;
  /** RFC 9449: the DPoP key thumbprint the token is bound to (`cnf.jkt`). */
  jkt: string | undefined;
}

/** What an OpenID Connect ID token says about the sign-in behind an access token. */
export interface IdToken {
  user: { id: string; username: string };
  clientId: string;
  nonce: string | null;
  /** Milliseconds since the epoch. */
  authTime: number;
  accessToken: string;
  profile: boolean;
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

type Binding = 'unbound' | 'dpop';

/**
 * The one place tokens are minted (first-party and OAuth access tokens, RFC 9068; ID tokens),
 * signed ES256 with the key ring's current key, and the one place this server checks the access
 * tokens it receives: through @tessera/verify, the library API servers use, rebuilt whenever the
 * published key set changes.
 */
export class TokenIssuer {
  private readonly now: () => number;
  private verifiers = new Map<string, Verifier>();
  private generation = -1;

  constructor(private readonly deps: TokenIssuerDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Re-reads the key ring when the cached copy is old, so a token is signed by the cluster's current key. */
  refreshKeys(now: number): Promise<void> {
    return this.deps.keys.refresh(now);
  }

  /** A first-party access token: for the configured audience, scope `api`, the user's roles. */
  firstPartyAccessToken(user: { id: string; roles: string[] }, sid: string, now: number): Promise<string> {
    return this.accessToken(
      { sub: user.id, aud: this.deps.config.audience, sid, scope: 'api', roles: user.roles },
      now,
    );
  }

  /** An OAuth access token: audience the resource or this server, never the first-party audience. */
  oauthAccessToken(input: OAuthAccessToken, now: number): Promise<string> {
    return this.accessToken(
      {
        sub: input.sub,
        aud: input.resource ?? this.deps.config.issuer,
        sid: input.grantId,
        scope: input.scope,
        client_id: input.clientId,
        ...(input.jkt !== undefined ? { cnf: { jkt: input.jkt } } : {}),
      },
      now,
    );
  }

  /** OIDC Core 3.1.3.6: audience the client, `at_hash` the left half of the access token's SHA-256. */
  idToken(input: IdToken, now: number): Promise<string> {
    const { config } = this.deps;
    const iat = Math.floor(now / 1000);
    const digest = createHash('sha256').update(input.accessToken).digest();
    const claims: Record<string, unknown> = {
      iss: config.issuer,
      sub: input.user.id,
      aud: input.clientId,
      azp: input.clientId,
      exp: iat + config.accessTokenTtl,
      iat,
      auth_time: Math.floor(input.authTime / 1000),
      at_hash: digest.subarray(0, 16).toString('base64url'),
    };
    if (input.nonce !== null) claims.nonce = input.nonce;
    if (input.profile) claims.preferred_username = input.user.username;
    return this.sign('JWT', claims);
  }

  private accessToken(
    claims: Omit<MintedAccessClaims, 'iss' | 'exp' | 'iat' | 'jti'>,
    now: number,
  ): Promise<string> {
    const iat = Math.floor(now / 1000);
    const { issuer, accessTokenTtl } = this.deps.config;
    const full: MintedAccessClaims = {
      iss: issuer,
      ...claims,
      exp: iat + accessTokenTtl,
      iat,
      jti: randomId(),
    };
    return this.sign('at+jwt', full);
  }

  /** The encoded JOSE header for a token type and key: a few of them, made once each. */
  private readonly headers = new Map<string, string>();
  private header(typ: string, kid: string): string {
    const name = `${typ} ${kid}`;
    let encoded = this.headers.get(name);
    if (encoded === undefined) {
      if (this.headers.size >= 64) this.headers.clear(); // keys rotate: old ones go
      encoded = b64({ alg: 'ES256', typ, kid });
      this.headers.set(name, encoded);
    }
    return encoded;
  }

  /**
   * A compact JWS, ES256 (raw r||s signature, as JWS requires), by the current key. The curve
   * arithmetic runs on libuv's thread pool, so the event loop serves other requests meanwhile.
   */
  private sign(typ: string, claims: object): Promise<string> {
    const { kid, key } = this.deps.keys.signingKey();
    const input = `${this.header(typ, kid)}.${b64(claims)}`;
    return new Promise((resolve, reject) => {
      cryptoSign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }, (err, signature) => {
        if (err) reject(err);
        else resolve(`${input}.${signature.toString('base64url')}`);
      });
    });
  }

  /**
   * A first-party access token of ours (audience the configured one). Tokens bound to a key
   * (`cnf`) are refused: first-party routes take no proof of possession. The signature is
   * checked on libuv's thread pool. Rejects with VerifyError.
   */
  verifyFirstParty(token: string): Promise<AccessClaims> {
    return this.verify(token, [this.deps.config.audience], 'unbound');
  }

  /**
   * An OAuth access token of ours for one of `audiences` (this server, or a client's resources).
   * DPoP-bound tokens (`cnf: {jkt}`) pass: the caller checks the proof where one is needed.
   * Rejects with VerifyError.
   */
  verifyOAuth(token: string, audiences: readonly string[]): Promise<AccessClaims> {
    return this.verify(token, audiences, 'dpop');
  }

  private async verify(token: string, audiences: readonly string[], binding: Binding): Promise<AccessClaims> {
    // Fixed keys (the ring's own): verify() never fetches, it only moves the signature check off the loop.
    const claims = await this.verifierFor(audiences, binding).verify(token);
    if (typeof claims.sid !== 'string') throw new VerifyError('invalid_claims');
    return claims as AccessClaims;
  }

  private verifierFor(audiences: readonly string[], binding: Binding): Verifier {
    const keys = this.deps.keys;
    if (this.generation !== keys.generation) {
      this.verifiers.clear();
      this.generation = keys.generation;
    }
    const id = JSON.stringify([binding, ...audiences]);
    let verifier = this.verifiers.get(id);
    if (verifier === undefined) {
      if (this.verifiers.size >= MAX_VERIFIERS) this.verifiers.clear();
      verifier = createVerifier({
        issuer: this.deps.config.issuer,
        audience: [...audiences],
        jwks: { keys: keys.jwks().keys },
        clockSkewSeconds: OWN_TOKEN_CLOCK_SKEW_SECONDS,
        confirmation: binding === 'dpop' ? dpopConfirmation : 'reject',
        cache: { max: 10_000 },
        clock: this.now,
      });
      this.verifiers.set(id, verifier);
    }
    return verifier;
  }
}
