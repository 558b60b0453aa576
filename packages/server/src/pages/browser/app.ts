/**
 * The account pages' script (sign in, register, account). Plain DOM, no framework; built by esbuild
 * at build time and served as /assets/app.js, importing the SDK from /assets/sdk.js. Never writes
 * tokens anywhere but the SDK's memory.
 */
import {
  describeError,
  type GrantInfo,
  type IdentityInfo,
  isClientError,
  type Mode,
  providerStartUrl,
  type SessionInfo,
  TesseraClient,
} from '@tessera/client';
import { localPath } from '../../util/next-path.js';
import { deviceName, relativeTime, scopeWords } from './format.js';

const body = document.body;
const serverMode: Mode | undefined =
  body.dataset.mode === 'session' || body.dataset.mode === 'token' ? body.dataset.mode : undefined;

function client(mode: Mode = serverMode ?? 'token'): TesseraClient {
  return new TesseraClient({ issuer: location.origin, mode, delivery: 'cookie' });
}

function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el;
}

function input(form: HTMLFormElement, name: string): HTMLInputElement {
  const el = form.elements.namedItem(name);
  if (!(el instanceof HTMLInputElement)) throw new Error(`missing input ${name}`);
  return el;
}

/** Shows a message in the form's alert region (role=alert, so screen readers announce it). */
function say(id: string, text: string | null, kind: 'error' | 'success' = 'error'): void {
  const el = $(id);
  el.textContent = text ?? '';
  el.className = `alert alert-${kind}`;
  el.hidden = text === null;
}

/** Runs a form action with the button disabled and a busy label; errors go to the alert. */
async function busy(
  button: HTMLButtonElement,
  label: string,
  alertId: string,
  fn: () => Promise<void>,
): Promise<void> {
  const idle = button.textContent;
  button.disabled = true;
  button.textContent = label;
  button.setAttribute('aria-busy', 'true');
  say(alertId, null);
  try {
    await fn();
  } catch (err) {
    say(alertId, describeError(err));
  } finally {
    button.disabled = false;
    button.textContent = idle;
    button.removeAttribute('aria-busy');
  }
}

let leaving = false;
/** Back to sign in, once: a sign-out and the SDK's change event would otherwise both navigate. */
function toSignin(): void {
  if (leaving) return;
  leaving = true;
  location.replace('/signin');
}

function submitButton(form: HTMLFormElement): HTMLButtonElement {
  const b = form.querySelector('button[type="submit"]');
  if (!(b instanceof HTMLButtonElement)) throw new Error('missing submit button');
  return b;
}

/** Where to go after signing in: `?next=` when the one rule (util/next-path.ts) takes it. */
function nextPath(): string | undefined {
  return localPath(new URLSearchParams(location.search).get('next'));
}

async function signinPage(): Promise<void> {
  const next = nextPath();
  // Already signed in (a cookie is present): go straight on.
  if (
    serverMode &&
    (next === undefined || serverMode === 'session') &&
    (await client()
      .restore()
      .catch(() => false))
  )
    return location.replace(next ?? '/account');
  const form = $('signin-form') as HTMLFormElement;
  if (next !== undefined) {
    // Another step (an OAuth authorization) continues on this server: it reads the session cookie.
    input(form, 'mode-session').checked = true;
  }
  const chosenMode = (): Mode => (input(form, 'mode-session').checked ? 'session' : 'token');
  // Only a session continues to `next`: what comes next on this server reads the session cookie.
  const then = (mode: Mode) => (mode === 'session' ? next : undefined);
  // The provider buttons start the mode the radios say, and go on where the form would.
  const providerButtons = () => {
    const mode = chosenMode();
    for (const a of document.querySelectorAll<HTMLAnchorElement>('#providers a[data-provider]')) {
      const url = new URL(
        providerStartUrl(location.origin, a.dataset.provider ?? '', { mode, next: then(mode) }),
      );
      a.href = url.pathname + url.search;
    }
  };
  providerButtons();
  form.addEventListener('change', providerButtons);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const mode = chosenMode();
    void busy(submitButton(form), 'Signing in…', 'signin-error', async () => {
      await client(mode).login(input(form, 'username').value.trim(), input(form, 'password').value);
      location.assign(then(mode) ?? '/account');
    }).then(() => {
      if (!$('signin-error').hidden) input(form, 'password').select();
    });
  });
}

