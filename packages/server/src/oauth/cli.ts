import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { createTessera } from '../tessera.js';
import { ClientRegistrationError } from './clients.js';
import { OAuthError } from './errors.js';
import type { ClientAuthMethod, GrantType } from './types.js';

export const CLIENTS_HELP = `Usage:
  tessera clients add <name> --type public|confidential --redirect-uri <uri> [--redirect-uri <uri> ...]
                      [--scope "openid profile api"] [--grant authorization_code --grant refresh_token ...]
                      [--auth-method client_secret_basic|client_secret_post] [--require-dpop] [--id <client_id>]
                      [--resource <uri> ...]
  tessera clients list
  tessera clients remove <client_id>

Confidential clients get a secret, printed once and stored only as a hash. Redirect URIs are
matched exactly: https, http on 127.0.0.1/[::1]/localhost, or (public clients) a private-use
scheme such as com.example.app:/cb. Default grants: authorization_code and refresh_token.
--resource names an API (RFC 8707) the client may ask tokens for; the token's aud is that URI.
Without one, its access tokens are only good at this server (userinfo, introspection).
Removing a client revokes every grant and token issued to it.`;

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** `tessera clients …`: its own argument parser, so the main command's options stay as they are. */
export async function clientsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      config: { type: 'string' },
      type: { type: 'string' },
      'redirect-uri': { type: 'string', multiple: true },
      scope: { type: 'string' },
      grant: { type: 'string', multiple: true },
      'auth-method': { type: 'string' },
      'require-dpop': { type: 'boolean' },
      resource: { type: 'string', multiple: true },
      id: { type: 'string' },
    },
  });
  const [sub, arg] = positionals;
  if (values.help || sub === undefined || !['add', 'list', 'remove'].includes(sub)) {
    (values.help ? process.stdout : process.stderr).write(`${CLIENTS_HELP}\n`);
    return values.help ? 0 : 2;
  }
  const config = loadConfig(process.env, {}, values.config);
  if (!config.oauth) {
    process.stderr.write('the OAuth provider is off (TESSERA_OAUTH=false): there are no clients to manage\n');
    return 2;
  }
  const tessera = await createTessera(config, { http: false });
  const { service, store: oauthStore } = tessera.oauth!;
  try {
    if (sub === 'list') {
      for (const c of await oauthStore.listClients()) {
        out(
          [
            c.id,
            c.name,
            c.type,
            c.authMethod,
            c.grantTypes.join(','),
            c.scopes.join(' '),
            c.redirectUris.join(' '),
          ].join('\t'),
        );
      }
      return 0;
    }
    if (sub === 'remove') {
      if (!arg) {
        process.stderr.write(`${CLIENTS_HELP}\n`);
        return 2;
      }
      if (!(await service.removeClient(arg))) {
        process.stderr.write(`no such client: ${arg}\n`);
        return 1;
      }
      out(`removed client ${arg}; its grants and tokens are revoked`);
      return 0;
    }
    if (!arg || (values.type !== 'public' && values.type !== 'confidential')) {
      process.stderr.write(`${CLIENTS_HELP}\n`);
      return 2;
    }
    const { client, secret: clientSecret } = await service.addClient({
      id: values.id,
      name: arg,
      type: values.type,
      redirectUris: values['redirect-uri'] ?? [],
      grantTypes: values.grant as GrantType[] | undefined,
      scopes: (values.scope ?? '').split(' ').filter(Boolean),
      authMethod: values['auth-method'] as ClientAuthMethod | undefined,
      requireDpop: values['require-dpop'],
      resources: values.resource,
    });
    out(`client_id: ${client.id}`);
    if (clientSecret !== null) out(`client_secret: ${clientSecret}  (shown once; store it now)`);
    out(`type: ${client.type}, auth: ${client.authMethod}, grants: ${client.grantTypes.join(', ')}`);
    return 0;
  } catch (err) {
    if (err instanceof ClientRegistrationError || err instanceof OAuthError) {
      process.stderr.write(`error: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    await tessera.close();
  }
}
