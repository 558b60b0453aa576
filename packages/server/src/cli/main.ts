import { parseArgs } from 'node:util';
import { VerifyError } from '@tessera/verify';
import { ConfigError, loadConfig } from '../config.js';
import { TesseraError } from '../errors.js';
import { startServer } from '../server.js';
import type { AuditType } from '../store/types.js';
import { createTessera } from '../tessera.js';

const HELP: Record<string, string> = {
  main: `tessera — session and token authentication server

Usage: tessera [command] [options]

Commands:
  serve                      run the account server (default)
  users add <name>           create a user (password on stdin, prompted, or TESSERA_PASSWORD)
  users disable <name>       disable a user and end all of their sessions
  users enable <name>        enable a user again
  users list                 list users
  keys list                  show the signing key ring
  keys rotate                next → current → retired, and a new next
  token inspect [jwt|-]      decode a token (from stdin when not given) and verify it
  clients add|list|remove    OAuth clients (tessera clients --help)
  audit [--user name] [--type t] [--limit n]
                             the security audit trail, newest first

Options:
  --config <file>            JSON config file (also TESSERA_CONFIG)
  -h, --help                 help for any command

Settings come from the config file and TESSERA_* environment variables; see the README.`,
  serve: `Usage: tessera serve [--config file]

Runs the account server on TESSERA_HOST:TESSERA_PORT (default 127.0.0.1:4000) with the
embedded SQLite store in TESSERA_DATA_DIR (default ./data), or PostgreSQL/Redis when
TESSERA_DATABASE_URL / TESSERA_REDIS_URL are set.`,
  users: `Usage:
  tessera users add <username>
  tessera users disable <username>
  tessera users enable <username>
  tessera users list [--limit n] [--offset n]

users add reads the password from TESSERA_PASSWORD, else from standard input (one line; asked
for without echo on a terminal), never from the command line.`,
  keys: `Usage:
  tessera keys list      the key ring: kid, state, created
  tessera keys rotate    publish a new next key; next becomes current, current retires`,
  audit: `Usage: tessera audit [--user <username>] [--type <type>] [--limit <n>] [--json]

Shows the audit trail, newest first: time, event, user, session, IP, user agent, detail.
Types: register, login_ok, login_failed, lockout, refresh_reuse, logout, logout_all,
session_ended, password_change, account_disabled, account_enabled, key_rotation,
oauth_consent, oauth_code_replay, oauth_refresh_reuse, oauth_grant_revoked, oauth_client_added,
oauth_client_removed.`,
  token: `Usage: tessera token inspect [jwt|-]

Decodes the header and claims and checks the signature, issuer, audience and expiry against
the local key ring, like a local jwt.io that never sends your token anywhere. Without a token,
or with -, reads it from stdin (piped, or pasted at the prompt without echo), so that it stays
out of the shell's history and the process list.`,
};

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