async function registerPage(): Promise<void> {
  const form = $('register-form') as HTMLFormElement;
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const username = input(form, 'username').value.trim();
    const password = input(form, 'password').value;
    if (password !== input(form, 'confirm').value) {
      say('register-error', 'The two passwords do not match.');
      input(form, 'confirm').focus();
      return;
    }
    void busy(submitButton(form), 'Creating account…', 'register-error', async () => {
      const c = client();
      const email = input(form, 'email').value.trim();
      await c.register(username, password, email ? { email } : {});
      await c.login(username, password);
      location.assign('/account');
    });
  });
}

async function accountPage(): Promise<void> {
  const c = client();
  let signedIn = false;
  try {
    signedIn = await c.restore();
  } catch (err) {
    $('loading').textContent = describeError(err);
    return;
  }
  if (!signedIn) return toSignin();
  // Signed out in another tab, or the login ended: back to sign in.
  c.onChange((s) => {
    if (s === null) toSignin();
  });
  const guard = async (alertId: string, fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      if (isClientError(err) && c.session === null) return toSignin();
      say(alertId, describeError(err));
    }
  };

  // The page has no apps section when the server runs without its OAuth provider.
  const grants = document.getElementById('grants') !== null;
  // And no providers section when no sign-in provider is configured.
  const identities = document.getElementById('identities') !== null;
  await guard('account-error', async () => {
    const me = await c.me();
    $('username').textContent = me.user.username;
    $('mode').textContent = me.session.mode === 'token' ? 'Token mode' : 'Session mode';
    $('mode').title =
      me.session.mode === 'token'
        ? 'A short-lived access token in memory, renewed with an HttpOnly refresh cookie'
        : 'A session cookie (HttpOnly) this server remembers';
    // A failure to list the apps (or read the address) shows in its alert; the rest of the page still works.
    await Promise.all([
      renderSessions(c),
      guard('account-error', () => renderEmail(c)),
      grants && guard('grants-error', () => renderGrants(c)),
      identities && guard('identities-error', () => renderIdentities(c)),
    ]);
    $('account').hidden = false;
  });
  // Loaded, or the reason it did not load is in the account alert (outside the hidden block).
  $('loading').hidden = true;

  $('signout').addEventListener('click', () => {
    void guard('account-error', async () => {
      await c.logout();
      toSignin();
    });
  });
  $('resend-verification').addEventListener('click', (event) => {
    void busy(event.currentTarget as HTMLButtonElement, 'Sending…', 'account-error', async () => {
      await c.requestEmailVerification();
      say(
        'email-notice',
        `A new link and code are on their way to ${$('email-address').textContent}.`,
        'success',
      );
    });
  });
  $('signout-all').addEventListener('click', (event) => {
    void busy(event.currentTarget as HTMLButtonElement, 'Signing out…', 'sessions-error', async () => {
      await c.logoutAll();
      toSignin();
    });
  });
  $('sessions').addEventListener('click', (event) => {
    const button = (event.target as Element).closest('button[data-session]');
    if (!(button instanceof HTMLButtonElement)) return;
    const id = button.dataset.session ?? '';
    void busy(button, 'Ending…', 'sessions-error', async () => {
      await c.endSession(id);
      await renderSessions(c);
      say('sessions-error', 'Session ended.', 'success');
    });
  });

  document.getElementById('grants')?.addEventListener('click', (event) => {
    const button = (event.target as Element).closest('button[data-grant]');
    if (!(button instanceof HTMLButtonElement)) return;
    const id = button.dataset.grant ?? '';
    const name = button.dataset.name ?? 'The app';
    const next = button
      .closest('li')
      ?.nextElementSibling?.querySelector('button[data-grant]')
      ?.getAttribute('data-grant');
    void busy(button, 'Revoking…', 'grants-error', async () => {
      try {
        await c.revokeGrant(id);
      } catch (err) {
        // Revoked elsewhere meanwhile: show the list as it is now, and say so.
        if (isClientError(err) && err.code === 'not_found') await renderGrants(c);
        throw err;
      }
      await renderGrants(c);
      say('grants-error', `${name} no longer has access to your account.`, 'success');
      // The button is gone: keep keyboard focus in the list (the next app) or on the section.
      const target = next ? $('grants').querySelector(`button[data-grant="${CSS.escape(next)}"]`) : null;
      (target instanceof HTMLButtonElement ? target : $('grants-title')).focus();
    }).then(() => {
      if (!button.isConnected && document.activeElement === document.body) $('grants-title').focus();
    });
  });

  document.getElementById('identities')?.addEventListener('click', (event) => {
    const button = (event.target as Element).closest('button[data-identity]');
    if (!(button instanceof HTMLButtonElement)) return;
    const id = button.dataset.identity ?? '';
    const name = button.dataset.name ?? 'The provider';
    void busy(button, 'Unlinking…', 'identities-error', async () => {
      await c.unlinkIdentity(id);
      await renderIdentities(c);
      say('identities-error', `${name} is no longer linked.`, 'success');
      $('identities-title').focus();
    });
  });

  const form = $('password-form') as HTMLFormElement;
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = input(form, 'new_password').value;
    if (next !== input(form, 'confirm_password').value) {
      say('password-message', 'The two new passwords do not match.');
      input(form, 'confirm_password').focus();
      return;
    }
    void busy(submitButton(form), 'Changing…', 'password-message', async () => {
      await c.changePassword(input(form, 'current_password').value, next);
      form.reset();
      say('password-message', 'Password changed. Your other sessions were signed out.', 'success');
      await renderSessions(c);
    });
  });
}

