import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  issuer: string;
  audience: string;
  corsOrigins: string[];
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
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

type Source = Record<string, unknown>;

/** What proxy-addr (behind Fastify's trustProxy) accepts: an IP address, a CIDR, or one of its names. */
function isProxyAddress(entry: string): boolean {
  return entry === 'loopback' || entry === 'linklocal' || entry === 'uniquelocal' || isAddressOrCidr(entry);
}

/** A list setting: a JSON array from the file, or comma-separated text; entries trimmed, blanks dropped. */
function entriesOf(v: unknown): string[] {
  return (Array.isArray(v) ? v.map(String) : v === undefined ? [] : String(v).split(','))
    .map((entry) => entry.trim())
    .filter(Boolean);
}

const ENV: Record<string, keyof Config> = {
  TESSERA_PORT: 'port',
  TESSERA_HOST: 'host',
  TESSERA_DATA_DIR: 'dataDir',
  TESSERA_ISSUER: 'issuer',
  TESSERA_AUDIENCE: 'audience',
  TESSERA_CORS_ORIGINS: 'corsOrigins',
  TESSERA_DATABASE_URL: 'databaseUrl',
  TESSERA_REDIS_URL: 'redisUrl',
  TESSERA_DATABASE_SCHEMA: 'databaseSchema',
  TESSERA_REDIS_PREFIX: 'redisPrefix',
  TESSERA_OAUTH: 'oauth',
  TESSERA_SECRET: 'secret',
  TESSERA_DEFAULT_MODE: 'defaultMode',
  TESSERA_ACCESS_TOKEN_TTL: 'accessTokenTtl',
  TESSERA_REFRESH_GRACE_SECONDS: 'refreshGraceSeconds',
  TESSERA_REFRESH_IDLE_TTL: 'refreshIdleTtl',
  TESSERA_REFRESH_ABSOLUTE_TTL: 'refreshAbsoluteTtl',
  TESSERA_SESSION_IDLE_TTL: 'sessionIdleTtl',
  TESSERA_SESSION_ABSOLUTE_TTL: 'sessionAbsoluteTtl',
  TESSERA_KEY_ROTATION_DAYS: 'keyRotationDays',
  TESSERA_SECURE_COOKIES: 'secureCookies',
  TESSERA_SAME_SITE: 'sameSite',
  TESSERA_TRUST_PROXY: 'trustProxy',
  TESSERA_LOG_LEVEL: 'logLevel',
  TESSERA_REGISTER_PER_IP_PER_HOUR: 'registerPerIpPerHour',
  TESSERA_LOGIN_MAX_FAILURES_PER_ACCOUNT: 'loginMaxFailuresPerAccount',
  TESSERA_LOGIN_MAX_FAILURES_PER_IP: 'loginMaxFailuresPerIp',
  TESSERA_OAUTH_KEEP_GRANTS: 'oauthKeepGrants',
  TESSERA_FEED_TOKEN: 'feedToken',
  TESSERA_METRICS_TOKEN: 'metricsToken',
  TESSERA_INTERNAL_ALLOW: 'internalAllow',
  TESSERA_INTERNAL_AUTH: 'internalAuth',
  TESSERA_FEED_MAX_STREAMS_PER_CLIENT: 'feedMaxStreamsPerClient',
};

