// Writes docs/http-api.md from the OpenAPI document the server serves (npm run docs:api);
// `--check` only compares.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config.js';
import type { OpenApiDocument, Operation } from '../src/openapi/document.js';
import { openSqliteStores } from '../src/store/sqlite.js';
import { createTessera } from '../src/tessera.js';
import { isMain, writeOrCheck } from './generated.js';

export const HTTP_API = path.resolve(import.meta.dirname, '../../../docs/http-api.md');

/** The parts of a JSON Schema the page shows. */
interface Schema {
  type?: string | string[];
  enum?: unknown[];
  anyOf?: Schema[];
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  description?: string;
  additionalProperties?: unknown;
}

/** The document of a server with the default settings and an https issuer, as /openapi.json serves it. */
export async function servedDocument(): Promise<OpenApiDocument> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-docs-'));
  const config = loadConfig({}, { issuer: 'https://auth.example.test', dataDir, secret: 'x'.repeat(40) });
  const tessera = await createTessera(config, { stores: openSqliteStores(':memory:'), logger: false });
  try {
    const res = await tessera.app.fastify.inject('/openapi.json');
    if (res.statusCode !== 200) throw new Error(`/openapi.json answered ${res.statusCode}`);
    return res.json() as OpenApiDocument;
  } finally {
    await tessera.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const code = (s: unknown) => `\`${String(s)}\``;
/** Table cells: one line, no pipes. */
const cell = (s: string | undefined) => (s ?? '').replace(/\|/g, '\\|').replace(/\n+/g, ' ');

function typeOf(s: Schema | undefined): string {
  if (!s) return 'any';
  if (s.enum) return s.enum.map((v: unknown) => code(JSON.stringify(v))).join(' or ');
  if (s.anyOf) return s.anyOf.map(typeOf).join(' or ');
  if (s.type === 'array') return `array of ${typeOf(s.items)}`;
  if (Array.isArray(s.type)) return s.type.join(' or ');
  return s.type ?? 'any';
}

/** A field table of an object schema; nested objects get their fields as `parent.child`. */
function fieldRows(s: Schema, prefix = ''): string[] {
  const required = new Set<string>(s.required ?? []);
  const rows: string[] = [];
  for (const [name, p] of Object.entries<Schema>(s.properties ?? {})) {
    const full = `${prefix}${name}`;
    const inner = p.type === 'array' ? p.items : p;
    const nested = inner?.type === 'object' && inner.properties && Object.keys(inner.properties).length > 0;
    rows.push(
      `| ${code(full)} | ${cell(typeOf(p))} | ${required.has(name) ? 'yes' : 'no'} | ${cell(p.description)} |`,
    );
    if (nested) rows.push(...fieldRows(inner, p.type === 'array' ? `${full}[].` : `${full}.`));
  }
  return rows;
}

function fieldTable(s: Schema): string[] {
  const rows = fieldRows(s);
  if (rows.length === 0) return [];
  return ['', '| field | type | required | meaning |', '| --- | --- | --- | --- |', ...rows];
}

function objectOrVariants(s: Schema): string[] {
  if (s.anyOf) {
    return s.anyOf.flatMap((v: Schema) => [
      '',
      `One of: ${cell(v.description ?? typeOf(v))}`,
      ...fieldTable(v),
    ]);
  }
  const out = fieldTable(s);
  if (s.additionalProperties === true && s.properties && Object.keys(s.properties).length > 0)
    out.push('', 'Other members may follow.');
  return out;
}

const SCHEME_TEXT: Record<string, string> = {
  bearer: '`Authorization: Bearer` access or session token',
  sessionCookie: 'session cookie',
  refreshCookie: 'refresh cookie',
  csrfToken: '`X-CSRF-Token`',
  oauthBearer: '`Authorization: Bearer` OAuth access token',
  dpop: '`Authorization: DPoP` token with a `DPoP` proof',
  clientSecretBasic: 'client authentication (Basic, or `client_id`/`client_secret` in the form)',
  adminToken: '`Authorization: Bearer` admin token',
  feedToken: '`Authorization: Bearer` feed token',
  metricsToken: '`Authorization: Bearer` metrics token',
};

function authText(op: Operation): string {
  if (op.security.length === 0) return 'none';
  return op.security
    .map((req) => {
      const names = Object.keys(req);
      return names.length === 0 ? 'none' : names.map((n) => SCHEME_TEXT[n] ?? n).join(' + ');
    })
    .join('; or ');
}

function errorCodes(schema: Schema | undefined): string[] {
  if (!schema) return [];
  if (schema.anyOf) return schema.anyOf.flatMap(errorCodes);
  return (schema.properties?.error?.enum ?? []).map(String);
}

function answers(op: Operation): string[] {
  const out: string[] = ['', '**Answers**', ''];
  const details: string[] = [];
  for (const [status, raw] of Object.entries(op.responses)) {
    if (raw.$ref) continue; // the answers every route has, listed once at the top
    const r = raw as { description?: string; content?: Record<string, { schema: Schema }>; headers?: Schema };
    const json = r.content?.['application/json']?.schema;
    const others = Object.keys(r.content ?? {}).filter((t) => t !== 'application/json');
    const codes = Number(status) >= 400 ? [...new Set(errorCodes(json))] : [];
    const parts: string[] = [];
    if (codes.length === 0 || others.length > 0) {
      const media = others.length > 0 ? `${others.map(code).join(', ')}: ` : '';
      parts.push(`${media}${cell(r.description).replace(/\.$/, '')}`);
    }
    if (codes.length > 0) parts.push(`${others.length > 0 ? 'JSON: ' : ''}${codes.map(code).join(', ')}`);
    if (r.headers) parts.push(`with ${Object.keys(r.headers).map(code).join(', ')}`);
    out.push(`- \`${status}\` ${parts.join('; ')}${codes.length === 0 || r.headers ? '.' : ''}`);
    if (json && Number(status) < 400) {
      const fields = objectOrVariants(json);
      if (fields.length > 0) details.push('', `The \`${status}\` body:`, ...fields);
    }
  }
  return [...out, ...details];
}

function parametersOf(op: Operation): string[] {
  const params = (op.parameters ?? []) as {
    name: string;
    in: string;
    required: boolean;
    description?: string;
    schema: Schema;
  }[];
  if (params.length === 0) return [];
  const rows = params.map(
    (p) =>
      `| ${code(p.name)} | ${p.in} | ${cell(typeOf(p.schema))} | ${p.required ? 'yes' : 'no'} | ${cell(p.description)} |`,
  );
  return [
    '',
    '**Parameters**',
    '',
    '| name | in | type | required | meaning |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
  ];
}

function bodyOf(op: Operation): string[] {
  const body = op.requestBody as
    | { required?: boolean; description?: string; content: Record<string, { schema: Schema }> }
    | undefined;
  if (!body) return [];
  const [type, { schema }] = Object.entries(body.content)[0]!;
  const head = `**Body** (${code(type)}${body.required ? '' : ', optional'})${body.description ? `: ${body.description}` : ''}`;
  return ['', head, ...fieldTable(schema)];
}

const TAG_TITLES: Record<string, string> = {
  session: 'Signing in',
  account: 'The account',
  federation: 'Sign-in providers',
  feed: 'Revocation feed',
  discovery: 'Discovery',
  oauth: 'OAuth 2 and OpenID Connect',
  admin: 'OAuth client administration',
  operations: 'Operations',
  pages: 'Pages',
};

/** The anchor GitHub gives the heading `### METHOD /path`: lower case, punctuation dropped, spaces to '-'. */
const anchor = (method: string, p: string) =>
  `${method} ${p}`
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');

/** The Markdown reference of every operation, grouped by tag. */
export function httpApiMarkdown(doc: OpenApiDocument): string {
  const info = doc.info as { title: string; version: string; description: string };
  const tags = doc.tags as { name: string; description: string }[];
  const ops = Object.entries(doc.paths).flatMap(([p, byMethod]) =>
    Object.entries(byMethod).map(([method, op]) => ({ method: method.toUpperCase(), path: p, op })),
  );
  const lines: string[] = [
    '<!-- Generated from /openapi.json by npm run docs:api; do not edit. -->',
    '',
    `# HTTP reference (${info.title} ${info.version})`,
    '',
    'Every route of the account server, made from the same route schemas the server validates requests ' +
      'and serializes answers with. The server serves this as an OpenAPI 3.1 document at `GET /openapi.json`.',
    '',
    info.description,
    '',
    '## Authentication',
    '',
    '| scheme | what is sent | meaning |',
    '| --- | --- | --- |',
    ...Object.entries(doc.components.securitySchemes).map(([name, s]) => {
      const how = s.type === 'apiKey' ? `${s.in} ${code(s.name)}` : `${s.type} ${s.scheme}`;
      return `| ${code(name)} | ${how} | ${cell(s.description as string)} |`;
    }),
    '',
    '## Answers every route can give',
    '',
    ...Object.values(doc.components.responses).map((r) => {
      const schema = (r.content as Record<string, { schema: Schema }>)['application/json']!.schema;
      return `- ${errorCodes(schema).map(code).join(', ')}: ${cell(r.description as string)}`;
    }),
    '',
    '## Routes',
    '',
  ];
  for (const tag of tags) {
    const mine = ops.filter((o) => o.op.tags?.[0] === tag.name);
    if (mine.length === 0) continue;
    lines.push(
      `- **${tag.name}**: ${mine.map((o) => `[${o.method} ${o.path}](#${anchor(o.method, o.path)})`).join(', ')}`,
    );
  }
  for (const tag of tags) {
    const mine = ops.filter((o) => o.op.tags?.[0] === tag.name);
    if (mine.length === 0) continue;
    lines.push('', `## ${TAG_TITLES[tag.name] ?? tag.name}`, '', tag.description);
    for (const { method, path: p, op } of mine) {
      lines.push(
        '',
        `### ${method} ${p}`,
        '',
        `**${op.summary}.**${op.description ? ` ${op.description}` : ''}`,
        '',
      );
      lines.push(`**Auth:** ${authText(op)}`);
      lines.push(...parametersOf(op), ...bodyOf(op), ...answers(op));
    }
  }
  return `${lines.join('\n')}\n`;
}

if (isMain(import.meta)) writeOrCheck(HTTP_API, httpApiMarkdown(await servedDocument()), 'npm run docs:api');
