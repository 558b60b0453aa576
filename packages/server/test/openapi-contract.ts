// Checks real answers against the OpenAPI document: the status must be documented for the
// operation, the media type among its content, and the body valid against its schema (ajv).
import assert from 'node:assert/strict';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { OpenApiDocument } from '../src/openapi/document.js';
import { type Answer, call } from './helpers.js';

/** An answer: status, headers, and the body (parsed when JSON, '' when there was none). */
export type Sent = Pick<Answer, 'status' | 'headers'> & { body: unknown };

/** One request through `call`; redirects are answers too, so they are not followed. */
export function send(
  base: string,
  method: string,
  path: string,
  options: {
    json?: unknown;
    form?: Record<string, string>;
    raw?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<Answer> {
  const headers = { ...options.headers };
  let rawBody = options.raw;
  if (options.form !== undefined) {
    rawBody = new URLSearchParams(options.form).toString();
    headers['content-type'] ??= 'application/x-www-form-urlencoded';
  }
  return call(base, method, path, { body: options.json, rawBody, headers, redirect: 'manual' });
}

/** The body of a JSON answer. */
export function json(sent: Sent): any {
  assert.equal(typeof sent.body, 'object', `a JSON body, not ${String(sent.body).slice(0, 200)}`);
  return sent.body;
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
  check<T extends Sent>(method: string, template: string, sent: T, expectedStatus?: number): T {
    const where = `${method} ${template} → ${sent.status}`;
    const text = typeof sent.body === 'string' ? sent.body : (JSON.stringify(sent.body) ?? '');
    if (expectedStatus !== undefined)
      assert.equal(sent.status, expectedStatus, `${where}: ${text.slice(0, 300)}`);
    this.covered.add(`${method} ${template}`);
    const documented = this.response(method, template, sent.status);
    if (documented.content === undefined) {
      assert.equal(sent.body, undefined, `${where}: documented without a body`);
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
      assert.ok(
        validate(sent.body),
        `${where}: ${this.ajv.errorsText(validate.errors)} in ${text.slice(0, 500)}`,
      );
    } else {
      assert.ok(typeof sent.body === 'string' && sent.body.length > 0, `${where}: a ${type} body`);
    }
    return sent;
  }
}