/**
 * Builds the configuration from, in rising priority: defaults, a JSON file
 * (`TESSERA_CONFIG` or the `file` argument), `TESSERA_*` environment variables, and `overrides`.
 * Every mistake is collected and reported together.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<Config> = {},
  file: string | undefined = env.TESSERA_CONFIG,
): Config {
  const problems: string[] = [];
  const raw: Source = {};
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
  for (const [name, field] of Object.entries(ENV)) {
    const value = env[name];
    if (value !== undefined && value !== '') raw[field] = value;
  }
  Object.assign(raw, overrides);

  const int = (field: keyof Config, def: number, min: number, max: number, envName: string): number => {
    const v = raw[field];
    if (v === undefined) return def;
    const n = typeof v === 'number' ? v : /^-?\d+$/.test(String(v).trim()) ? Number(v) : Number.NaN;
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(
        `${envName} (${field}) must be a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`,
      );
      return def;
    }
    return n;
  };
  const bool = (field: keyof Config, def: boolean, envName: string): boolean => {
    const v = raw[field];
    if (v === undefined) return def;
    if (typeof v === 'boolean') return v;
    if (/^(1|true|yes|on)$/i.test(String(v))) return true;
    if (/^(0|false|no|off)$/i.test(String(v))) return false;
    problems.push(`${envName} (${field}) must be true or false, got ${JSON.stringify(v)}`);
    return def;
  };
  const str = (field: keyof Config, def: string): string => {
    const v = raw[field];
    return v === undefined ? def : String(v);
  };
  const oneOf = <T extends string>(
    field: keyof Config,
    def: T,
    allowed: readonly T[],
    envName: string,
  ): T => {
    const v = raw[field];
    if (v === undefined) return def;
    if ((allowed as readonly unknown[]).includes(v)) return v as T;
    problems.push(`${envName} (${field}) must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
    return def;
  };

  const port = int('port', 4000, 0, 65535, 'TESSERA_PORT');
  const host = str('host', '127.0.0.1');
  const issuer = str('issuer', `http://localhost:${port}`).replace(/\/+$/, '');
  let issuerUrl: URL | undefined;
  try {
    issuerUrl = new URL(issuer);
    if (issuerUrl.protocol !== 'https:' && issuerUrl.protocol !== 'http:') throw new Error('not http(s)');
    if (issuerUrl.search || issuerUrl.hash) throw new Error('no query or fragment allowed');
  } catch (err) {
    problems.push(
      `TESSERA_ISSUER (issuer) must be an http(s) URL without query or fragment: ${(err as Error).message}`,
    );
  }
  const originsRaw = raw.corsOrigins;
  const originList = Array.isArray(originsRaw)
    ? originsRaw.map(String)
    : originsRaw === undefined
      ? issuerUrl
        ? [issuerUrl.origin]
        : []
      : String(originsRaw)
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
  const corsOrigins: string[] = [];
  for (const o of originList) {
    if (o === '*') {
      problems.push('TESSERA_CORS_ORIGINS (corsOrigins) may not be "*": list exact origins');
      continue;
    }
    try {
      const u = new URL(o);
      if (u.origin !== o.replace(/\/$/, '')) throw new Error('an origin has no path');
      corsOrigins.push(u.origin);
    } catch (err) {
      problems.push(
        `TESSERA_CORS_ORIGINS (corsOrigins): ${JSON.stringify(o)} is not an origin (${(err as Error).message})`,
      );
    }
  }
  const url = (
    field: 'databaseUrl' | 'redisUrl',
    envName: string,
    protocols: string[],
  ): string | undefined => {
    const v = raw[field];
    if (v === undefined) return undefined;
    try {
      const u = new URL(String(v));
      if (!protocols.includes(u.protocol)) throw new Error(`expected ${protocols.join(' or ')}`);
    } catch (err) {
      problems.push(`${envName} (${field}) is not a usable URL: ${(err as Error).message}`);
    }
    return String(v);
  };
  const trustProxy = ((): false | string[] => {
    const v = raw.trustProxy;
    const text = String(v).trim();
    if (v === undefined || v === false || v === 0 || /^(0|false|no|off)$/i.test(text)) return false;
    const name = 'TESSERA_TRUST_PROXY (trustProxy)';
    const howTo =
      'name the proxies in front of Tessera by address or CIDR, comma-separated (e.g. 10.0.0.0/8,127.0.0.1), or set false';
    if (v === true || /^(true|yes|on)$/i.test(text)) {
      problems.push(
        `${name} may not be true: any client could pick its own IP with X-Forwarded-For; ${howTo}`,
      );
      return false;
    }
    if (typeof v === 'number' || /^\d+$/.test(text)) {
      problems.push(
        `${name} may not be a hop count: it cannot tell a proxy from a client that connects directly; ${howTo}`,
      );
      return false;
    }
    const list = entriesOf(v);
    const bad = list.filter((entry) => !isProxyAddress(entry));
    if (list.length === 0 || bad.length > 0) {
      problems.push(
        `${name}: ${JSON.stringify(bad.join(',') || text)} is not an IP address or CIDR; ${howTo}`,
      );
      return false;
    }
    return list;
  })();
  const secret = raw.secret === undefined ? undefined : String(raw.secret);
  if (secret !== undefined && secret.length < 32) {
    problems.push('TESSERA_SECRET (secret) must be at least 32 characters');
  }

  const bearerSecret = (field: 'feedToken' | 'metricsToken', envName: string): string | undefined => {
    const v = raw[field];
    if (v === undefined) return undefined;
    const token = String(v);
    if (!/^[\x21-\x7e]{32,512}$/.test(token)) {
      problems.push(`${envName} (${field}) must be 32 to 512 printable ASCII characters without spaces`);
    }
    return token;
  };
  const internalAllow = entriesOf(raw.internalAllow);
  for (const entry of internalAllow) {
    if (!isAddressOrCidr(entry)) {
      problems.push(`TESSERA_INTERNAL_ALLOW (internalAllow): ${JSON.stringify(entry)} is not an IP or CIDR`);
    }
  }

  const config: Config = {
    port,
    host,
    dataDir: path.resolve(str('dataDir', './data')),
    issuer,
    audience: str('audience', 'tessera'),
    corsOrigins,
    databaseUrl: url('databaseUrl', 'TESSERA_DATABASE_URL', ['postgres:', 'postgresql:']),
    redisUrl: url('redisUrl', 'TESSERA_REDIS_URL', ['redis:', 'rediss:']),
    databaseSchema: str('databaseSchema', 'public'),
    redisPrefix: str('redisPrefix', 'tessera:'),
    oauth: bool('oauth', true, 'TESSERA_OAUTH'),
    secret,
    defaultMode: oneOf('defaultMode', 'token', ['session', 'token'], 'TESSERA_DEFAULT_MODE'),
    accessTokenTtl: int('accessTokenTtl', 300, 10, 86_400, 'TESSERA_ACCESS_TOKEN_TTL'),
    refreshGraceSeconds: int('refreshGraceSeconds', 10, 0, 300, 'TESSERA_REFRESH_GRACE_SECONDS'),
    refreshIdleTtl: int('refreshIdleTtl', 7 * 86_400, 60, 365 * 86_400, 'TESSERA_REFRESH_IDLE_TTL'),
    refreshAbsoluteTtl: int(
      'refreshAbsoluteTtl',
      30 * 86_400,
      60,
      365 * 86_400,
      'TESSERA_REFRESH_ABSOLUTE_TTL',
    ),
    sessionIdleTtl: int('sessionIdleTtl', 30 * 60, 60, 30 * 86_400, 'TESSERA_SESSION_IDLE_TTL'),
    sessionAbsoluteTtl: int(
      'sessionAbsoluteTtl',
      12 * 3600,
      60,
      365 * 86_400,
      'TESSERA_SESSION_ABSOLUTE_TTL',
    ),
    sessionTouchInterval: int('sessionTouchInterval', 60, 0, 3600, 'sessionTouchInterval'),
    keyRotationDays: int('keyRotationDays', 30, 1, 3650, 'TESSERA_KEY_ROTATION_DAYS'),
    secureCookies: bool('secureCookies', issuerUrl?.protocol === 'https:', 'TESSERA_SECURE_COOKIES'),
    sameSite: oneOf('sameSite', 'lax', ['lax', 'strict', 'none'], 'TESSERA_SAME_SITE'),
    trustProxy,
    logLevel: oneOf(
      'logLevel',
      'info',
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      'TESSERA_LOG_LEVEL',
    ),
    loginMaxFailuresPerAccount: int(
      'loginMaxFailuresPerAccount',
      5,
      1,
      1_000_000,
      'TESSERA_LOGIN_MAX_FAILURES_PER_ACCOUNT',
    ),
    loginMaxFailuresPerIp: int(
      'loginMaxFailuresPerIp',
      50,
      1,
      1_000_000,
      'TESSERA_LOGIN_MAX_FAILURES_PER_IP',
    ),
    registerPerIpPerHour: int('registerPerIpPerHour', 20, 1, 1_000_000, 'TESSERA_REGISTER_PER_IP_PER_HOUR'),
    bodyLimitBytes: int('bodyLimitBytes', 16 * 1024, 1024, 1024 * 1024, 'bodyLimitBytes'),
    oauthKeepGrants: bool('oauthKeepGrants', false, 'TESSERA_OAUTH_KEEP_GRANTS'),
    feedToken: bearerSecret('feedToken', 'TESSERA_FEED_TOKEN'),
    metricsToken: bearerSecret('metricsToken', 'TESSERA_METRICS_TOKEN'),
    internalAllow,
    internalAuth: bool('internalAuth', issuerUrl?.protocol === 'https:', 'TESSERA_INTERNAL_AUTH'),
    feedMaxStreamsPerClient: int(
      'feedMaxStreamsPerClient',
      16,
      1,
      100_000,
      'TESSERA_FEED_MAX_STREAMS_PER_CLIENT',
    ),
  };
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(config.databaseSchema)) {
    problems.push('TESSERA_DATABASE_SCHEMA (databaseSchema) must be lower-case letters, digits and _');
  }
  if (!/^[A-Za-z0-9:_.-]{1,64}$/.test(config.redisPrefix)) {
    problems.push('TESSERA_REDIS_PREFIX (redisPrefix) must be 1 to 64 of A-Z a-z 0-9 : _ . -');
  }
  if (config.redisUrl && !config.databaseUrl && config.oauth) {
    // Accounts in Redis are shared by every instance; OAuth state would stay in each one's own
    // oauth.sqlite, so a client or grant made on one instance would be unknown to the others.
    problems.push(
      'TESSERA_REDIS_URL without TESSERA_DATABASE_URL: the OAuth provider keeps clients, codes and grants in PostgreSQL ' +
        '(or a per-instance SQLite file, which instances sharing Redis cannot share); set TESSERA_DATABASE_URL, ' +
        'or turn the OAuth provider off with TESSERA_OAUTH=false',
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

/** `a.b.c.d`, an IPv6 address, or either with a `/prefix` in range. */
export function isAddressOrCidr(entry: string): boolean {
  const [address = '', prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}
