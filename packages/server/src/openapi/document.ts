import type { FastifySchema } from 'fastify';
import { errorBody, type Schema, type Security } from './schemas.js';

/** One route as Fastify registered it: what the onRoute hook saw. */
export interface RegisteredRoute {
  method: string;
  url: string;
  schema: FastifySchema;
}

export interface DocumentInfo {
  issuer: string;
  version: string;
  cookies: { session: string; refresh: string };
}

/** An OpenAPI 3.1 document, as plain JSON. */
export type OpenApiDocument = Record<string, unknown> & {
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes: Record<string, Schema>; responses: Record<string, Schema> };
};

export interface Operation {
  operationId: string;
  summary?: string;
  description?: string;
  tags?: readonly string[];
  security: Security;
  parameters?: Schema[];
  requestBody?: Schema;
  responses: Record<string, Schema>;
}

/**
 * Which routes the document lists: every one, except the automatic HEAD twin of each GET and the
 * CORS preflight (`OPTIONS *`), which the document's description speaks of instead.
 */
export function isDocumented(route: Pick<RegisteredRoute, 'method' | 'url'>): boolean {
  return route.method !== 'HEAD' && route.method !== 'OPTIONS';
}

/** `/auth/sessions/:id` → `/auth/sessions/{id}`. */
export function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

const TAGS = [
  { name: 'session', description: 'Registering, signing in and out, refreshing tokens.' },
  { name: 'account', description: 'The signed-in user’s own account, sessions and OAuth grants.' },
  { name: 'federation', description: 'Signing in through upstream providers, and the linked identities.' },
  { name: 'email', description: 'Email addresses: verifying, changing, and resetting a forgotten password.' },
  { name: 'feed', description: 'The revocation feed that API servers follow.' },
  { name: 'discovery', description: 'Keys, metadata and this document.' },
  { name: 'oauth', description: 'The OAuth 2 / OpenID Connect provider (unless TESSERA_OAUTH=false).' },
  { name: 'admin', description: 'OAuth client registration, behind TESSERA_ADMIN_TOKEN.' },
  { name: 'operations', description: 'Health, readiness and metrics.' },
  { name: 'pages', description: 'The server’s own web pages and their assets.' },
];

const DESCRIPTION = `Tessera's account server: sessions and tokens side by side, and an OAuth 2 / OpenID Connect provider.

Every error of the account API is \`{"error": "<code>", "message": "…"}\`: switch on \`error\`, show \`message\`. The OAuth endpoints answer in the RFC 6749 shape, \`{"error": "<code>", "error_description": "…"}\`. A \`401\` carries \`WWW-Authenticate\`, a \`429\` \`Retry-After\`.

Request bodies of the account API are JSON (\`Content-Type: application/json\`); the OAuth endpoints take \`application/x-www-form-urlencoded\` forms. Answers that carry credentials are sent with \`Cache-Control: no-store\`.

Every GET also answers HEAD. \`OPTIONS\` on any path is the CORS preflight: allow-listed origins get the allowed methods and headers, others nothing. A path that matches no route answers \`404 not_found\`. Before any route runs, a request can be refused with \`400 invalid_request\` (a request or URL that cannot be parsed), \`408 request_timeout\` and \`431 headers_too_large\`; every operation lists these.`;

const INTERNAL_ACCESS =
  'Readers from TESSERA_INTERNAL_ALLOW need no token. With neither configured the route is open ' +
  'while TESSERA_INTERNAL_AUTH is off (the default for a plain-HTTP issuer) and answers `403 forbidden` ' +
  'otherwise.';

