// Checks real answers against the OpenAPI document: the status must be documented for the
// operation, the media type among its content, and the body valid against its schema (ajv).
import assert from 'node:assert/strict';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { OpenApiDocument } from '../src/openapi/document.js';

export interface Sent {
  status: number;
  headers: Headers;
  /** The body as text; '' when there was none. */
  text: string;
}

/** One request; redirects are answers too, so they are not followed. */
export async function send(
  base: string,
  method: string,
  path: string,
  options: {
    json?: unknown;
    form?: Record<string, string>;
    raw?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<Sent> {
  const headers: Record<string, string> = { ...options.headers };
  let body: string | undefined = options.raw;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers['content-type'] ??= 'application/json';
  } else if (options.form !== undefined) {
    body = new URLSearchParams(options.form).toString();
    headers['content-type'] ??= 'application/x-www-form-urlencoded';
  }
  const res = await fetch(`${base}${path}`, { method, headers, body, redirect: 'manual' });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** The parsed JSON body of an answer (which must be JSON). */
export function json(sent: Sent): any {
  return JSON.parse(sent.text);
}

interface ResponseObject {
  description?: string;
  content?: Record<string, { schema: unknown }>;
  $ref?: string;
}

export class Contract {
  private readonly ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
  private readonly compiled = new Map<unknown, ValidateFunction>();
  /** `METHOD /template` of every operation an answer was checked for. */
  readonly covered = new Set<string>();

  constructor(readonly doc: OpenApiDocument) {
    addFormats.default(this.ajv);
  }

  /** Every operation of the document, as `METHOD /template`. */
  operations(): string[] {
    return Object.entries(this.doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
  }

  /** The documented answer for this status, `$ref`s resolved; fails when there is none. */
  response(method: string, template: string, status: number): ResponseObject {
    const op = this.doc.paths[template]?.[method.toLowerCase()];
    assert.ok(op, `${method} ${template} is not in the document`);
    let r = op.responses[String(status)] as ResponseObject | undefined;
    assert.ok(r, `${method} ${template} answered ${status}, which the document does not list`);
    if (r.$ref !== undefined) r = this.doc.components.responses[r.$ref.split('/').at(-1)!] as ResponseObject;
    return r;
  }

  /** The validator for a schema of the document, compiled once. */
  validator(schema: unknown): ValidateFunction {
    let fn = this.compiled.get(schema);
    if (!fn) {
      fn = this.ajv.compile(schema as object);
      this.compiled.set(schema, fn);
    }
    return fn;
  }

  /** Asserts that `sent` is a documented answer of `METHOD template` and returns it. */
  check(method: string, template: string, sent: Sent, expectedStatus?: number): Sent {
    const where = `${method} ${template} → ${sent.status}`;
    if (expectedStatus !== undefined)
      assert.equal(sent.status, expectedStatus, `${where}: ${sent.text.slice(0, 300)}`);
    this.covered.add(`${method} ${template}`);
    const documented = this.response(method, template, sent.status);
    if (documented.content === undefined) {
      assert.equal(sent.text, '', `${where}: documented without a body`);
      return sent;
    }
    const type = (sent.headers.get('content-type') ?? '').split(';')[0]!.trim();
    const media = documented.content[type];
    assert.ok(
      media,
      `${where}: ${type || 'no content type'} is not among ${Object.keys(documented.content)}`,
    );
    if (type === 'application/json') {
      const validate = this.validator(media.schema);
      const body: unknown = JSON.parse(sent.text);
      assert.ok(
        validate(body),
        `${where}: ${this.ajv.errorsText(validate.errors)} in ${sent.text.slice(0, 500)}`,
      );
    } else {
      assert.ok(sent.text.length > 0, `${where}: an empty ${type} body`);
    }
    return sent;
  }
}
