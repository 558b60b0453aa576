import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance } from 'fastify';
import { TesseraError } from '../errors.js';

/** Fastify's own error codes mapped to ours; everything unknown is a 500 with no detail. */
const FASTIFY_CODES: Record<string, TesseraError['code']> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_request',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_request',
  FST_ERR_VALIDATION: 'invalid_request',
  FST_ERR_BAD_URL: 'invalid_request',
  FST_ERR_ASYNC_CONSTRAINT: 'invalid_request',
};

const CLIENT_MESSAGES: Partial<Record<TesseraError['code'], string>> = {
  unsupported_media_type: 'Send a JSON body with Content-Type: application/json.',
  payload_too_large: 'The request body is too large.',
};

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | TesseraError | Error, request, reply) => {
    let coded: TesseraError;
    if (error instanceof TesseraError) {
      coded = error;
    } else {
      const fastifyCode =
        'code' in error && typeof error.code === 'string' ? FASTIFY_CODES[error.code] : undefined;
      const status = 'statusCode' in error && typeof error.statusCode === 'number' ? error.statusCode : 500;
      if (fastifyCode) {
        const message =
          CLIENT_MESSAGES[fastifyCode] ??
          (fastifyCode === 'invalid_request' && 'validation' in error && error.validation
            ? `Invalid request: ${error.message}`
            : 'The request is malformed.');
        coded = new TesseraError(fastifyCode, message);
      } else if (error instanceof SyntaxError || (status >= 400 && status < 500)) {
        coded = new TesseraError('invalid_request', 'The request is malformed.');
      } else {
        request.log.error({ err: error }, 'unhandled error');
        coded = new TesseraError('internal_error', 'Something went wrong.');
      }
    }
    if (coded.status >= 500) request.log.warn({ code: coded.code, detail: coded.detail }, 'request failed');
    if (coded.retryAfterSeconds !== undefined) reply.header('Retry-After', String(coded.retryAfterSeconds));
    if (coded.status === 401) {
      const presented = request.headers.authorization !== undefined;
      reply.header(
        'WWW-Authenticate',
        presented ? `Bearer realm="tessera", error="invalid_token"` : `Bearer realm="tessera"`,
      );
    }
    reply.header('Cache-Control', 'no-store');
    return reply.code(coded.status).send({ error: coded.code, message: coded.message });
  });

  app.setNotFoundHandler((_request, reply) => {
    return reply
      .code(404)
      .header('Cache-Control', 'no-store')
      .send({ error: 'not_found', message: 'No such resource.' });
  });
}

/**
 * Node's HTTP parser refuses some requests before Fastify sees them (headers too large, a request
 * it cannot parse): those get the same headers and `{error, message}` shape as every other answer.
 */
export function clientErrorHandler(
  headers: Record<string, string>,
): (err: NodeJS.ErrnoException, socket: Socket) => void {
  return (err, socket) => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const coded =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? new TesseraError('headers_too_large', 'The request headers are too large.')
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? new TesseraError('request_timeout', 'The request took too long to arrive.')
          : new TesseraError('invalid_request', 'The request is malformed.');
    const body = JSON.stringify({ error: coded.code, message: coded.message });
    const lines = [
      `HTTP/1.1 ${coded.status} ${STATUS_CODES[coded.status]}`,
      'Content-Type: application/json; charset=utf-8',
      `Content-Length: ${Buffer.byteLength(body)}`,
      'Cache-Control: no-store',
      'Connection: close',
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    ];
    if (socket.writable) socket.write(`${lines.join('\r\n')}\r\n\r\n${body}`);
    socket.destroy(err);
  };
}
