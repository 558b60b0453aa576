// The settings table: every environment variable is read, bad values are refused the one way,
// secrets never show, and the README's table is the one the table generates.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { README, withSettingsTable } from '../scripts/settings-table.js';
import { type Config, loadConfig, redactedConfig } from '../src/config.js';
import { SETTINGS } from '../src/settings.js';
import { call, configProblems, startTestServer } from './helpers.js';

const TOKEN = 'a-bearer-token-of-enough-length-0123456789';

/** A value other than the default for every variable, and what the config then holds. */
const SAMPLES: Record<string, [string, unknown]> = {
  TESSERA_PORT: ['4100', 4100],
  TESSERA_HOST: ['0.0.0.0', '0.0.0.0'],
  TESSERA_DATA_DIR: ['/var/lib/tessera', '/var/lib/tessera'],
  TESSERA_ISSUER: ['https://auth.example.test/', 'https://auth.example.test'],
  TESSERA_AUDIENCE: ['api', 'api'],
  TESSERA_CORS_ORIGINS: [
    ' https://a.example , https://b.example/',
    ['https://a.example', 'https://b.example'],
  ],
  TESSERA_DATABASE_URL: ['postgres://db.internal/tessera', 'postgres://db.internal/tessera'],
  TESSERA_REDIS_CLUSTER: ['true', true],
  TESSERA_REDIS_URL: ['redis://cache.internal:6379', 'redis://cache.internal:6379'],
  TESSERA_DATABASE_SCHEMA: ['auth', 'auth'],
  TESSERA_REDIS_PREFIX: ['auth:', 'auth:'],
  TESSERA_SECRET: ['s'.repeat(40), 's'.repeat(40)],
  TESSERA_REFRESH_GRACE_SECONDS: ['30', 30],
  TESSERA_ACCESS_TOKEN_TTL: ['600', 600],
  TESSERA_DEFAULT_MODE: ['session', 'session'],
  TESSERA_REFRESH_IDLE_TTL: ['86400', 86_400],
  TESSERA_REFRESH_ABSOLUTE_TTL: ['172800', 172_800],
  TESSERA_SESSION_IDLE_TTL: ['600', 600],
  TESSERA_SESSION_ABSOLUTE_TTL: ['7200', 7200],
  TESSERA_SESSION_TOUCH_INTERVAL: ['5', 5],
  TESSERA_SESSION_CACHE_MS: ['250', 250],
  TESSERA_KEY_ROTATION_DAYS: ['7', 7],
  TESSERA_SECURE_COOKIES: ['on', true],
  TESSERA_SAME_SITE: ['strict', 'strict'],
  TESSERA_SQLITE_SYNC: ['full', 'full'],
  TESSERA_TRUST_PROXY: ['10.0.0.0/8,loopback', ['10.0.0.0/8', 'loopback']],
  TESSERA_REGISTER_PER_IP_PER_HOUR: ['3', 3],
  TESSERA_LOGIN_MAX_FAILURES_PER_ACCOUNT: ['9', 9],
  TESSERA_LOGIN_MAX_FAILURES_PER_IP: ['99', 99],
  TESSERA_BODY_LIMIT_BYTES: ['2048', 2048],
  TESSERA_OAUTH: ['off', false],
  TESSERA_ADMIN_TOKEN: [TOKEN, TOKEN],
  TESSERA_OAUTH_KEEP_GRANTS: ['true', true],
  TESSERA_FEED_TOKEN: [`feed-${TOKEN}`, `feed-${TOKEN}`],
  TESSERA_METRICS_TOKEN: [`metrics-${TOKEN}`, `metrics-${TOKEN}`],
  TESSERA_INTERNAL_ALLOW: ['10.1.2.3, fd00::/8', ['10.1.2.3', 'fd00::/8']],
  TESSERA_INTERNAL_AUTH: ['yes', true],
  TESSERA_FEED_MAX_STREAMS_PER_CLIENT: ['4', 4],
  TESSERA_PROVIDERS: [
    '[{"id":"corp","issuer":"https://id.example.test/","client_id":"tessera","client_secret":"provider-client-secret-1"}]',
    [
      {
        type: 'oidc',
        id: 'corp',
        name: 'corp',
        issuer: 'https://id.example.test',
        clientId: 'tessera',
        clientSecret: 'provider-client-secret-1',
        scopes: ['openid', 'email', 'profile'],
        scopesGiven: false,
      },
    ],
  ],
  TESSERA_SMTP_URL: [
    'smtp://mailer:hunter2-mail-pass@mail.example.test:587',
    'smtp://mailer:hunter2-mail-pass@mail.example.test:587',
  ],
  TESSERA_MAIL_FROM: ['Acme <no-reply@acme.test>', 'Acme <no-reply@acme.test>'],
  TESSERA_PRODUCT_NAME: ['Acme', 'Acme'],
  TESSERA_EMAIL_REQUIRED: ['true', true],
  TESSERA_EMAIL_REQUIRE_VERIFIED: ['true', true],
  TESSERA_EMAIL_TOKEN_TTL: ['3600', 3600],
  TESSERA_PASSWORD_RESET_TTL: ['600', 600],
  TESSERA_PASSWORD_RESET_PER_ADDRESS_PER_HOUR: ['2', 2],
  TESSERA_PASSWORD_RESET_PER_IP_PER_HOUR: ['7', 7],
  TESSERA_MAIL_RETRY_SECONDS: ['5', 5],
  TESSERA_LOG_LEVEL: ['warn', 'warn'],
};

