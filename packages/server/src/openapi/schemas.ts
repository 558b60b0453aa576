import { STATUS_CODES } from 'node:http';
import { type ErrorCode, statusOf } from '../errors.js';
import { type OAuthErrorCode, oauthStatusOf } from '../oauth/errors.js';

/**
 * Building blocks for the route schemas. Fastify validates requests and serializes answers with
 * them, and the OpenAPI document is made from the same objects, so what it says is what runs.
 */
export type Schema = Record<string, unknown>;

/** An OpenAPI security requirement: any one of the listed sets of schemes. */
export type Security = readonly Readonly<Record<string, readonly string[]>>[];

declare module 'fastify' {
  interface FastifySchema {
    summary?: string;
    description?: string;
    tags?: readonly string[];
    /** Who may call the route; the schemes are named in the OpenAPI document's components. */
    security?: Security;
    /**
     * OAuth parameters, which those routes read and check themselves (RFC 6749 forms, repeated
     * names refused): the query string of a GET, the `application/x-www-form-urlencoded` body of
     * a POST. Documented only; Fastify does not compile it.
     */
    form?: Schema;
  }
}

/** No credentials at all. */
export const PUBLIC: Security = [];

/** An object with exactly these properties; all are present unless named in `optional`. */
export function object(
  properties: Record<string, Schema>,
  options: { optional?: readonly string[]; description?: string } = {},
): Schema {
  const required = Object.keys(properties).filter((k) => !options.optional?.includes(k));
  return {
    ...(options.description ? { description: options.description } : {}),
    type: 'object',
    additionalProperties: false,
    ...(required.length > 0 ? { required } : {}),
    properties,
  };
}

/** OAuth parameters: the ones named in `required` must be there; unknown ones are ignored (RFC 6749 §3.1). */
export function formFields(properties: Record<string, Schema>, required: readonly string[] = []): Schema {
  return { type: 'object', ...(required.length > 0 ? { required } : {}), properties };
}

export function string(description?: string, extra: Schema = {}): Schema {
  return { type: 'string', ...(description ? { description } : {}), ...extra };
}

export function integer(description?: string): Schema {
  return { type: 'integer', ...(description ? { description } : {}) };
}

export function array(items: Schema, description?: string): Schema {
  return { type: 'array', ...(description ? { description } : {}), items };
}

/** An answer without a body (204, redirects, 304). */
export function noBody(description: string): Schema {
  return { description, type: 'null' };
}

/** An answer in another media type than JSON: HTML, scripts, text. */
export function media(description: string, type: string, schema: Schema = { type: 'string' }): Schema {
  return { description, content: { [type]: { schema } } };
}

/** One error body per status, each naming the codes that status carries. */
function byStatus<C extends string>(
  codes: Iterable<C>,
  status: (code: C) => number,
  body: (codes: C[]) => Schema,
): Record<number, Schema> {
  const grouped = new Map<number, C[]>();
  for (const code of new Set(codes)) grouped.set(status(code), [...(grouped.get(status(code)) ?? []), code]);
  return Object.fromEntries([...grouped].map(([s, list]) => [s, body(list)]));
}

/** The account server's error body, for the codes one status carries. */
export function errorBody(codes: readonly ErrorCode[]): Schema {
  return object(
    {
      error: string('A stable code: switch on this.', { enum: [...codes] }),
      message: string('For people; it may change.'),
    },
    { description: STATUS_CODES[statusOf(codes[0]!)] ?? 'Error' },
  );
}

/**
 * The error answers of a route, one per status. `internal_error` is always among them: any
 * route can fail unexpectedly.
 */
export function errors(...codes: ErrorCode[]): Record<number, Schema> {
  return byStatus<ErrorCode>([...codes, 'internal_error'], statusOf, errorBody);
}

/** What the OAuth endpoints answer with on failure (RFC 6749 §5.2). */
export function oauthErrorBody(codes: readonly OAuthErrorCode[]): Schema {
  return object(
    {
      error: string('An RFC 6749 / RFC 6750 / RFC 9449 error code.', { enum: [...codes] }),
      error_description: string('For developers; it may change.'),
    },
    { description: STATUS_CODES[oauthStatusOf(codes[0]!)] ?? 'Error' },
  );
}

/** The OAuth error answers of a route; `server_error` is always among them. */
export function oauthErrors(...codes: OAuthErrorCode[]): Record<number, Schema> {
  return byStatus<OAuthErrorCode>([...codes, 'server_error'], oauthStatusOf, oauthErrorBody);
}

/** What a route with a JSON body can be refused for before it runs. */
export const JSON_BODY_ERRORS: ErrorCode[] = [
  'invalid_request',
  'unsupported_media_type',
  'payload_too_large',
];
