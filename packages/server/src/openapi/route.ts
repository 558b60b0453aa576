import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import {
  type DocumentInfo,
  type OpenApiDocument,
  openApiDocument,
  type RegisteredRoute,
} from './document.js';
import { errors, object, PUBLIC } from './schemas.js';

/** The server package's version, which the document carries. */
export const SERVER_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/**
 * Fastify's route table as it fills: every route registered after this call, from the onRoute
 * hook, so the document lists what the server really serves. Call it before any route.
 */
export function collectRoutes(app: FastifyInstance): RegisteredRoute[] {
  const routes: RegisteredRoute[] = [];
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat())
      routes.push({ method, url: route.url, schema: route.schema ?? {} });
  });
  return routes;
}

export interface OpenApiRouteOptions {
  routes: readonly RegisteredRoute[];
  info: DocumentInfo;
}

/** `GET /openapi.json`: the document of every route, made once the table is complete. */
export const openApiRoute: FastifyPluginAsync<OpenApiRouteOptions> = async (app, { routes, info }) => {
  let text: string | undefined;
  app.get(
    '/openapi.json',
    {
      schema: {
        summary: 'This document',
        description:
          'The OpenAPI 3.1 description of every route, made from the schemas the server runs with.',
        tags: ['discovery'],
        security: PUBLIC,
        response: {
          200: { ...object({}, { description: 'The OpenAPI document.' }), additionalProperties: true },
          ...errors(),
        },
      },
    },
    async (_request, reply) => {
      text ??= JSON.stringify(openApiDocument(routes, info));
      return reply.type('application/json; charset=utf-8').header('Cache-Control', 'no-cache').send(text);
    },
  );
};

export type { OpenApiDocument };