/** A value each setting refuses, where the type has one. */
const BAD: Record<string, string> = {
  int: '12.5',
  bool: 'maybe',
  enum: 'sometimes',
  url: 'ftp://example.test/x',
  list: '*',
};

/** Ranges that hold every peer or nearly (IPv4 peers are matched as ::ffff:a.b.c.d in IPv6 ranges). */
const TOO_BROAD = [
  '0.0.0.0/0',
  '0.0.0.0/1',
  '128.0.0.0/1',
  '10.0.0.0/7',
  '::/0',
  '2000::/3',
  'fc00::/6',
  '::ffff:0:0/96',
  '::ffff:0.0.0.0/96',
  '::ffff:128.0.0.0/97',
  '::ffff:10.0.0.0/103',
  '::/80',
];
/** The narrowest of each kind that is still taken. */
const NARROW_ENOUGH = [
  '10.0.0.0/8',
  '127.0.0.1',
  'fc00::/7',
  '2001:db8::/32',
  '::1',
  '::ffff:10.0.0.0/104',
  '::ffff:10.0.0.1',
  '64:ff9b::/96',
];

describe('config: the settings table', () => {
  it('names every setting once, by key and by environment variable', () => {
    assert.equal(new Set(SETTINGS.map((s) => s.key)).size, SETTINGS.length);
    assert.equal(new Set(SETTINGS.map((s) => s.env)).size, SETTINGS.length);
    assert.deepEqual(Object.keys(loadConfig({})).sort(), SETTINGS.map((s) => s.key).sort());
    assert.deepEqual(Object.keys(SAMPLES).sort(), SETTINGS.map((s) => s.env).sort(), 'a sample per variable');
  });

  it('reads every environment variable in the table', () => {
    const env = Object.fromEntries(Object.entries(SAMPLES).map(([name, [raw]]) => [name, raw]));
    const config = loadConfig(env);
    for (const s of SETTINGS) {
      assert.deepEqual(config[s.key], SAMPLES[s.env]![1], s.env);
      assert.notDeepEqual(loadConfig({})[s.key], config[s.key], `${s.env} is not its default`);
    }
  });

  it('takes the config file by key, the environment over the file, overrides over both', () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'tessera-config-')), 'config.json');
    writeFileSync(file, JSON.stringify({ port: 4100, audience: 'from-file' }));
    const config = loadConfig({ TESSERA_PORT: '4200', TESSERA_CONFIG: file });
    assert.equal(config.audience, 'from-file');
    assert.equal(config.port, 4200);
    assert.equal(loadConfig({ TESSERA_PORT: '4200' }, { port: 4300 }).port, 4300);
    assert.equal(loadConfig({ TESSERA_PORT: '' }).port, 4000, 'an empty variable is unset');
  });

  it('refuses a bad value of each setting with "ENV (key) …", and never repeats a secret', () => {
    for (const s of SETTINGS) {
      const bad = s.secret
        ? 'short secret'
        : s.type === 'string'
          ? s.pattern
            ? 'Bad Value!'
            : undefined
          : BAD[s.type];
      if (bad === undefined) continue;
      const problems = configProblems({ [s.env]: bad });
      const mine = problems.filter((p) => p.startsWith(`${s.env} (${s.key})`));
      assert.equal(mine.length, 1, `${s.env}: ${JSON.stringify(problems)}`);
      if (s.secret) assert.ok(!mine[0]!.includes(bad), `${s.env} does not echo the value: ${mine[0]}`);
    }
  });

  it('keeps the messages the range, type and list checks give', () => {
    const expected: [string, string, string][] = [
      ['TESSERA_PORT', '70000', 'TESSERA_PORT (port) must be a whole number from 0 to 65535, got "70000"'],
      ['TESSERA_OAUTH', 'maybe', 'TESSERA_OAUTH (oauth) must be true or false, got "maybe"'],
      [
        'TESSERA_SAME_SITE',
        'loose',
        'TESSERA_SAME_SITE (sameSite) must be one of lax, strict, none, got "loose"',
      ],
      [
        'TESSERA_INTERNAL_ALLOW',
        '10.0.0.1,nope',
        'TESSERA_INTERNAL_ALLOW (internalAllow): "nope" is not an IP or CIDR',
      ],
      ['TESSERA_SECRET', 'x', 'TESSERA_SECRET (secret) must be at least 32 characters'],
      [
        'TESSERA_ADMIN_TOKEN',
        'short',
        'TESSERA_ADMIN_TOKEN (adminToken) must be 32 to 512 printable ASCII characters without spaces',
      ],
    ];
    for (const [name, value, message] of expected)
      assert.deepEqual(configProblems({ [name]: value }), [message]);
  });

  it('refuses cookies without Secure on an https issuer, and a trusted proxy range of every address', () => {
    const https = { TESSERA_ISSUER: 'https://auth.example.test' };
    assert.deepEqual(configProblems({ ...https, TESSERA_SECURE_COOKIES: 'false' }), [
      'TESSERA_SECURE_COOKIES=false with an https issuer: its cookies must be Secure',
    ]);
    assert.deepEqual(configProblems(https), [], 'Secure by default there');
    assert.deepEqual(
      configProblems({ TESSERA_SECURE_COOKIES: 'false' }),
      [],
      'a plain-http issuer may go without',
    );
    for (const everyone of ['0.0.0.0/0', '::/0', '10.0.0.1,0.0.0.0/00']) {
      const problems = configProblems({ TESSERA_TRUST_PROXY: everyone });
      assert.equal(problems.length, 1, everyone);
      assert.match(problems[0]!, /^TESSERA_TRUST_PROXY \(trustProxy\) may not name every address/);
    }
    assert.deepEqual(configProblems({ TESSERA_TRUST_PROXY: '10.0.0.0/8,::1' }), []);
  });

  it('refuses plain-http browser origins with an https issuer, loopback ones too', () => {
    const https = { TESSERA_ISSUER: 'https://auth.example.test' };
    assert.deepEqual(configProblems({ ...https, TESSERA_CORS_ORIGINS: 'http://app.example.test' }), [
      'TESSERA_CORS_ORIGINS (corsOrigins) may not list plain-http origins with an https issuer (http://app.example.test): ' +
        'script injected into such a page on the network would act for the user; list https origins, ' +
        'loopback ones too (http://localhost only with a plain-http issuer)',
    ]);
    const mixed = configProblems({
      ...https,
      TESSERA_CORS_ORIGINS: 'https://app.example.test,http://localhost:5173,http://127.0.0.1:8080',
    });
    assert.equal(mixed.length, 1, JSON.stringify(mixed));
    assert.match(
      mixed[0]!,
      /^TESSERA_CORS_ORIGINS \(corsOrigins\) .*\(http:\/\/localhost:5173,http:\/\/127\.0\.0\.1:8080\)/,
    );
    assert.deepEqual(configProblems({ ...https, TESSERA_CORS_ORIGINS: 'https://app.example.test' }), []);
    for (const origin of ['http://app.example.test', 'http://localhost:5173']) {
      assert.deepEqual(
        configProblems({ TESSERA_CORS_ORIGINS: origin }),
        [],
        `${origin}: a plain-http issuer may`,
      );
    }
  });

  it('refuses a trusted proxy range of nearly every address, IPv4-mapped ranges included', () => {
    for (const broad of TOO_BROAD) {
      const problems = configProblems({ TESSERA_TRUST_PROXY: `10.0.0.1,${broad}` });
      assert.deepEqual(
        problems,
        [
          `TESSERA_TRUST_PROXY (trustProxy) may not name every address, or nearly every one (${broad}): that is true by another name ` +
            '(a range needs at least /8 in IPv4, /7 in IPv6, /104 where it meets the IPv4-mapped ::ffff:0:0/96); ' +
            'name the proxies in front of Tessera by address or CIDR, comma-separated (e.g. 10.0.0.0/8,127.0.0.1), or set false',
        ],
        broad,
      );
    }
    for (const narrow of NARROW_ENOUGH) {
      assert.deepEqual(configProblems({ TESSERA_TRUST_PROXY: narrow }), [], narrow);
    }
  });

  it('refuses an internal allow-list range of every address or nearly', () => {
    for (const broad of TOO_BROAD) {
      assert.deepEqual(
        configProblems({ TESSERA_INTERNAL_ALLOW: `10.0.0.1,${broad}` }),
        [
          `TESSERA_INTERNAL_ALLOW (internalAllow): "${broad}" names every address, or nearly every one: ` +
            'the feed and /metrics would be open to anyone ' +
            '(a range needs at least /8 in IPv4, /7 in IPv6, /104 where it meets the IPv4-mapped ::ffff:0:0/96)',
        ],
        broad,
      );
    }
    for (const narrow of NARROW_ENOUGH) {
      assert.deepEqual(configProblems({ TESSERA_INTERNAL_ALLOW: narrow }), [], narrow);
    }
  });

  it('prints the configuration with every set secret redacted', () => {
    const env = Object.fromEntries(Object.entries(SAMPLES).map(([name, [raw]]) => [name, raw]));
    const shown = JSON.stringify(redactedConfig(loadConfig(env)));
    for (const s of SETTINGS.filter((x) => x.secret)) {
      assert.ok(!shown.includes(SAMPLES[s.env]![0]), `${s.env} is not shown`);
    }
    assert.match(shown, /"port":4100/);
    assert.match(shown, /"secret":"\[redacted\]"/);
    assert.equal(redactedConfig(loadConfig({})).secret, undefined, 'an unset secret stays unset');
  });
});

