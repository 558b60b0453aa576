/**
 * A demo app on its own origin: signs in to Tessera with the SDK (token mode, refresh token in the
 * account server's HttpOnly cookie) and calls the example API cross-origin with the Bearer token.
 *
 *   TESSERA_CORS_ORIGINS=http://localhost:4002 npm start                 # account server, :4000
 *   CORS_ORIGINS=http://localhost:4002 npm run example:api               # example API, :4001
 *   node --import tsx examples/demo/server.ts                            # this demo, :4002
 *
 * Environment: PORT (4002), HOST (127.0.0.1), TESSERA_ISSUER (http://localhost:4000),
 * API_URL (http://localhost:4001). Use the same host name (localhost) for all three, so the
 * refresh cookie counts as same-site.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { browserOptions } from '../../scripts/build-browser.js';

export interface DemoServerOptions {
  port?: number;
  host?: string;
  /** The account server's URL. */
  issuer: string;
  /** The example API's base URL. */
  apiUrl: string;
}

export interface DemoServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(issuer: string, apiUrl: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="tessera-issuer" content="${escapeHtml(issuer)}">
<meta name="tessera-api" content="${escapeHtml(apiUrl)}">
<title>Demo app · Tessera</title>
<link rel="stylesheet" href="/app.css">
<script type="module" src="/demo.js"></script>
</head>
<body>
<div class="shell">
<header class="brand"><span class="brand-link">Demo app</span></header>
<main class="card">
  <h1>Another origin</h1>
  <p class="lead">This page signs in to <a href="${escapeHtml(issuer)}">${escapeHtml(issuer)}</a> and calls
  <code>${escapeHtml(apiUrl)}/api/hello</code> with a Bearer token. Status: <strong id="status" role="status">…</strong></p>
  <p id="error" class="alert alert-error" role="alert" hidden></p>
  <form id="signed-out" hidden>
    <div class="field"><label for="username">Username</label>
      <input id="username" name="username" type="text" autocomplete="username" required></div>
    <div class="field"><label for="password">Password</label>
      <input id="password" name="password" type="password" autocomplete="current-password" required></div>
    <button type="submit" class="button button-primary button-block">Sign in</button>
  </form>
  <div id="signed-in" hidden>
    <p>Signed in as <strong id="who"></strong>.</p>
    <p class="actions"><button id="call-api" type="button" class="button button-primary">Call the API</button>
    <button id="signout" type="button" class="button button-secondary">Sign out</button></p>
    <pre id="api-result" class="result" aria-live="polite"></pre>
  </div>
</main>
</div>
</body>
</html>
`;
}

const EXTRA_CSS = `
.actions { display: flex; gap: 12px; margin: 16px 0; }
.result { background: #f6f7f9; border: 1px solid var(--border); border-radius: 8px; padding: 12px; min-height: 3em; white-space: pre-wrap; overflow-wrap: anywhere; }
code { font-size: 0.9em; }
`;

export async function startDemoServer(options: DemoServerOptions): Promise<DemoServer> {
  const issuer = new URL(options.issuer).origin;
  const api = new URL(options.apiUrl);
  const apiUrl = api.href.replace(/\/+$/, '');
  const css =
    readFileSync(new URL('../../packages/server/resources/pages/app.css', import.meta.url), 'utf8') +
    EXTRA_CSS;
  const built = await build({
    ...browserOptions(fileURLToPath(new URL('./app.ts', import.meta.url))),
    write: false,
  });
  const script = built.outputFiles[0]!.text;
  const csp = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    `connect-src ${issuer} ${api.origin}`,
    "img-src 'self' data:",
    "frame-ancestors 'none'",
    "form-action 'self'",
    "base-uri 'none'",
  ].join('; ');
  const files: Record<string, { type: string; body: string }> = {
    '/': { type: 'text/html; charset=utf-8', body: page(issuer, apiUrl) },
    '/demo.js': { type: 'text/javascript; charset=utf-8', body: script },
    '/app.css': { type: 'text/css; charset=utf-8', body: css },
  };
  const server = http.createServer((req, res) => {
    const file =
      req.method === 'GET' || req.method === 'HEAD'
        ? files[new URL(req.url ?? '/', 'http://x').pathname]
        : undefined;
    const common = {
      'content-security-policy': csp,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    };
    if (req.url === '/favicon.ico') {
      res.writeHead(204, common).end();
      return;
    }
    if (!file) {
      res.writeHead(404, { ...common, 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res
      .writeHead(200, { ...common, 'content-type': file.type, 'cache-control': 'no-cache' })
      .end(req.method === 'HEAD' ? undefined : file.body);
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 4002, host, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const env = process.env;
  const port = Number(env.PORT ?? 4002);
  const demo = await startDemoServer({
    port,
    host: env.HOST ?? '127.0.0.1',
    issuer: env.TESSERA_ISSUER ?? 'http://localhost:4000',
    apiUrl: env.API_URL ?? 'http://localhost:4001',
  });
  console.log(
    `demo app on http://localhost:${demo.port} (list it in TESSERA_CORS_ORIGINS and the API's CORS_ORIGINS)`,
  );
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => void demo.close().then(() => process.exit(0)));
}
