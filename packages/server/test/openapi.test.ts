// The OpenAPI document at /openapi.json: valid OpenAPI 3.1 by an independent validator, made from
// Fastify's own route table, every route and every error code in it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { HTTP_API, httpApiMarkdown, servedDocument } from '../scripts/http-api.js';
import { ERROR_CODES } from '../src/errors.js';
import { cookieNames } from '../src/http/cookies.js';
import { OAUTH_ERROR_CODES } from '../src/oauth/errors.js';
import { isDocumented, type OpenApiDocument, openApiDocument, openApiPath } from '../src/openapi/document.js';
import { SERVER_VERSION } from '../src/openapi/route.js';
import { startTestServer, type TestServer } from './helpers.js';
import { Contract } from './openapi-contract.js';

const ADMIN_TOKEN = 'admin-token-for-the-openapi-suite-0123456789';

/** Every schema of the document that a response is checked against. */
function responseSchemas(doc: OpenApiDocument): unknown[] {
  const out: unknown[] = [];
  const responses = [
    ...Object.values(doc.paths).flatMap((ops) =>
      Object.values(ops).flatMap((op) => Object.values(op.responses)),
    ),
    ...Object.values(doc.components.responses),
  ] as { content?: Record<string, { schema: unknown }> }[];
  for (const r of responses) for (const media of Object.values(r.content ?? {})) out.push(media.schema);
  return out;
}

describe('OpenAPI document', () => {
  let srv: TestServer;
  let doc: OpenApiDocument;

  before(async () => {
    srv = await startTestServer({ adminToken: ADMIN_TOKEN });
    const res = await fetch(`${srv.url}/openapi.json`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    doc = (await res.json()) as OpenApiDocument;
  });
  after(() => srv.close());

  it('is valid OpenAPI 3.1 (@seriousme/openapi-schema-validator)', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
    assert.equal(validator.version, '3.1');
    // Every $ref points at something.
    assert.doesNotThrow(() => validator.resolveRefs());
  });

  it('the validator does refuse a broken document', async () => {
    const broken = structuredClone(doc) as Record<string, any>;
    broken.paths['/healthz'].get.responses = { ok: 'yes' };
    const result = await new Validator().validate(broken);
    assert.equal(result.valid, false);
  });

  it('is what openApiDocument makes of the route table', () => {
    const info = { issuer: srv.url, version: SERVER_VERSION, cookies: cookieNames(srv.config) };
    assert.deepEqual(doc, JSON.parse(JSON.stringify(openApiDocument(srv.app.routes, info))));
  });

  it('lists every route Fastify serves, and only those', () => {
    const documented = new Set(
      Object.entries(doc.paths).flatMap(([path, ops]) =>
        Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
      ),
    );
    const served = srv.app.routes.filter(isDocumented).map((r) => `${r.method} ${openApiPath(r.url)}`);
    assert.deepEqual([...documented].sort(), [...new Set(served)].sort());
    assert.equal(served.length, new Set(served).size, 'one route per method and path');
    // What is left out is exactly the HEAD twin of each GET and the CORS preflight.
    const rest = srv.app.routes.filter((r) => !isDocumented(r));
    for (const r of rest) {
      if (r.method === 'OPTIONS') assert.equal(r.url, '*');
      else assert.ok(documented.has(`GET ${openApiPath(r.url)}`), `HEAD ${r.url} without a GET`);
    }
    for (const key of documented) {
      const [method, path] = key.split(' ') as [string, string];
      const url = path.replace(/\{(\w+)\}/g, ':$1');
      assert.ok(srv.app.fastify.hasRoute({ method, url }), `${key} is not a route`);
    }
  });

  it('documents every operation: summary, tags, security, answers with schemas', () => {
    const schemes = new Set(Object.keys(doc.components.securitySchemes));
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const where = `${method.toUpperCase()} ${path}`;
        assert.ok(op.summary && op.tags?.length === 1, `${where}: summary and one tag`);
        assert.ok(Array.isArray(op.security), `${where}: security`);
        for (const req of op.security)
          for (const name of Object.keys(req)) assert.ok(schemes.has(name), name);
        const statuses = Object.keys(op.responses).map(Number);
        assert.ok(
          statuses.some((s) => s < 400),
          `${where}: a success answer`,
        );
        for (const s of [400, 408, 431, 500]) assert.ok(statuses.includes(s), `${where}: ${s}`);
        for (const param of op.parameters ?? []) assert.ok(param.name && param.in && param.schema, where);
      }
    }
  });

  it('names every error code of the account server and of the OAuth provider', () => {
    const text = JSON.stringify(doc);
    const enums = new Set<string>();
    JSON.stringify(doc, (key, value) => {
      // A JSON error body names its codes in an enum; an HTML error page in `x-error-codes`.
      if ((key === 'enum' || key === 'x-error-codes') && Array.isArray(value))
        for (const v of value) enums.add(String(v));
      return value;
    });
    for (const code of ERROR_CODES) assert.ok(enums.has(code), `${code} is in an error enum`);
    for (const code of OAUTH_ERROR_CODES) assert.ok(enums.has(code) || text.includes(`\`${code}\``), code);
  });

  it('every response schema compiles in strict JSON Schema 2020-12', () => {
    const contract = new Contract(doc);
    const schemas = responseSchemas(doc);
    assert.ok(schemas.length > 80);
    for (const schema of schemas) contract.validator(schema);
  });

  it('names the cookies and the issuer this server uses', () => {
    const schemes = doc.components.securitySchemes as Record<string, { name?: string }>;
    assert.equal(schemes.sessionCookie?.name, cookieNames(srv.config).session);
    assert.equal(schemes.refreshCookie?.name, cookieNames(srv.config).refresh);
    assert.deepEqual(doc.servers, [{ url: srv.url }]);
  });
});

describe('OpenAPI document without the OAuth provider', () => {
  it('has no OAuth routes, since the server has none', async () => {
    const srv = await startTestServer({ oauth: false });
    try {
      const doc = (await (await fetch(`${srv.url}/openapi.json`)).json()) as OpenApiDocument;
      assert.ok(!Object.keys(doc.paths).some((p) => p.startsWith('/oauth/') || p === '/auth/grants'));
      assert.ok(doc.paths['/auth/login']?.post);
      const result = await new Validator().validate(doc);
      assert.equal(result.valid, true);
    } finally {
      await srv.close();
    }
  });
});

describe('docs/http-api.md', () => {
  it('is the reference the served document makes (npm run docs:api)', async () => {
    const doc = await servedDocument();
    const written = readFileSync(HTTP_API, 'utf8');
    assert.equal(written, httpApiMarkdown(doc), 'docs/http-api.md is out of date: npm run docs:api');
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops))
        assert.ok(written.includes(`\n### ${method.toUpperCase()} ${path}\n`));
    }
    assert.doesNotMatch(written, /\]\((?!#)/, 'links stay inside the page');
  });
});