function securitySchemes(info: DocumentInfo): Record<string, Schema> {
  return {
    bearer: {
      type: 'http',
      scheme: 'bearer',
      description: 'A first-party access token (ES256 JWT, `typ: at+jwt`) or a session token (`id.secret`).',
    },
    sessionCookie: {
      type: 'apiKey',
      in: 'cookie',
      name: info.cookies.session,
      description: 'The HttpOnly session cookie of a session-mode login with cookie delivery.',
    },
    refreshCookie: {
      type: 'apiKey',
      in: 'cookie',
      name: info.cookies.refresh,
      description: 'The HttpOnly refresh-token cookie of a token-mode login with cookie delivery.',
    },
    csrfToken: {
      type: 'apiKey',
      in: 'header',
      name: 'X-CSRF-Token',
      description:
        'The CSRF token of the login answer (or `GET /auth/csrf`). Cookie-authenticated writes also need an ' +
        'allow-listed `Origin` (or `Sec-Fetch-Site: same-origin`).',
    },
    oauthBearer: {
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
      description: 'An OAuth access token (RFC 9068) issued by this server.',
    },
    dpop: {
      type: 'http',
      scheme: 'dpop',
      description: 'A DPoP-bound OAuth access token (RFC 9449), with a `DPoP` proof header for the request.',
    },
    clientSecretBasic: {
      type: 'http',
      scheme: 'basic',
      description:
        'OAuth client authentication `client_secret_basic`; `client_secret_post` sends `client_id` and ' +
        '`client_secret` in the form instead, a public client `client_id` alone.',
    },
    adminToken: {
      type: 'http',
      scheme: 'bearer',
      description: 'The operator’s TESSERA_ADMIN_TOKEN.',
    },
    feedToken: {
      type: 'http',
      scheme: 'bearer',
      description: `TESSERA_FEED_TOKEN. ${INTERNAL_ACCESS}`,
    },
    metricsToken: {
      type: 'http',
      scheme: 'bearer',
      description: `TESSERA_METRICS_TOKEN. ${INTERNAL_ACCESS}`,
    },
  };
}

/** What can refuse any request before a route runs. */
const FRAMEWORK_RESPONSES: Record<string, { status: number; schema: Schema }> = {
  MalformedRequest: {
    status: 400,
    schema: { ...errorBody(['invalid_request']), description: 'A request or URL that cannot be parsed.' },
  },
  RequestTimeout: {
    status: 408,
    schema: { ...errorBody(['request_timeout']), description: 'The request took too long to arrive.' },
  },
  HeadersTooLarge: {
    status: 431,
    schema: { ...errorBody(['headers_too_large']), description: 'The request headers are too large.' },
  },
};

function jsonResponse(schema: Schema): Schema {
  return { description: schema.description, content: { 'application/json': { schema } } };
}

/** Headers the error handlers and redirects always send, by status. */
function responseHeaders(status: number): Schema | undefined {
  const header = (description: string) => ({ description, schema: { type: 'string' } });
  if (status === 401) return { 'WWW-Authenticate': header('The scheme and realm, and why (RFC 6750).') };
  if (status === 429) return { 'Retry-After': header('Seconds to wait.') };
  if (status === 302 || status === 303) return { Location: header('Where to go.') };
  return undefined;
}

function response(status: number, schema: Schema): Schema {
  const { description, content, type } = schema as { description?: string; content?: Schema; type?: unknown };
  const out: Schema =
    content !== undefined
      ? { description, content }
      : type === 'null'
        ? { description }
        : jsonResponse(schema);
  const headers = responseHeaders(status);
  return headers ? { ...out, headers } : out;
}

function isTesseraInvalidRequest(schema: unknown): boolean {
  const s = schema as { properties?: { message?: unknown; error?: { enum?: string[] } } } | undefined;
  return s?.properties?.message !== undefined && (s.properties.error?.enum ?? []).includes('invalid_request');
}

/** Adds the pre-routing answers to an operation's own: 400 merges with the route's 400. */
function withFrameworkResponses(responses: Record<string, Schema>): Record<string, Schema> {
  const out = { ...responses };
  for (const [name, { status }] of Object.entries(FRAMEWORK_RESPONSES)) {
    const own = out[status] as
      | { description?: string; content?: Record<string, { schema: Schema }> }
      | undefined;
    if (own === undefined) {
      out[status] = { $ref: `#/components/responses/${name}` };
      continue;
    }
    const json = own.content?.['application/json']?.schema;
    if (isTesseraInvalidRequest(json)) continue;
    const malformed = FRAMEWORK_RESPONSES[name]!.schema;
    out[status] = {
      ...own,
      content: {
        ...own.content,
        'application/json': { schema: json === undefined ? malformed : { anyOf: [json, malformed] } },
      },
    };
  }
  return out;
}