describe('config: the admin token comes only from the configuration', () => {
  const saved = process.env.TESSERA_ADMIN_TOKEN;
  after(() => {
    if (saved === undefined) delete process.env.TESSERA_ADMIN_TOKEN;
    else process.env.TESSERA_ADMIN_TOKEN = saved;
  });

  it('a process variable the configuration did not read opens no admin API', async () => {
    process.env.TESSERA_ADMIN_TOKEN = TOKEN;
    const config: Partial<Config> = {};
    const srv = await startTestServer(config);
    try {
      assert.equal(srv.config.adminToken, undefined);
      const list = await call(srv.url, 'GET', '/oauth/clients', {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(list.status, 404);
    } finally {
      await srv.close();
    }
    const configured = await startTestServer({ adminToken: TOKEN });
    try {
      const list = await call(configured.url, 'GET', '/oauth/clients', {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(list.status, 200);
    } finally {
      await configured.close();
    }
  });
});

describe('README settings table', () => {
  it('is the table SETTINGS generates (npm run docs:settings)', () => {
    const readme = readFileSync(README, 'utf8');
    assert.equal(readme, withSettingsTable(readme));
    for (const s of SETTINGS) assert.ok(readme.includes(`\`${s.env}\``), s.env);
    assert.equal(path.basename(README), 'README.md');
  });
});

describe('redis cluster settings', () => {
  it('takes several comma-separated nodes with TESSERA_REDIS_CLUSTER, one URL without', () => {
    const nodes = 'redis://10.0.0.1:7000,redis://10.0.0.2:7000';
    const env = { TESSERA_DATABASE_URL: 'postgres://db/tessera', TESSERA_REDIS_URL: nodes };
    assert.deepEqual(configProblems({ ...env, TESSERA_REDIS_CLUSTER: 'true' }), []);
    assert.match(configProblems(env).join('\n'), /TESSERA_REDIS_URL \(redisUrl\) is not a usable URL/);
    assert.match(
      configProblems({ ...env, TESSERA_REDIS_CLUSTER: 'true', TESSERA_REDIS_URL: `${nodes},http://x` }).join(
        '\n',
      ),
      /TESSERA_REDIS_URL \(redisUrl\) is not a usable URL: expected redis: or rediss:/,
    );
  });
});

describe('sign-in providers (TESSERA_PROVIDERS)', () => {
  const secret = 'do-not-print-this-client-secret';
  it('refuses bad entries with clear problems that never repeat a client secret', () => {
    const bad = [
      { id: 'Bad Id', issuer: 'http://id.example.test', client_id: 'c', client_secret: secret },
      { id: 'x', issuer: 'https://id.example.test', client_id: 'c', client_secret: secret, extra: secret },
      {
        id: 'gh',
        type: 'oauth2',
        client_id: 'c',
        client_secret: secret,
        authorization_endpoint: 'https://a',
      },
      { id: 'y', issuer: 'https://id.example.test', client_id: 'c' },
    ];
    const problems = configProblems({ TESSERA_PROVIDERS: JSON.stringify(bad) }).join('\n');
    assert.match(problems, /TESSERA_PROVIDERS \(providers\)\[0\]\.id must be/);
    assert.match(problems, /\[0\]\.issuer is not a usable URL: https is required/);
    assert.match(problems, /\[1\]: unknown field "extra"/);
    assert.match(problems, /\[2\]\.token_endpoint must be a non-empty string/);
    assert.match(problems, /\[2\]\.mapping must be an object/);
    assert.match(problems, /\[3\]\.client_secret must be a non-empty string/);
    assert.ok(!problems.includes(secret));
    assert.deepEqual(configProblems({ TESSERA_PROVIDERS: '{"id":1}' }), [
      'TESSERA_PROVIDERS (providers) must be a JSON array of provider objects',
    ]);
  });

  it('takes plain http only on a loopback address, and prints the providers without their secrets', () => {
    const providers = [
      {
        id: 'dev',
        issuer: 'http://127.0.0.1:9000',
        client_id: 'c',
        client_secret: secret,
        scopes: ['email'],
      },
    ];
    const config = loadConfig({ TESSERA_PROVIDERS: JSON.stringify(providers) });
    assert.deepEqual(config.providers[0]?.scopes, ['openid', 'email']);
    const shown = JSON.stringify(redactedConfig(config));
    assert.ok(!shown.includes(secret));
    assert.match(shown, /"issuer":"http:\/\/127\.0\.0\.1:9000"/);
  });
});
