/** The pages as static HTML shells; the script fills in what depends on the user. */

export type PageName =
  | 'signin'
  | 'register'
  | 'account'
  | 'federation-error'
  | 'federation-done'
  | 'forgot-password'
  | 'reset-password'
  | 'verify-email'
  | 'confirm-email'
  | 'change-email';

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function layout(
  page: PageName,
  title: string,
  main: string,
  options: { mode?: string; wide?: boolean; refreshTo?: string } = {},
): string {
  const mode = options.mode ? ` data-mode="${escapeHtml(options.mode)}"` : '';
  const refresh = options.refreshTo
    ? `<meta http-equiv="refresh" content="0; url=${escapeHtml(options.refreshTo)}">\n`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
${refresh}<title>${escapeHtml(title)} · Tessera</title>
<link rel="icon" href="/assets/logo.svg" type="image/svg+xml">
<link rel="stylesheet" href="/assets/app.css">
<script type="module" src="/assets/app.js"></script>
</head>
<body data-page="${page}"${mode}>
<div class="shell${options.wide ? ' shell-wide' : ''}">
<header class="brand"><a href="/" class="brand-link"><img src="/assets/logo.svg" alt="" width="28" height="28"><span>Tessera</span></a></header>
<main class="card">
${main}
</main>
<noscript><p class="footnote">These pages need JavaScript.</p></noscript>
</div>
</body>
</html>
`;
}

/** A configured sign-in provider, as the pages show it. */
export interface PageProvider {
  id: string;
  name: string;
}

/** One button (a link: the start is a plain navigation) per configured provider. */
function providerButtons(
  providers: readonly PageProvider[],
  query: Record<string, string | undefined>,
  label: (name: string) => string,
): string {
  return providers
    .map((p) => {
      const params = new URLSearchParams(
        Object.entries(query).filter((e): e is [string, string] => e[1] !== undefined),
      ).toString();
      const href = `/auth/providers/${encodeURIComponent(p.id)}/start${params ? `?${params}` : ''}`;
      return `<a class="button button-secondary button-block" data-provider="${escapeHtml(p.id)}" href="${escapeHtml(href)}">${escapeHtml(label(p.name))}</a>`;
    })
    .join('\n  ');
}

export function signinPage(
  defaultMode: 'session' | 'token',
  mode?: string,
  providers: readonly PageProvider[] = [],
  next?: string,
): string {
  const checked = (m: string) => (m === defaultMode ? ' checked' : '');
  const federated =
    providers.length === 0
      ? ''
      : `<div id="providers" class="providers" aria-label="Sign in with another account">
  ${providerButtons(providers, { mode: next === undefined ? defaultMode : 'session', next }, (n) => `Sign in with ${n}`)}
</div>
`;
  return layout(
    'signin',
    'Sign in',
    `<h1>Sign in</h1>
<p class="lead">Welcome back. Sign in to manage your account.</p>
<form id="signin-form" method="post" action="/signin">
  <p id="signin-error" class="alert alert-error" role="alert" hidden></p>
  <div class="field">
    <label for="username">Username</label>
    <input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus>
  </div>
  <div class="field">
    <label for="password">Password</label>
    <input id="password" name="password" type="password" autocomplete="current-password" required>
  </div>
  <fieldset class="choice">
    <legend>Stay signed in with</legend>
    <label class="option"><input type="radio" name="mode" id="mode-token" value="token"${checked('token')}>
      <span><strong>Token</strong><small>Short-lived access token in memory, renewed in the background.</small></span></label>
    <label class="option"><input type="radio" name="mode" id="mode-session" value="session"${checked('session')}>
      <span><strong>Session</strong><small>A cookie this server remembers; ends when you sign out.</small></span></label>
  </fieldset>
  <button type="submit" class="button button-primary button-block">Sign in</button>
</form>
${federated}<p class="switch">New here? <a href="/register">Create an account</a> · <a href="/forgot-password">Forgot your password?</a></p>`,
    mode === undefined ? {} : { mode },
  );
}

export function registerPage(): string {
  return layout(
    'register',
    'Create account',
    `<h1>Create an account</h1>
<p class="lead">Pick a username and a password you don't use anywhere else.</p>
<form id="register-form" method="post" action="/register">
  <p id="register-error" class="alert alert-error" role="alert" hidden></p>
  <div class="field">
    <label for="username">Username</label>
    <input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus>
  </div>
  <div class="field">
    <label for="email">Email address</label>
    <input id="email" name="email" type="email" autocomplete="email" autocapitalize="none" spellcheck="false" aria-describedby="email-hint">
    <p id="email-hint" class="hint">For signing in by address and getting back in if you forget the password.</p>
  </div>
  <div class="field">
    <label for="password">Password</label>
    <input id="password" name="password" type="password" autocomplete="new-password" minlength="8" required aria-describedby="password-hint">
    <p id="password-hint" class="hint">At least 8 characters. A few random words make a strong passphrase.</p>
  </div>
  <div class="field">
    <label for="confirm">Confirm password</label>
    <input id="confirm" name="confirm" type="password" autocomplete="new-password" required>
  </div>
  <button type="submit" class="button button-primary button-block">Create account</button>
</form>
<p class="switch">Already have an account? <a href="/signin">Sign in</a></p>`,
  );
}

/** `grants`: list the OAuth apps with access (only when the OAuth provider is on). */
export function accountPage(
  mode?: string,
  options: { grants: boolean; providers?: readonly PageProvider[] } = { grants: true },
): string {
  const providers = options.providers ?? [];
  return layout(
    'account',
    'Your account',
    `<p id="loading" class="loading" role="status">Loading your account…</p>
<p id="account-error" class="alert alert-error" role="alert" hidden></p>
<div id="account" hidden>
  <div class="account-head">
    <div>
      <p class="eyebrow">Signed in as</p>
      <h1 id="username" class="username"></h1>
      <span id="mode" class="badge"></span>
    </div>
    <button id="signout" type="button" class="button button-secondary">Sign out</button>
  </div>

  <section aria-labelledby="sessions-title">
    <div class="section-head">
      <h2 id="sessions-title">Where you're signed in</h2>
      <p id="session-count" class="muted"></p>
    </div>
    <p id="sessions-error" class="alert alert-error" role="alert" hidden></p>
    <ul id="sessions" class="sessions"></ul>
    <div class="danger-zone">
      <p>Lost a device, or signed in somewhere you shouldn't have? End every session, including this one.</p>
      <button id="signout-all" type="button" class="button button-danger">Sign out everywhere</button>
    </div>
  </section>

  ${
    options.grants
      ? `<section aria-labelledby="grants-title">
    <div class="section-head">
      <h2 id="grants-title" tabindex="-1">Apps with access to your account</h2>
      <p id="grant-count" class="muted"></p>
    </div>
    <p id="grants-error" class="alert alert-error" role="alert" hidden></p>
    <ul id="grants" class="sessions" aria-labelledby="grants-title" hidden></ul>
    <p id="grants-empty" class="empty" hidden>No apps have access.</p>
    <p class="hint section-foot">Apps you allow to use your account are listed here. Revoking one signs it out at once; it has to ask you again.</p>
  </section>`
      : ''
  }

${
  providers.length > 0
    ? `<section aria-labelledby="identities-title">
    <div class="section-head">
      <h2 id="identities-title" tabindex="-1">Linked sign-in providers</h2>
    </div>
    <p id="identities-error" class="alert alert-error" role="alert" hidden></p>
    <ul id="identities" class="sessions" aria-labelledby="identities-title" hidden></ul>
    <p id="identities-empty" class="empty" hidden>No provider is linked.</p>
    <div class="providers">
    ${providerButtons(providers, { link: '1' }, (n) => `Link ${n}`)}
    </div>
  </section>

  `
    : ''
}<section aria-labelledby="password-title">
    <h2 id="password-title">Change password</h2>
    <form id="password-form" method="post" action="/account">
      <p id="password-message" class="alert alert-error" role="alert" hidden></p>
      <div class="field">
        <label for="current_password">Current password</label>
        <input id="current_password" name="current_password" type="password" autocomplete="current-password" required>
      </div>
      <div class="field-row">
        <div class="field">
          <label for="new_password">New password</label>
          <input id="new_password" name="new_password" type="password" autocomplete="new-password" minlength="8" required>
        </div>
        <div class="field">
          <label for="confirm_password">Confirm new password</label>
          <input id="confirm_password" name="confirm_password" type="password" autocomplete="new-password" required>
        </div>
      </div>
      <p class="hint">Changing it signs you out on every other device.</p>
      <button type="submit" class="button button-primary">Change password</button>
    </form>
    <p id="email-line" class="hint"><span id="email-address"></span> <span id="email-status" class="badge" hidden></span> · <a id="change-email" href="/change-email">Change your email address</a></p>
    <p id="email-notice" class="alert alert-success" role="status" hidden></p>
    <button id="resend-verification" type="button" class="button button-secondary button-small" hidden>Mail the confirmation link again</button>
  </section>
</div>`,
    { wide: true, ...(mode === undefined ? {} : { mode }) },
  );
}

/**
 * Where a provider sign-in (or link) that succeeded lands when the cookies are SameSite=Strict:
 * a page of this site that moves on to `to` (a local path) by itself, with no script, so that
 * the browser sends the cookies it was just given.
 */
export function federationDonePage(kind: 'signed_in' | 'linked', to: string): string {
  const title = kind === 'linked' ? 'Provider linked' : 'Signed in';
  return layout(
    'federation-done',
    title,
    `<h1>${title}</h1>
<p class="lead">Taking you on…</p>
<p class="switch"><a id="federation-continue" href="${escapeHtml(to)}">Continue</a></p>`,
    { refreshTo: to },
  );
}

/** Where a failed provider sign-in lands: what happened, its stable code, and the way back. */
export function federationErrorPage(code: string, message: string): string {
  return layout(
    'federation-error',
    'Sign-in failed',
    `<h1>Sign-in failed</h1>
<p id="federation-error" class="alert alert-error" role="alert" data-code="${escapeHtml(code)}">${escapeHtml(message)}</p>
<p class="muted">Error code: <code id="federation-error-code">${escapeHtml(code)}</code></p>
<p class="switch"><a href="/signin">Back to sign in</a></p>`,
  );
}

/** One form with an alert region and a submit button: the shape of every email page. */
function formPage(
  page: PageName,
  title: string,
  lead: string,
  fields: string,
  button: string,
  footer = '',
): string {
  return layout(
    page,
    title,
    `<h1>${escapeHtml(title)}</h1>
<p class="lead">${escapeHtml(lead)}</p>
<form id="${page}-form" method="post" action="/${page}">
  <p id="${page}-error" class="alert alert-error" role="alert" hidden></p>
${fields}
  <button type="submit" class="button button-primary button-block">${escapeHtml(button)}</button>
</form>
${footer}`,
  );
}

const EMAIL_FIELD = `  <div class="field">
    <label for="email">Email address</label>
    <input id="email" name="email" type="email" autocomplete="email" autocapitalize="none" spellcheck="false" required autofocus>
  </div>`;

const NEW_PASSWORD_FIELDS = `  <div class="field">
    <label for="password">New password</label>
    <input id="password" name="password" type="password" autocomplete="new-password" minlength="8" required autofocus>
    <p class="hint">At least 8 characters. A few random words make a strong passphrase.</p>
  </div>
  <div class="field">
    <label for="confirm">Confirm password</label>
    <input id="confirm" name="confirm" type="password" autocomplete="new-password" required>
  </div>`;

export function forgotPasswordPage(): string {
  return formPage(
    'forgot-password',
    'Forgot your password?',
    'Enter the verified email address of your account; we will mail you a link to choose a new password.',
    EMAIL_FIELD,
    'Send the link',
    '<p class="switch"><a href="/signin">Back to sign in</a></p>',
  );
}

export function resetPasswordPage(): string {
  return formPage(
    'reset-password',
    'Choose a new password',
    'This signs you out everywhere; sign in again with the new password.',
    NEW_PASSWORD_FIELDS,
    'Set the password',
  );
}

export function verifyEmailPage(): string {
  return formPage(
    'verify-email',
    'Confirm your email address',
    'One click confirms the address this link was mailed to.',
    '',
    'Confirm',
  );
}

export function confirmEmailPage(): string {
  return formPage(
    'confirm-email',
    'Confirm the change of address',
    'This confirms a new address, or undoes a change you did not make (that also signs out every session).',
    '',
    'Confirm',
  );
}

export function changeEmailPage(): string {
  return formPage(
    'change-email',
    'Change your email address',
    'We mail a link to the new address; the change is made when you follow it.',
    EMAIL_FIELD,
    'Send the link',
    '<p class="switch"><a href="/account">Back to your account</a></p>',
  );
}