function parameters(location: 'path' | 'query' | 'header', schema: unknown): Schema[] {
  const s = schema as { properties?: Record<string, Schema>; required?: string[] } | undefined;
  return Object.entries(s?.properties ?? {}).map(([name, property]) => {
    const { description, ...rest } = property as Schema & { description?: string };
    return {
      name,
      in: location,
      ...(description !== undefined ? { description } : {}),
      required: location === 'path' || (s?.required ?? []).includes(name),
      schema: rest,
    };
  });
}

function requestBody(schema: Schema, mediaType: string): Schema {
  const type = schema.type;
  const optional = Array.isArray(type) && type.includes('null');
  const { description, ...rest } = schema as Schema & { description?: string };
  return {
    ...(description !== undefined ? { description } : {}),
    required: !optional,
    content: { [mediaType]: { schema: rest } },
  };
}

function operationId(method: string, url: string): string {
  const words = url.split(/[^A-Za-z0-9]+/).filter(Boolean);
  const named = url.includes(':') ? [...words.slice(0, -1), 'by', words.at(-1)!] : words;
  return [method.toLowerCase(), ...named.map((w) => w[0]!.toUpperCase() + w.slice(1))].join('');
}

function operation(route: RegisteredRoute, schemes: Record<string, Schema>): Operation {
  const { schema, method } = route;
  const security = schema.security ?? [];
  for (const requirement of security) {
    for (const name of Object.keys(requirement)) {
      if (!(name in schemes)) throw new Error(`${method} ${route.url}: unknown security scheme ${name}`);
    }
  }
  const params = [
    ...parameters('path', schema.params),
    ...parameters('query', schema.querystring),
    ...parameters('header', schema.headers),
    ...(schema.form && method === 'GET' ? parameters('query', schema.form) : []),
  ];
  const body = schema.body
    ? requestBody(schema.body as Schema, 'application/json')
    : schema.form && method !== 'GET'
      ? requestBody(schema.form, 'application/x-www-form-urlencoded')
      : undefined;
  const own = Object.entries((schema.response ?? {}) as Record<string, Schema>).map(
    ([status, s]) => [status, response(Number(status), s)] as const,
  );
  return {
    operationId: operationId(method, route.url),
    ...(schema.summary !== undefined ? { summary: schema.summary } : {}),
    ...(schema.description !== undefined ? { description: schema.description } : {}),
    ...(schema.tags !== undefined ? { tags: schema.tags } : {}),
    security,
    ...(params.length > 0 ? { parameters: params } : {}),
    ...(body ? { requestBody: body } : {}),
    responses: withFrameworkResponses(Object.fromEntries(own)),
  };
}

/** The OpenAPI 3.1 document of these routes, made from the schemas Fastify runs with. */
export function openApiDocument(routes: readonly RegisteredRoute[], info: DocumentInfo): OpenApiDocument {
  const schemes = securitySchemes(info);
  const paths: Record<string, Record<string, Operation>> = {};
  const documented = routes.filter(isDocumented);
  for (const route of [...documented].sort((a, b) => a.url.localeCompare(b.url))) {
    const path = openApiPath(route.url);
    paths[path] = { ...paths[path], [route.method.toLowerCase()]: operation(route, schemes) };
  }
  return {
    openapi: '3.1.1',
    info: { title: 'Tessera account server', version: info.version, description: DESCRIPTION },
    servers: [{ url: info.issuer }],
    tags: TAGS,
    paths,
    components: {
      securitySchemes: schemes,
      responses: Object.fromEntries(
        Object.entries(FRAMEWORK_RESPONSES).map(([name, { schema }]) => [name, jsonResponse(schema)]),
      ),
    },
  };
}
