import type { AuthorizationRequest } from './authorize.js';

const SCOPE_TEXT: Record<string, string> = {
  openid: 'Know who you are (your account id)',
  profile: 'See your username',
  offline_access: 'Keep access while you are not using it',
};

export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"'`]/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' })[c]!,
  );
}

/**
 * The consent and error pages: no scripts at all, one same-origin stylesheet. `form-action`
 * also names the client's redirect origin, because browsers apply it to the redirect that
 * follows the form post (the answer goes to the client).
 */
export function consentCsp(redirectUri: string | undefined): string {
  let target = '';
  if (redirectUri !== undefined) {
    const url = new URL(redirectUri);
    target = url.protocol === 'http:' || url.protocol === 'https:' ? ` ${url.origin}` : ` ${url.protocol}`;
  }
  return `default-src 'none'; style-src 'self'; form-action 'self'${target}; frame-ancestors 'none'; base-uri 'none'`;
}

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)} · Tessera</title>
<link rel="stylesheet" href="/assets/app.css">
</head>
<body>
<main class="card">
${body}
</main>
</body>
</html>
`;
}

export function consentPage(input: {
  request: AuthorizationRequest;
  username: string;
  csrfToken: string;
  missing: string[];
}): string {
  const { request } = input;
  const hidden: [string, string | undefined][] = [
    ['client_id', request.client.id],
    ['redirect_uri', request.redirectUriGiven ? request.redirectUri : undefined],
    ['response_type', 'code'],
    ['scope', request.scope.join(' ')],
    ['state', request.state],
    ['code_challenge', request.codeChallenge],
    ['code_challenge_method', 'S256'],
    ['nonce', request.nonce],
    ['dpop_jkt', request.dpopJkt],
    ['csrf_token', input.csrfToken],
  ];
  const fields = hidden
    .filter((f): f is [string, string] => f[1] !== undefined)
    .map(([k, v]) => `<input type="hidden" name="${k}" value="${escapeHtml(v)}">`)
    .join('\n');
  const scopes = request.scope
    .map((s) => {
      const text = SCOPE_TEXT[s] ?? `Use the “${s}” permission`;
      const isNew = input.missing.includes(s) ? ' <em>(new)</em>' : '';
      return `<li><code>${escapeHtml(s)}</code> — ${escapeHtml(text)}${isNew}</li>`;
    })
    .join('\n');
  const target = new URL(request.redirectUri);
  const where = target.protocol === 'https:' || target.protocol === 'http:' ? target.origin : target.protocol;
  return layout(
    'Allow access?',
    `<h1>Allow <strong>${escapeHtml(request.client.name)}</strong> to use your account?</h1>
<p>You are signed in as <strong>${escapeHtml(input.username)}</strong>.</p>
<p>${escapeHtml(request.client.name)} asks to:</p>
<ul class="scopes">
${scopes}
</ul>
<p>You will be sent back to <code>${escapeHtml(where)}</code>. You can take this access back at any time from your account.</p>
<form method="post" action="/oauth/authorize">
${fields}
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>`,
  );
}

export function errorPage(code: string, description: string): string {
  return layout(
    'Authorization error',
    `<h1>This sign-in link cannot be used</h1>
<p>${escapeHtml(description)}</p>
<p>Error code: <code>${escapeHtml(code)}</code></p>
<p>Go back to the application and try again. If it keeps happening, tell the application's developers.</p>`,
  );
}
