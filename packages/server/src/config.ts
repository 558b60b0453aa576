import { readFileSync } from 'node:fs';
import type { ProviderConfig } from './federation/providers.js';
import { readSetting, SETTINGS } from './settings.js';

export { isAddressOrCidr } from './settings.js';

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  /**
   * SQLite's `synchronous` in WAL mode: `normal` survives a crash of the process but may lose the
   * last commits to a crash of the machine; `full` syncs every commit to the disk.
   */
  sqliteSync: 'normal' | 'full';
  issuer: string;
  audience: string;
  corsOrigins: string[];
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  /** `redisUrl` names nodes of a Redis Cluster (comma-separated); the rest are discovered. */
  redisCluster: boolean;
  /** PostgreSQL schema holding Tessera's tables. */
  databaseSchema: string;
  /** Prefix of every Redis key and of the revocation pub/sub channel. */
  redisPrefix: string;
  /** The OAuth 2 / OpenID Connect provider (its routes, the grants list, `tessera clients`). */
  oauth: boolean;
  /** Secret that encrypts private keys at rest and keys the HMACs; undefined: generated into dataDir. */
  secret: string | undefined;
  defaultMode: 'session' | 'token';
  accessTokenTtl: number;
  refreshGraceSeconds: number;
  refreshIdleTtl: number;
  refreshAbsoluteTtl: number;
  sessionIdleTtl: number;
  sessionAbsoluteTtl: number;
  /** Sliding expiry is written back at most this often, seconds. */
  sessionTouchInterval: number;
  /** How long an instance may answer from its own copy of a live session, ms; 0: always the store. */
  sessionCacheMs: number;
  keyRotationDays: number;
  /** Cookies get `Secure` and the `__Host-` prefix; off only for plain-HTTP development. */
  secureCookies: boolean;
  sameSite: 'lax' | 'strict' | 'none';
  /**
   * The proxies whose `X-Forwarded-*` headers count, by address or CIDR (or proxy-addr's names
   * `loopback`, `linklocal`, `uniquelocal`); false: none. The client IP is the address the
   * nearest trusted proxy saw the request come from.
   */
  trustProxy: false | string[];
  logLevel: string;
  loginMaxFailuresPerAccount: number;
  loginMaxFailuresPerIp: number;
  /** Registrations allowed per IP per hour. */
  registerPerIpPerHour: number;
  bodyLimitBytes: number;
  /** OAuth grants survive "sign out everywhere" and password changes (never a disabled account). */
  oauthKeepGrants: boolean;
  /** Bearer token for the OAuth client admin API; undefined: no admin API. */
  adminToken: string | undefined;
  /** Bearer secret for the revocation feed; undefined: none. */
  feedToken: string | undefined;
  /** Bearer secret for /metrics; undefined: none. */
  metricsToken: string | undefined;
  /** IPs and CIDRs that may read the feed and /metrics without a token. */
  internalAllow: string[];
  /** Feed and /metrics refuse anonymous readers (a token or the allow-list is needed). */
  internalAuth: boolean;
  /** Concurrent revocation streams per client IP. */
  feedMaxStreamsPerClient: number;
  /** Upstream sign-in providers (OpenID Connect or plain OAuth 2); none by default. */
  providers: ProviderConfig[];
  /** SMTP server (`smtp://user:pass@host:port`, `smtps://…`); undefined: mails go to the outbox folder. */
  smtpUrl: string | undefined;
  /** The From of every mail. */
  mailFrom: string;
  /** The product name mails and pages speak of. */
  productName: string;
  /** Registration needs an email address. */
  emailRequired: boolean;
  /** Sign-in needs a verified email address. */
  emailRequireVerified: boolean;
  /** Verification and email-change links live this long, seconds. */
  emailTokenTtl: number;
  /** Password reset links live this long, seconds. */
  passwordResetTtl: number;
  /** Password reset requests per address per hour. */
  passwordResetPerAddressPerHour: number;
  /** Password reset requests per client IP per hour. */
  passwordResetPerIpPerHour: number;
  /** The first wait before a failed mail is sent again, seconds (doubling up to an hour). */
  mailRetrySeconds: number;
}