async function renderSessions(c: TesseraClient): Promise<void> {
  const list = await c.sessions();
  list.sort((a, b) => Number(b.current) - Number(a.current) || b.lastSeenAt.localeCompare(a.lastSeenAt));
  const ul = $('sessions');
  ul.replaceChildren(...list.map(sessionItem));
  $('session-count').textContent = list.length === 1 ? '1 active session' : `${list.length} active sessions`;
}

/** The address next to the change link, read from the account (the session does not carry it). */
async function renderEmail(c: TesseraClient): Promise<void> {
  const { email, emailVerified } = await c.email();
  $('email-address').textContent = email ?? 'No email address';
  const status = $('email-status');
  status.hidden = email === null;
  status.textContent = emailVerified ? 'Verified' : 'Not verified';
  status.className = emailVerified ? 'badge badge-current' : 'badge';
  $('change-email').textContent = email === null ? 'Add an email address' : 'Change your email address';
  $('resend-verification').hidden = email === null || emailVerified;
}

async function renderGrants(c: TesseraClient): Promise<void> {
  const list = await c.grants();
  list.sort((a, b) => a.clientName.localeCompare(b.clientName) || b.updatedAt.localeCompare(a.updatedAt));
  $('grants').replaceChildren(...list.map(grantItem));
  $('grants').hidden = list.length === 0;
  $('grants-empty').hidden = list.length !== 0;
  $('grant-count').textContent = list.length === 0 ? '' : list.length === 1 ? '1 app' : `${list.length} apps`;
}

async function renderIdentities(c: TesseraClient): Promise<void> {
  const list = await c.identities();
  $('identities').replaceChildren(...list.map(identityItem));
  $('identities').hidden = list.length === 0;
  $('identities-empty').hidden = list.length !== 0;
}

