import { BlockList, isIP } from 'node:net';
import path from 'node:path';
import type { Config } from './config.js';
import { parseProviders, redactProviders } from './federation/providers.js';

/** What a custom parser gets: where to report, how to name the setting, and the settings read before it. */
export interface ParseContext {
  /** `ENV_NAME (key)`, the way every problem names its setting. */
  label: string;
  problems: string[];
  config: Partial<Config>;
}

interface Common {
  key: keyof Config;
  env: string;
  /** The README's words for it. */
  description: string;
  /** The default as the README states it; the default value itself when absent. */
  defaultText?: string;
  /** Never printed: not in problems, logs or the README. */
  secret?: boolean;
  /** With `secret`: what the printed configuration shows instead of `[redacted]` (the value less its secrets). */
  redact?: (value: unknown) => unknown;
}

/** One setting: its name in the config file (`key`) and the environment (`env`), its type, default and limits. */
export type Setting = Common &
  (
    | { type: 'int'; default: number; min: number; max: number }
    | { type: 'bool'; default: boolean | ((config: Partial<Config>) => boolean) }
    | { type: 'enum'; default: string; values: readonly string[] }
    | {
        type: 'string';
        default?: string;
        /** Checked on the value, the default included; `rule` finishes "must be …". */
        pattern?: RegExp;
        rule?: string;
        transform?: (value: string) => string;
      }
    | { type: 'url'; protocols: readonly string[]; parse?: (value: unknown, ctx: ParseContext) => unknown }
    | {
        type: 'list';
        /** A custom reading of the whole list (its default included); without it, the entries as given. */
        parse?: (value: unknown, ctx: ParseContext) => unknown;
        accepts: string;
      }
  );

