/**
 * The demo app's browser script: signs in to the account server on another origin in token mode
 * (refresh token in the account server's HttpOnly cookie, access token in memory) and calls the
 * example API with the Bearer token. Bundled with the SDK and served as /demo.js.
 */
import { describeError, TesseraClient } from '../../packages/client/src/index.js';

function meta(name: string): string {
  const value = document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content;
  if (!value) throw new Error(`missing <meta name="${name}">`);
  return value;
}

function $<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el as T;
}

const issuer = meta('tessera-issuer');
const apiUrl = meta('tessera-api');
const client = new TesseraClient({ issuer, mode: 'token', delivery: 'cookie' });

function show(signedIn: boolean, who = ''): void {
  $('signed-out').hidden = signedIn;
  $('signed-in').hidden = !signedIn;
  $('who').textContent = who;
  $('status').textContent = signedIn ? 'Signed in' : 'Signed out';
}

function error(text: string | null): void {
  $('error').textContent = text ?? '';
  $('error').hidden = text === null;
}

async function refreshWho(): Promise<void> {
  const me = await client.me();
  show(true, me.user.username);
}

client.onChange((session) => {
  if (session === null) show(false);
});

$('signed-out').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = event.currentTarget as HTMLFormElement;
  const username = (form.elements.namedItem('username') as HTMLInputElement).value.trim();
  const password = (form.elements.namedItem('password') as HTMLInputElement).value;
  error(null);
  client
    .login(username, password)
    .then(refreshWho)
    .catch((err: unknown) => error(describeError(err)));
});

$('call-api').addEventListener('click', () => {
  error(null);
  client
    .fetch(`${apiUrl}/api/hello`)
    .then(async (res) => {
      $('api-result').textContent =
        `${res.status} ${JSON.stringify(await res.json().catch(() => null), null, 2)}`;
    })
    .catch((err: unknown) => error(describeError(err)));
});

$('signout').addEventListener('click', () => {
  client
    .logout()
    .then(() => show(false))
    .catch((err: unknown) => error(describeError(err)));
});

client
  .restore()
  .then(async (ok) => (ok ? refreshWho() : show(false)))
  .catch((err: unknown) => {
    show(false);
    error(describeError(err));
  })
  .finally(() => {
    document.body.dataset.ready = 'true';
  });