// Controls (C0, DEL, C1) and bidirectional overrides: in stored text they could forge columns,
// drive the terminal, or reorder what is shown.
const UNPRINTABLE = /[\p{Cc}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

/** `text` with every control and bidi override written as a `\uXXXX` escape (valid in JSON too). */
export function escapeControls(text: string): string {
  return text.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** TESSERA_PASSWORD, else one line of stdin (see readSecretLine). */
function readPassword(): Promise<string> {
  const fromEnv = process.env.TESSERA_PASSWORD;
  return fromEnv ? Promise.resolve(fromEnv) : readSecretLine('Password: ');
}

/** One line of stdin: piped, or typed without echo on a terminal after `prompt`. */
async function readSecretLine(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    let text = '';
    stdin.setEncoding('utf8');
    for await (const chunk of stdin) text += chunk;
    return text.split(/\r?\n/)[0] ?? '';
  }
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  let typed = '';
  try {
    for await (const chunk of stdin as AsyncIterable<string>) {
      for (const c of chunk) {
        if (c === '\r' || c === '\n' || c === '\u0004') return typed;
        if (c === '\u0003') throw new Error('cancelled');
        if (c === '\u007f' || c === '\b') typed = typed.slice(0, -1);
        else typed += c;
      }
    }
    return typed;
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write('\n');
  }
}

function decodeSegment(segment: string | undefined): unknown {
  try {
    return JSON.parse(Buffer.from(segment ?? '', 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'clients') return (await import('../oauth/cli.js')).clientsCommand(argv.slice(1));
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      config: { type: 'string' },
      password: { type: 'string' },
      limit: { type: 'string' },
      user: { type: 'string' },
      type: { type: 'string' },
      json: { type: 'boolean' },
      offset: { type: 'string' },
    },
  });
  const [command = 'serve', sub, arg] = positionals;
  if (values.help || command === 'help') {
    out(HELP[command === 'help' ? 'main' : command] ?? HELP.main!);
    return 0;
  }
  if (command === 'serve') {
    const server = await startServer({ config: loadConfig(process.env, {}, values.config) });
    const stop = async (signal: string) => {
      server.app.fastify.log.info({ signal }, 'shutting down: finishing in-flight requests');
      await server.close();
      process.exit(0);
    };
    process.once('SIGINT', () => void stop('SIGINT'));
    process.once('SIGTERM', () => void stop('SIGTERM'));
    return -1;
  }
  if (!['users', 'keys', 'token', 'audit'].includes(command)) {
    process.stderr.write(`unknown command: ${command}\n\n${HELP.main}\n`);
    return 2;
  }
  const ctx = await createTessera(loadConfig(process.env, {}, values.config), { http: false });
  try {
    if (command === 'users') {
      switch (sub) {
        case 'add': {
          if (values.password !== undefined) {
            process.stderr.write(
              '--password is not accepted: the command line is visible to other users and kept in shell history.\n' +
                'Pipe the password on standard input, type it when asked, or set TESSERA_PASSWORD.\n',
            );
            return 2;
          }
          if (!arg) {
            process.stderr.write(`${HELP.users}\n`);
            return 2;
          }
          const password = await readPassword();
          if (!password) {
            process.stderr.write(`${HELP.users}\n`);
            return 2;
          }
          const user = await ctx.auth.register(arg, password);
          out(`created user ${user.username} (${user.id})`);
          return 0;
        }
        case 'disable':
        case 'enable': {
          const user = arg
            ? await ctx.stores.users.getUserByUsername(arg.normalize('NFKC').toLowerCase())
            : null;
          if (!user) {
            process.stderr.write(`no such user: ${arg ?? '(none given)'}\n`);
            return 1;
          }
          // Disabling ends the user's OAuth grants too, so enabling again revives none of them.
          await ctx.auth.setDisabled(user.id, sub === 'disable');
          out(`${sub}d ${user.username}`);
          return 0;
        }
        case 'list': {
          const users = await ctx.stores.users.listUsers(
            Number(values.limit ?? 100),
            Number(values.offset ?? 0),
          );
          for (const u of users) {
            out(
              `${u.id}\t${u.username}\t${u.disabled ? 'disabled' : 'active'}\t${new Date(u.createdAt).toISOString()}`,
            );
          }
          return 0;
        }
      }
      process.stderr.write(`${HELP.users}\n`);
      return 2;
    }
    if (command === 'audit') {
      let userId: string | undefined;
      if (values.user) {
        const user = await ctx.stores.users.getUserByUsername(values.user.normalize('NFKC').toLowerCase());
        if (!user) {
          process.stderr.write(`no such user: ${values.user}\n`);
          return 1;
        }
        userId = user.id;
      }
      const limit = Number(values.limit ?? 50);
      if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) {
        process.stderr.write('--limit must be a whole number from 1 to 100000\n');
        return 2;
      }
      const events = await ctx.stores.audit.listAuditEvents({
        userId,
        type: values.type as AuditType | undefined,
        limit,
      });
      for (const e of events) {
        if (values.json) out(escapeControls(JSON.stringify(e)));
        else {
          const cols = [
            new Date(e.at).toISOString(),
            e.type,
            e.userId ?? '-',
            e.sessionId ?? '-',
            e.ip ?? '-',
            e.userAgent ?? '-',
            e.detail ?? '',
          ];
          out(cols.map(escapeControls).join('\t'));
        }
      }
      return 0;
    }
    if (command === 'keys') {
      if (sub === 'list') {
        for (const k of ctx.keys.list()) out(`${k.kid}\t${k.state}\t${new Date(k.createdAt).toISOString()}`);
        return 0;
      }
      if (sub === 'rotate') {
        await ctx.keys.rotate();
        for (const k of ctx.keys.list()) out(`${k.kid}\t${k.state}\t${new Date(k.createdAt).toISOString()}`);
        return 0;
      }
      process.stderr.write(`${HELP.keys}\n`);
      return 2;
    }
    const token =
      sub === 'inspect' && (arg === undefined || arg === '-')
        ? (await readSecretLine('Token: ')).trim()
        : arg;
    if (sub !== 'inspect' || !token) {
      process.stderr.write(`${HELP.token}\n`);
      return 2;
    }
    const [h, p] = token.split('.');
    const header = decodeSegment(h);
    const claims = decodeSegment(p);
    // A token handed over by anyone: what JSON leaves raw (DEL, C1 controls, bidi overrides) is escaped.
    const shown = (v: unknown) => JSON.stringify(v, null, 2).split('\n').map(escapeControls).join('\n');
    out(`header: ${shown(header)}`);
    out(`claims: ${shown(claims)}`);
    if (claims && typeof claims === 'object') {
      const c = claims as Record<string, unknown>;
      for (const k of ['iat', 'exp', 'nbf']) {
        if (typeof c[k] === 'number') out(`${k}: ${new Date((c[k] as number) * 1000).toISOString()}`);
      }
    }
    // The same check /auth routes apply: a first-party access token of these keys.
    let refusal: VerifyError | undefined;
    try {
      await ctx.tokens.verifyFirstParty(token);
    } catch (err) {
      if (!(err instanceof VerifyError)) throw err;
      refusal = err;
    }
    out(
      refusal === undefined
        ? 'verified: signature, issuer, audience and expiry are good'
        : `NOT VALID here: ${refusal.code} (${refusal.message})`,
    );
    return refusal === undefined ? 0 : 1;
  } finally {
    await ctx.close();
  }
}

/**
 * Runs one command as a process: exits with its status (`serve` returns -1 and keeps running),
 * or prints the error in one line and exits 1. Used by `bin/tessera.mjs` and when this file is
 * run directly.
 */
export function run(argv: string[]): void {
  main(argv).then(
    (code) => {
      if (code >= 0) process.exit(code);
    },
    (err: unknown) => {
      if (err instanceof ConfigError) process.stderr.write(`${err.message}\n`);
      else if (err instanceof TesseraError) process.stderr.write(`error: ${err.code}: ${err.message}\n`);
      else process.stderr.write(`error: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}

const isMain =
  process.argv[1] !== undefined &&
  import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/').split('/').pop()!);
if (isMain) run(process.argv.slice(2));