/** A mistake in configuration; the CLI prints each message and exits. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * Builds the configuration from, in rising priority: the defaults in SETTINGS, a JSON file
 * (`TESSERA_CONFIG` or the `file` argument, by setting key), `TESSERA_*` environment variables,
 * and `overrides`. Every mistake is collected and reported together.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<Config> = {},
  file: string | undefined = env.TESSERA_CONFIG,
): Config {
  const problems: string[] = [];
  const raw: Record<string, unknown> = {};
  if (file) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        problems.push(`config file ${file}: must hold a JSON object`);
      } else Object.assign(raw, parsed);
    } catch (err) {
      problems.push(`config file ${file}: ${(err as Error).message}`);
    }
  }
  for (const s of SETTINGS) {
    const value = env[s.env];
    if (value !== undefined && value !== '') raw[s.key] = value;
  }
  Object.assign(raw, overrides);

  const read: Partial<Record<keyof Config, unknown>> = {};
  for (const s of SETTINGS) read[s.key] = readSetting(s, raw[s.key], problems, read as Partial<Config>);
  const config = read as Config;

  if (config.redisUrl && !config.databaseUrl && config.oauth) {
    // Instances sharing Redis share sessions and counters, but the durable roles stay in each
    // one's own embedded file: an OAuth client registered on one would be unknown to the others.
    problems.push(
      'TESSERA_REDIS_URL without TESSERA_DATABASE_URL: the OAuth provider keeps clients, codes and grants in PostgreSQL ' +
        '(or in each instance’s own embedded file, which instances sharing Redis cannot share); set TESSERA_DATABASE_URL, ' +
        'or turn the OAuth provider off with TESSERA_OAUTH=false',
    );
  }
  if (!config.secureCookies && /^https:/i.test(config.issuer)) {
    // Without Secure and the __Host- prefix a page on http:// reads the cookies in clear and a
    // sibling host can plant its own; only a plain-http issuer (development) may go without.
    problems.push('TESSERA_SECURE_COOKIES=false with an https issuer: its cookies must be Secure');
  }
  const plainOrigins = config.corsOrigins.filter((origin) => /^http:/i.test(origin));
  if (plainOrigins.length > 0 && /^https:/i.test(config.issuer)) {
    // A listed origin gets credentialed CORS and passes the CSRF Origin check: script a network
    // attacker injects into a plain-http page would act for the user. Loopback is no exception.
    problems.push(
      `TESSERA_CORS_ORIGINS (corsOrigins) may not list plain-http origins with an https issuer (${plainOrigins.join(',')}): ` +
        'script injected into such a page on the network would act for the user; list https origins, ' +
        'loopback ones too (http://localhost only with a plain-http issuer)',
    );
  }
  if (config.sameSite === 'none' && !config.secureCookies) {
    problems.push(
      'TESSERA_SAME_SITE=none needs secure cookies (an https issuer or TESSERA_SECURE_COOKIES=true)',
    );
  }
  if (config.refreshIdleTtl > config.refreshAbsoluteTtl) {
    problems.push('refreshIdleTtl may not exceed refreshAbsoluteTtl');
  }
  if (config.sessionIdleTtl > config.sessionAbsoluteTtl) {
    problems.push('sessionIdleTtl may not exceed sessionAbsoluteTtl');
  }
  if (config.audience === config.issuer) {
    // OAuth access tokens without a resource are for the issuer; first-party ones must differ.
    problems.push('TESSERA_AUDIENCE (audience) may not be the issuer URL');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** The configuration fit to print: every secret setting that is set reads `[redacted]`. */
export function redactedConfig(config: Config): Record<string, unknown> {
  const shown: Record<string, unknown> = { ...config };
  for (const s of SETTINGS)
    if (s.secret && shown[s.key] !== undefined)
      shown[s.key] = s.redact ? s.redact(shown[s.key]) : '[redacted]';
  return shown;
}