/** `a.b.c.d`, an IPv6 address, or either with a `/prefix` in range. */
export function isAddressOrCidr(entry: string): boolean {
  const [address = '', prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

const IPV4_MAPPED = new BlockList();
IPV4_MAPPED.addSubnet('::ffff:0:0', 96, 'ipv6');

/** What the problems say of a range too broad (`isTooBroad`); the README's `accepts` says it too. */
const NARROWEST =
  'a range needs at least /8 in IPv4, /7 in IPv6, /104 where it meets the IPv4-mapped ::ffff:0:0/96';

/**
 * An entry `isAddressOrCidr` took that holds every peer or nearly: an IPv4 prefix shorter than /8,
 * an IPv6 one shorter than /7, or an IPv6 range meeting `::ffff:0:0/96` with a prefix shorter than
 * /104 (/8 in IPv4 terms), since IPv4 peers are matched there as `::ffff:a.b.c.d` (proxy-addr does
 * so in ranges inside it, Node's BlockList, behind the internal allow-list, in any that meets it).
 */
function isTooBroad(entry: string): boolean {
  const [address = '', prefix] = entry.split('/');
  if (prefix === undefined) return false;
  const bits = Number(prefix);
  if (isIP(address) === 4) return bits < 8;
  if (bits < 7) return true;
  if (bits >= 104) return false;
  // Two ranges meet when one holds the other: this one holds ::ffff:0:0, or lies inside its /96.
  const range = new BlockList();
  range.addSubnet(address, bits, 'ipv6');
  return range.check('::ffff:0:0', 'ipv6') || IPV4_MAPPED.check(address, 'ipv6');
}

/** What proxy-addr (behind Fastify's trustProxy) accepts: an IP address, a CIDR, or one of its names. */
function isProxyAddress(entry: string): boolean {
  return entry === 'loopback' || entry === 'linklocal' || entry === 'uniquelocal' || isAddressOrCidr(entry);
}

/** A list setting: a JSON array from the file, or comma-separated text; entries trimmed, blanks dropped. */
export function entriesOf(v: unknown): string[] {
  return (Array.isArray(v) ? v.map(String) : v === undefined ? [] : String(v).split(','))
    .map((entry) => entry.trim())
    .filter(Boolean);
}

function issuerUrl(config: Partial<Config>): URL | undefined {
  try {
    return new URL(config.issuer ?? '');
  } catch {
    return undefined;
  }
}

const httpsIssuer = (config: Partial<Config>): boolean => issuerUrl(config)?.protocol === 'https:';

function parseIssuer(v: unknown, { label, problems, config }: ParseContext): string {
  const issuer = (v === undefined ? `http://localhost:${config.port}` : String(v)).replace(/\/+$/, '');
  try {
    const url = new URL(issuer);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('not http(s)');
    if (url.search || url.hash) throw new Error('no query or fragment allowed');
  } catch (err) {
    problems.push(`${label} must be an http(s) URL without query or fragment: ${(err as Error).message}`);
  }
  return issuer;
}

function checkUrl(text: string, protocols: readonly string[], { label, problems }: ParseContext): void {
  try {
    const u = new URL(text);
    if (!protocols.includes(u.protocol)) throw new Error(`expected ${protocols.join(' or ')}`);
  } catch (err) {
    problems.push(`${label} is not a usable URL: ${(err as Error).message}`);
  }
}

/** One Redis URL; with TESSERA_REDIS_CLUSTER, one or more nodes of the cluster, comma-separated. */
function parseRedisUrl(v: unknown, ctx: ParseContext): string | undefined {
  if (v === undefined) return undefined;
  const text = String(v);
  for (const node of ctx.config.redisCluster ? text.split(',') : [text]) {
    checkUrl(node.trim(), ['redis:', 'rediss:'], ctx);
  }
  return text;
}

function parseOrigins(v: unknown, { label, problems, config }: ParseContext): string[] {
  const issuer = issuerUrl(config);
  const list = v === undefined ? (issuer ? [issuer.origin] : []) : entriesOf(v);
  const origins: string[] = [];
  for (const o of list) {
    if (o === '*') {
      problems.push(`${label} may not be "*": list exact origins`);
      continue;
    }
    try {
      const u = new URL(o);
      if (u.origin !== o.replace(/\/$/, '')) throw new Error('an origin has no path');
      origins.push(u.origin);
    } catch (err) {
      problems.push(`${label}: ${JSON.stringify(o)} is not an origin (${(err as Error).message})`);
    }
  }
  return origins;
}

function parseTrustProxy(v: unknown, { label, problems }: ParseContext): false | string[] {
  const text = String(v).trim();
  if (v === undefined || v === false || v === 0 || /^(0|false|no|off)$/i.test(text)) return false;
  const howTo =
    'name the proxies in front of Tessera by address or CIDR, comma-separated (e.g. 10.0.0.0/8,127.0.0.1), or set false';
  if (v === true || /^(true|yes|on)$/i.test(text)) {
    problems.push(
      `${label} may not be true: any client could pick its own IP with X-Forwarded-For; ${howTo}`,
    );
    return false;
  }
  if (typeof v === 'number' || /^\d+$/.test(text)) {
    problems.push(
      `${label} may not be a hop count: it cannot tell a proxy from a client that connects directly; ${howTo}`,
    );
    return false;
  }
  const list = entriesOf(v);
  const bad = list.filter((entry) => !isProxyAddress(entry));
  if (list.length === 0 || bad.length > 0) {
    problems.push(
      `${label}: ${JSON.stringify(bad.join(',') || text)} is not an IP address or CIDR; ${howTo}`,
    );
    return false;
  }
  const everyone = list.filter(isTooBroad);
  if (everyone.length > 0) {
    problems.push(
      `${label} may not name every address, or nearly every one (${everyone.join(',')}): that is true by another name (${NARROWEST}); ${howTo}`,
    );
    return false;
  }
  return list;
}

function parseInternalAllow(v: unknown, { label, problems }: ParseContext): string[] {
  const list = entriesOf(v);
  for (const entry of list) {
    if (!isAddressOrCidr(entry)) problems.push(`${label}: ${JSON.stringify(entry)} is not an IP or CIDR`);
    else if (isTooBroad(entry)) {
      problems.push(
        `${label}: ${JSON.stringify(entry)} names every address, or nearly every one: the feed and /metrics would be open to anyone (${NARROWEST})`,
      );
    }
  }
  return list;
}

const bearer = {
  pattern: /^[\x21-\x7e]{32,512}$/,
  rule: '32 to 512 printable ASCII characters without spaces',
};
const DAY = 86_400;

const TABLE = [
  {
    key: 'port',
    env: 'TESSERA_PORT',
    description: 'listen port',
    type: 'int',
    default: 4000,
    min: 0,
    max: 65535,
  },
  { key: 'host', env: 'TESSERA_HOST', description: 'listen host', type: 'string', default: '127.0.0.1' },
  {
    key: 'dataDir',
    env: 'TESSERA_DATA_DIR',
    description: 'data folder (SQLite files, generated secret; kept owner-only: 0700, files 0600)',
    type: 'string',
    default: './data',
    transform: (dir) => path.resolve(dir),
  },
  {
    key: 'sqliteSync',
    env: 'TESSERA_SQLITE_SYNC',
    description:
      'when the embedded SQLite file reaches the disk: `normal`, a crash of the process loses nothing, a crash of the machine (power, kernel) may undo the last writes, a logout or revoke among them; `full`, every commit is synced first (slower writes: refreshes, logins)',
    type: 'enum',
    default: 'normal',
    values: ['normal', 'full'],
  },
  {
    key: 'issuer',
    env: 'TESSERA_ISSUER',
    description: 'issuer URL (`iss`)',
    defaultText: '`http://localhost:<port>`',
    type: 'url',
    protocols: ['https:', 'http:'],
    parse: parseIssuer,
  },
  {
    key: 'audience',
    env: 'TESSERA_AUDIENCE',
    description: 'first-party access-token audience (`aud`; not the issuer URL)',
    type: 'string',
    default: 'tessera',
  },
  {
    key: 'corsOrigins',
    env: 'TESSERA_CORS_ORIGINS',
    description: 'browser origins (CORS and CSRF), comma-separated',
    defaultText: "the issuer's origin",
    type: 'list',
    accepts: 'origins, not `*`; with an `https` issuer `https` ones only, loopback included',
    parse: parseOrigins,
  },
  {
    key: 'databaseUrl',
    env: 'TESSERA_DATABASE_URL',
    description: 'PostgreSQL',
    defaultText: 'unset: embedded SQLite',
    secret: true,
    type: 'url',
    protocols: ['postgres:', 'postgresql:'],
  },
  {
    key: 'redisCluster',
    env: 'TESSERA_REDIS_CLUSTER',
    description:
      '`TESSERA_REDIS_URL` names nodes of a Redis Cluster (one or more, comma-separated; the rest are discovered)',
    type: 'bool',
    default: false,
  },
  {
    key: 'redisUrl',
    env: 'TESSERA_REDIS_URL',
    description: 'Redis',
    defaultText: 'unset: embedded SQLite',
    secret: true,
    type: 'url',
    protocols: ['redis:', 'rediss:'],
    parse: parseRedisUrl,
  },
  {
    key: 'databaseSchema',
    env: 'TESSERA_DATABASE_SCHEMA',
    description: 'PostgreSQL schema',
    type: 'string',
    default: 'public',
    pattern: /^[a-z_][a-z0-9_]{0,62}$/,
    rule: 'lower-case letters, digits and _',
  },
  {
    key: 'redisPrefix',
    env: 'TESSERA_REDIS_PREFIX',
    description: 'Redis key prefix (and pub/sub channel)',
    type: 'string',
    default: 'tessera:',
    pattern: /^[A-Za-z0-9:_.-]{1,64}$/,
    rule: '1 to 64 of A-Z a-z 0-9 : _ . -',
  },
  {
    key: 'secret',
    env: 'TESSERA_SECRET',
    description: 'secret for keys at rest and HMACs (same on every instance)',
    defaultText: 'generated into the data folder',
    secret: true,
    type: 'string',
    pattern: /^[\s\S]{32,}$/,
    rule: 'at least 32 characters',
  },
  {
    key: 'refreshGraceSeconds',
    env: 'TESSERA_REFRESH_GRACE_SECONDS',
    description: 'refresh grace window, seconds',
    type: 'int',
    default: 10,
    min: 0,
    max: 300,
  },
  {
    key: 'accessTokenTtl',
    env: 'TESSERA_ACCESS_TOKEN_TTL',
    description: 'access-token lifetime, seconds',
    type: 'int',
    default: 300,
    min: 10,
    max: DAY,
  },
  {
    key: 'defaultMode',
    env: 'TESSERA_DEFAULT_MODE',
    description: 'default login mode',
    type: 'enum',
    default: 'token',
    values: ['session', 'token'],
  },
  {
    key: 'refreshIdleTtl',
    env: 'TESSERA_REFRESH_IDLE_TTL',
    description: 'refresh idle lifetime, seconds',
    defaultText: '7 days',
    type: 'int',
    default: 7 * DAY,
    min: 60,
    max: 365 * DAY,
  },
  {
    key: 'refreshAbsoluteTtl',
    env: 'TESSERA_REFRESH_ABSOLUTE_TTL',
    description: 'refresh absolute lifetime, seconds',
    defaultText: '30 days',
    type: 'int',
    default: 30 * DAY,
    min: 60,
    max: 365 * DAY,
  },
  {
    key: 'sessionIdleTtl',
    env: 'TESSERA_SESSION_IDLE_TTL',
    description: 'session idle lifetime, seconds',
    defaultText: '30 min',
    type: 'int',
    default: 30 * 60,
    min: 60,
    max: 30 * DAY,
  },
  {
    key: 'sessionAbsoluteTtl',
    env: 'TESSERA_SESSION_ABSOLUTE_TTL',
    description: 'session absolute lifetime, seconds',
    defaultText: '12 h',
    type: 'int',
    default: 12 * 3600,
    min: 60,
    max: 365 * DAY,
  },
  {
    key: 'sessionTouchInterval',
    env: 'TESSERA_SESSION_TOUCH_INTERVAL',
    description: "a session's sliding expiry is written back at most this often, seconds",
    type: 'int',
    default: 60,
    min: 0,
    max: 3600,
  },
  {
    key: 'sessionCacheMs',
    env: 'TESSERA_SESSION_CACHE_MS',
    description:
      'an instance answers from its own copy of a live session for this long before it reads the store again, ms; ending a session waits as long before it answers, so no instance serves it after (every instance and `tessera` command must use the same value; 0: no copy, no wait)',
    type: 'int',
    default: 100,
    min: 0,
    max: 5000,
  },
  {
    key: 'keyRotationDays',
    env: 'TESSERA_KEY_ROTATION_DAYS',
    description: 'signing-key rotation, days',
    type: 'int',
    default: 30,
    min: 1,
    max: 3650,
  },
  {
    key: 'secureCookies',
    env: 'TESSERA_SECURE_COOKIES',
    description: '`Secure` + `__Host-` cookies',
    defaultText: 'on when the issuer is `https`',
    type: 'bool',
    default: httpsIssuer,
  },
  {
    key: 'sameSite',
    env: 'TESSERA_SAME_SITE',
    description: 'cookie `SameSite`',
    type: 'enum',
    default: 'lax',
    values: ['lax', 'strict', 'none'],
  },
  {
    key: 'trustProxy',
    env: 'TESSERA_TRUST_PROXY',
    description:
      'proxies whose `X-Forwarded-*` count: their addresses / CIDRs, comma-separated (not `true`, not a hop count: the client IP is what the nearest named proxy saw)',
    defaultText: '`false`',
    type: 'list',
    accepts:
      'IPs, CIDRs (at least /8 in IPv4, /7 in IPv6, /104 where it meets the IPv4-mapped `::ffff:0:0/96`), `loopback`, `linklocal`, `uniquelocal`, or `false`',
    parse: parseTrustProxy,
  },
  {
    key: 'registerPerIpPerHour',
    env: 'TESSERA_REGISTER_PER_IP_PER_HOUR',
    description: 'registrations per IP per hour',
    type: 'int',
    default: 20,
    min: 1,
    max: 1_000_000,
  },
  {
    key: 'loginMaxFailuresPerAccount',
    env: 'TESSERA_LOGIN_MAX_FAILURES_PER_ACCOUNT',
    description: 'failed logins before lockout, per account (15 min window)',
    type: 'int',
    default: 5,
    min: 1,
    max: 1_000_000,
  },
  {
    key: 'loginMaxFailuresPerIp',
    env: 'TESSERA_LOGIN_MAX_FAILURES_PER_IP',
    description: 'failed logins before lockout, per IP (15 min window)',
    type: 'int',
    default: 50,
    min: 1,
    max: 1_000_000,
  },
  {
    key: 'bodyLimitBytes',
    env: 'TESSERA_BODY_LIMIT_BYTES',
    description: 'largest request body, bytes',
    type: 'int',
    default: 16 * 1024,
    min: 1024,
    max: 1024 * 1024,
  },
  {
    key: 'oauth',
    env: 'TESSERA_OAUTH',
    description: 'OAuth 2 / OpenID Connect provider (`false`: none; required with Redis alone)',
    type: 'bool',
    default: true,
  },
  {
    key: 'adminToken',
    env: 'TESSERA_ADMIN_TOKEN',
    description: 'OAuth admin API bearer token',
    defaultText: 'unset: no admin API',
    secret: true,
    type: 'string',
    ...bearer,
  },
  {
    key: 'oauthKeepGrants',
    env: 'TESSERA_OAUTH_KEEP_GRANTS',
    description: 'OAuth grants survive "sign out everywhere" and password changes (never a disabled account)',
    type: 'bool',
    default: false,
  },
  {
    key: 'feedToken',
    env: 'TESSERA_FEED_TOKEN',
    description: 'revocation feed bearer secret',
    defaultText: 'unset',
    secret: true,
    type: 'string',
    ...bearer,
  },
  {
    key: 'metricsToken',
    env: 'TESSERA_METRICS_TOKEN',
    description: '`/metrics` bearer secret',
    defaultText: 'unset',
    secret: true,
    type: 'string',
    ...bearer,
  },
  {
    key: 'internalAllow',
    env: 'TESSERA_INTERNAL_ALLOW',
    description: 'IPs and CIDRs that read the feed and `/metrics` without a token, comma-separated',
    defaultText: 'none',
    type: 'list',
    accepts:
      'IPs and CIDRs (at least /8 in IPv4, /7 in IPv6, /104 where it meets the IPv4-mapped `::ffff:0:0/96`)',
    parse: parseInternalAllow,
  },
  {
    key: 'internalAuth',
    env: 'TESSERA_INTERNAL_AUTH',
    description: 'feed and `/metrics` refuse anonymous readers',
    defaultText: 'on when the issuer is `https`',
    type: 'bool',
    default: httpsIssuer,
  },
  {
    key: 'feedMaxStreamsPerClient',
    env: 'TESSERA_FEED_MAX_STREAMS_PER_CLIENT',
    description: 'open revocation streams per client IP',
    type: 'int',
    default: 16,
    min: 1,
    max: 100_000,
  },
  {
    key: 'providers',
    env: 'TESSERA_PROVIDERS',
    description:
      'upstream sign-in providers, a JSON array: `{id, issuer, client_id, client_secret, scopes?, name?}` for OpenID Connect, or `{type: "oauth2", id, client_id, client_secret, authorization_endpoint, token_endpoint, userinfo_endpoint, mapping: {subject, email?, name?}}` (see docs/operations.md)',
    defaultText: 'none',
    secret: true,
    redact: redactProviders,
    type: 'list',
    accepts: 'JSON array of providers (https, or http on a loopback address)',
    parse: parseProviders,
  },
  {
    key: 'smtpUrl',
    env: 'TESSERA_SMTP_URL',
    description: 'SMTP server for mail (`smtp://user:pass@host:port`; `smtps://` for TLS from the start)',
    defaultText:
      'unset: mails go to `outbox/` in the data folder (with an http issuer their links also to the log)',
    secret: true,
    type: 'url',
    protocols: ['smtp:', 'smtps:'],
  },
  {
    key: 'mailFrom',
    env: 'TESSERA_MAIL_FROM',
    description: 'the From of every mail',
    type: 'string',
    default: 'Tessera <no-reply@localhost>',
    pattern: /^(?:[^\r\n<>@]{0,100}<[^\s<>@]+@[^\s<>@]+>|[^\s<>@]+@[^\s<>@]+)$/,
    rule: 'an address, optionally with a name: `Name <address>`',
  },
  {
    key: 'productName',
    env: 'TESSERA_PRODUCT_NAME',
    description: 'the product name in mails and pages',
    type: 'string',
    default: 'Tessera',
    // Line breaks and angle brackets become spaces: the name goes into subjects and HTML.
    transform: (name) =>
      name
        .replace(/[\r\n<>]+/g, ' ')
        .trim()
        .slice(0, 80) || 'Tessera',
  },
  {
    key: 'emailRequired',
    env: 'TESSERA_EMAIL_REQUIRED',
    description: 'registration needs an email address',
    type: 'bool',
    default: false,
  },
  {
    key: 'emailRequireVerified',
    env: 'TESSERA_EMAIL_REQUIRE_VERIFIED',
    description: 'sign-in needs a verified email address',
    type: 'bool',
    default: false,
  },
  {
    key: 'emailTokenTtl',
    env: 'TESSERA_EMAIL_TOKEN_TTL',
    description: 'verification and email-change links (and codes) live this long, seconds',
    type: 'int',
    default: DAY,
    min: 60,
    max: 7 * DAY,
  },
  {
    key: 'passwordResetTtl',
    env: 'TESSERA_PASSWORD_RESET_TTL',
    description: 'password reset links live this long, seconds',
    type: 'int',
    default: 30 * 60,
    min: 60,
    max: DAY,
  },
  {
    key: 'passwordResetPerAddressPerHour',
    env: 'TESSERA_PASSWORD_RESET_PER_ADDRESS_PER_HOUR',
    description: 'password reset requests per email address per hour',
    type: 'int',
    default: 5,
    min: 1,
    max: 1_000_000,
  },
  {
    key: 'passwordResetPerIpPerHour',
    env: 'TESSERA_PASSWORD_RESET_PER_IP_PER_HOUR',
    description: 'password reset requests per client address per hour',
    type: 'int',
    default: 20,
    min: 1,
    max: 1_000_000,
  },
  {
    key: 'mailRetrySeconds',
    env: 'TESSERA_MAIL_RETRY_SECONDS',
    description: 'first wait before a mail that failed is sent again, seconds (doubling, at most an hour)',
    type: 'int',
    default: 30,
    min: 1,
    max: 3600,
  },
  {
    key: 'logLevel',
    env: 'TESSERA_LOG_LEVEL',
    description: 'log level',
    type: 'enum',
    default: 'info',
    values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
  },
] as const satisfies readonly Setting[];

/** Config fields without a setting: none, or this line stops compiling. */
const everyFieldHasASetting: Exclude<keyof Config, (typeof TABLE)[number]['key']> extends never
  ? true
  : never = true;
void everyFieldHasASetting;

/**
 * Every setting, in the order they are read (a default may depend on one above it) and the
 * README lists them.
 */
export const SETTINGS: readonly Setting[] = TABLE;

/** Reads one setting's raw value (undefined: not given), reporting what is wrong with it. */
export function readSetting(s: Setting, v: unknown, problems: string[], config: Partial<Config>): unknown {
  const label = `${s.env} (${s.key})`;
  const got = () => JSON.stringify(v);
  switch (s.type) {
    case 'int': {
      if (v === undefined) return s.default;
      const n = typeof v === 'number' ? v : /^-?\d+$/.test(String(v).trim()) ? Number(v) : Number.NaN;
      if (Number.isInteger(n) && n >= s.min && n <= s.max) return n;
      problems.push(`${label} must be a whole number from ${s.min} to ${s.max}, got ${got()}`);
      return s.default;
    }
    case 'bool': {
      const def = typeof s.default === 'function' ? s.default(config) : s.default;
      if (v === undefined) return def;
      if (typeof v === 'boolean') return v;
      if (/^(1|true|yes|on)$/i.test(String(v))) return true;
      if (/^(0|false|no|off)$/i.test(String(v))) return false;
      problems.push(`${label} must be true or false, got ${got()}`);
      return def;
    }
    case 'enum':
      if (v === undefined) return s.default;
      if (s.values.includes(v as string)) return v;
      problems.push(`${label} must be one of ${s.values.join(', ')}, got ${got()}`);
      return s.default;
    case 'string': {
      const text = v === undefined ? s.default : String(v);
      if (text === undefined) return undefined;
      if (s.pattern && !s.pattern.test(text)) problems.push(`${label} must be ${s.rule}`);
      return s.transform ? s.transform(text) : text;
    }
    case 'url': {
      if (s.parse) return s.parse(v, { label, problems, config });
      if (v === undefined) return undefined;
      checkUrl(String(v), s.protocols, { label, problems, config });
      return String(v);
    }
    case 'list': {
      if (s.parse) return s.parse(v, { label, problems, config });
      return entriesOf(v);
    }
  }
}

/** The values a setting accepts, as the README states them. */
export function acceptedValues(s: Setting): string {
  switch (s.type) {
    case 'int':
      return `${s.min.toLocaleString('en-US')} to ${s.max.toLocaleString('en-US')}`;
    case 'bool':
      return '`true` / `false`';
    case 'enum':
      return s.values.map((v) => `\`${v}\``).join(', ');
    case 'string':
      return s.rule ?? 'text';
    case 'url':
      return `${s.protocols.map((p) => `\`${p}\``).join(' or ')} URL`;
    case 'list':
      return s.accepts;
  }
}

/** The default, as the README states it. */
export function defaultText(s: Setting): string {
  if (s.defaultText !== undefined) return s.defaultText;
  if ('default' in s && s.default !== undefined && typeof s.default !== 'function') return `\`${s.default}\``;
  return 'unset';
}