function identityItem(i: IdentityInfo): HTMLLIElement {
  const li = el('li', 'session');
  const info = el('div', 'session-info');
  info.append(
    el('p', 'session-device', i.providerName),
    el('p', 'session-meta', [i.name, i.email].filter(Boolean).join(' · ') || 'Linked'),
  );
  const unlink = el('button', 'button button-secondary button-small', 'Unlink');
  unlink.type = 'button';
  unlink.dataset.identity = i.id;
  unlink.dataset.name = i.providerName;
  unlink.setAttribute('aria-label', `Unlink ${i.providerName}`);
  li.append(info, unlink);
  return li;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function sessionItem(s: SessionInfo): HTMLLIElement {
  const li = el('li', 'session');
  const info = el('div', 'session-info');
  const title = el('p', 'session-device', deviceName(s.userAgent));
  if (s.current) title.append(' ', el('span', 'badge badge-current', 'This device'));
  const meta = el('p', 'session-meta');
  const seen = el('time', '', relativeTime(s.lastSeenAt));
  seen.dateTime = s.lastSeenAt;
  seen.title = new Date(s.lastSeenAt).toLocaleString();
  const since = el('time', '', new Date(s.createdAt).toLocaleDateString(undefined, { dateStyle: 'medium' }));
  since.dateTime = s.createdAt;
  meta.append(`${s.mode === 'token' ? 'Token' : 'Session'} · last seen `, seen, ' · signed in ', since);
  info.append(title, meta);
  li.append(info);
  if (!s.current) {
    const end = el('button', 'button button-secondary button-small', 'End');
    end.type = 'button';
    end.dataset.session = s.id;
    end.setAttribute('aria-label', `End session on ${deviceName(s.userAgent)}`);
    li.append(end);
  }
  return li;
}

function dateOnly(iso: string): HTMLTimeElement {
  const t = el('time', '', new Date(iso).toLocaleDateString(undefined, { dateStyle: 'medium' }));
  t.dateTime = iso;
  t.title = new Date(iso).toLocaleString();
  return t;
}

function grantItem(g: GrantInfo): HTMLLIElement {
  const li = el('li', 'session');
  const info = el('div', 'session-info');
  const title = el('p', 'session-device', g.clientName);
  const scopes = el('ul', 'grant-scopes');
  scopes.setAttribute('aria-label', `What ${g.clientName} may do`);
  for (const s of g.scopes) {
    const words = scopeWords(s);
    const chip = el('li', 'chip', words ?? undefined);
    if (words === null) {
      chip.append(el('code', '', s));
      chip.title = `The “${s}” permission`;
    } else chip.title = s;
    scopes.append(chip);
  }
  const meta = el('p', 'session-meta');
  meta.append('Allowed ', dateOnly(g.createdAt));
  if (g.updatedAt.slice(0, 10) !== g.createdAt.slice(0, 10))
    meta.append(' · changed ', dateOnly(g.updatedAt));
  info.append(title, meta);
  if (g.scopes.length > 0) info.append(scopes);
  const revoke = el('button', 'button button-danger button-small', 'Revoke');
  revoke.type = 'button';
  revoke.dataset.grant = g.id;
  revoke.dataset.name = g.clientName;
  revoke.setAttribute('aria-label', `Revoke access for ${g.clientName}`);
  li.append(info, revoke);
  return li;
}

/** The `?token=` of a mailed link. */
function linkToken(): string {
  return new URLSearchParams(location.search).get('token') ?? '';
}

/** A form of an email page: its action on submit, then the message that replaces it. */
function emailForm(page: string, label: string, action: (form: HTMLFormElement) => Promise<string>): void {
  const form = $(`${page}-form`) as HTMLFormElement;
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void busy(submitButton(form), label, `${page}-error`, async () => {
      const done = await action(form);
      say(`${page}-error`, done, 'success');
      submitButton(form).hidden = true;
      for (const field of form.querySelectorAll('.field')) (field as HTMLElement).hidden = true;
    });
  });
}

async function forgotPasswordPage(): Promise<void> {
  emailForm('forgot-password', 'Sending…', async (form) => {
    await client().forgotPassword(input(form, 'email').value.trim());
    return 'If an account has this verified address, a link is on its way. It works once, for a short time.';
  });
}

async function resetPasswordPage(): Promise<void> {
  const form = $('reset-password-form') as HTMLFormElement;
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const password = input(form, 'password').value;
    if (password !== input(form, 'confirm').value) {
      say('reset-password-error', 'The two passwords do not match.');
      input(form, 'confirm').focus();
      return;
    }
    void busy(submitButton(form), 'Setting…', 'reset-password-error', async () => {
      await client().resetPassword(linkToken(), password);
      location.assign('/signin?reset=1');
    });
  });
}

async function redeemPage(page: 'verify-email' | 'confirm-email'): Promise<void> {
  emailForm(page, 'Confirming…', async () => {
    const { action, user } = await client().verifyEmail(linkToken());
    if (action === 'restored')
      return `${user.email} is the account’s address again, and every session has ended.`;
    return `${user.email} is confirmed as your address.`;
  });
}

async function changeEmailPage(): Promise<void> {
  const c = client();
  if (!(await c.restore().catch(() => false))) return toSignin();
  emailForm('change-email', 'Sending…', async (form) => {
    const email = input(form, 'email').value.trim();
    await c.changeEmail(email);
    return `A link is on its way to ${email}; follow it to make the change.`;
  });
}

const pages: Record<string, () => Promise<void>> = {
  signin: signinPage,
  register: registerPage,
  account: accountPage,
  'forgot-password': forgotPasswordPage,
  'reset-password': resetPasswordPage,
  'verify-email': () => redeemPage('verify-email'),
  'confirm-email': () => redeemPage('confirm-email'),
  'change-email': changeEmailPage,
};
const run = pages[body.dataset.page ?? ''];
if (run) {
  run().catch((err: unknown) => {
    console.error(err);
  });
}
