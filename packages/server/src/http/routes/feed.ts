import type { FastifyPluginAsyncJsonSchemaToTs } from '@fastify/type-provider-json-schema-to-ts';
import type { FastifyRequest } from 'fastify';
import { type Revocations, toFeedEntry } from '../../domain/revocations.js';
import { addressKey } from '../../domain/throttle.js';
import { TesseraError } from '../../errors.js';
import { errors, integer, media, object, type Security, string } from '../../openapi/schemas.js';
import type { RevocationEntry } from '../../store/types.js';

const CURSOR = /^\d{1,15}$/;

/** `cursor` is checked by parseCursor, so its message stays the same for every wrong shape. */
const FEED_QUERY = {
  type: 'object',
  properties: {
    cursor: {
      description:
        'A whole number: only entries after this cursor (from an earlier answer); none: all live entries.',
    },
  },
} as const;

/** The feed token, or no token from an allowed address (or while internal access is open). */
const FEED_READER: Security = [{ feedToken: [] }, {}];

const FEED_ERRORS = ['invalid_request', 'unauthorized', 'forbidden', 'unavailable'] as const;

export const FEED_ENTRY = object(
  {
    cursor: integer('The entry’s place in the feed.'),
    expires_at: integer(
      'Unix seconds after which the entry no longer matters (every token it covers has expired).',
    ),
    sid: string('Tokens with this `sid` (a session or an OAuth grant) are revoked.'),
    sub: string('Tokens of this user (`sub`) issued before `not_before` are revoked.'),
    not_before: integer('Unix seconds; with `sub`.'),
  },
  {
    optional: ['sid', 'sub', 'not_before'],
    description: 'One revocation: a `sid`, or a `sub` with `not_before`.',
  },
);

export interface FeedRouteOptions {
  revocations: Revocations;
  heartbeatMs: number;
  onClose: (fn: () => void) => void;
  /** Throws unless the reader may see the feed. */
  authorize: (request: FastifyRequest) => void;
  maxStreamsPerClient: number;
  /** The security headers every answer carries (securityHeaders): the stream sends them itself. */
  securityHeaders: Record<string, string>;
}

function parseCursor(value: unknown): number {
  if (value === undefined || value === '') return 0;
  if (typeof value !== 'string' || !CURSOR.test(value)) {
    throw new TesseraError('invalid_request', 'cursor must be a whole number.');
  }
  return Number(value);
}

/**
 * The revocation feed: a snapshot with a cursor, and a live SSE stream that resumes from a
 * cursor (query `cursor` or `Last-Event-ID`) and sends heartbeats so clients can tell a quiet
 * feed from a dead one.
 */
export const feedRoutes: FastifyPluginAsyncJsonSchemaToTs<{ Options: FeedRouteOptions }> = async (
  app,
  deps,
) => {
  const { revocations, authorize } = deps;
  const streams = new Set<() => void>();
  const openPerClient = new Map<string, number>();
  const release = (client: string) => {
    const n = (openPerClient.get(client) ?? 1) - 1;
    if (n <= 0) openPerClient.delete(client);
    else openPerClient.set(client, n);
  };
  deps.onClose(() => {
    for (const end of streams) end();
  });

  app.get(
    '/auth/revocations',
    {
      schema: {
        querystring: FEED_QUERY,
        summary: 'Revocation feed snapshot',
        description:
          'The live revocations after `cursor`, for API servers that verify tokens locally. Poll it with ' +
          'the cursor of the last answer, or follow the stream.',
        tags: ['feed'],
        security: FEED_READER,
        response: {
          200: object(
            {
              cursor: integer('Pass it as `cursor` next time.'),
              entries: { type: 'array', items: FEED_ENTRY },
            },
            { description: 'The entries after the cursor, oldest first.' },
          ),
          ...errors(...FEED_ERRORS),
        },
      },
    },
    async (request, reply) => {
      authorize(request);
      const cursor = parseCursor(request.query.cursor);
      reply.header('Cache-Control', 'no-store');
      return revocations.snapshot(cursor);
    },
  );

  app.get(
    '/auth/revocations/stream',
    {
      schema: {
        querystring: FEED_QUERY,
        headers: {
          type: 'object',
          properties: {
            'last-event-id': {
              type: 'string',
              description:
                'What a reconnecting EventSource sends: the cursor to resume after (`cursor` wins).',
            },
          },
        },
        summary: 'Revocation feed stream',
        description:
          'Server-sent events: `hello` with the starting cursor, then every entry after it as a ' +
          '`revocation` event (`id` is its cursor, `data` a feed entry), and `heartbeat` events with the ' +
          'cursor and the time so a reader can tell a quiet feed from a dead one. A client address may ' +
          'hold a limited number of streams.',
        tags: ['feed'],
        security: FEED_READER,
        response: {
          200: media('The event stream; it stays open.', 'text/event-stream'),
          ...errors(...FEED_ERRORS, 'too_many_streams'),
        },
      },
    },
    async (request, reply) => {
      authorize(request);
      const fromQuery = request.query.cursor;
      let cursor = parseCursor(fromQuery ?? request.headers['last-event-id']);
      // One IPv6 /64 is one client, as for every other per-address limit.
      const client = addressKey(request.ip);
      const open = openPerClient.get(client) ?? 0;
      if (open >= deps.maxStreamsPerClient) {
        throw new TesseraError('too_many_streams', 'Too many open revocation streams from this client.', {
          retryAfterSeconds: 5,
        });
      }
      openPerClient.set(client, open + 1);
      // Subscribe before reading the backlog, so nothing recorded in between is lost.
      const pending: RevocationEntry[] = [];
      let live = false;
      const raw = reply.raw;
      // Entries from other instances may arrive out of seq order: dedupe by seq, not by "seq > cursor".
      let backlogCursor = cursor;
      const sent = new Set<number>();
      const send = (entries: RevocationEntry[]) => {
        let out = '';
        for (const e of entries) {
          if (e.seq <= backlogCursor || sent.has(e.seq)) continue;
          sent.add(e.seq);
          if (sent.size > 10_000) sent.delete(sent.values().next().value as number);
          cursor = Math.max(cursor, e.seq);
          out += `id: ${e.seq}\nevent: revocation\ndata: ${JSON.stringify(toFeedEntry(e))}\n\n`;
        }
        if (out) raw.write(out);
      };
      const unsubscribe = revocations.hub.subscribe((entries) => {
        if (live) send(entries);
        else pending.push(...entries);
      });
      const backlog = await revocations.snapshot(cursor).catch((err: unknown) => {
        unsubscribe();
        release(client);
        throw err;
      });
      reply.hijack();
      raw.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-store',
        Connection: 'keep-alive',
        'X-Accel-Buffering': 'no',
        ...deps.securityHeaders,
        ...Object.fromEntries(
          Object.entries(reply.getHeaders()).filter(
            ([k]) => k.toLowerCase().startsWith('access-control-') || k === 'vary',
          ),
        ),
      });
      raw.write(`retry: 1000\nevent: hello\ndata: ${JSON.stringify({ cursor })}\n\n`);
      let out = '';
      for (const e of backlog.entries) {
        cursor = Math.max(cursor, e.cursor);
        backlogCursor = cursor;
        out += `id: ${e.cursor}\nevent: revocation\ndata: ${JSON.stringify(e)}\n\n`;
      }
      if (out) raw.write(out);
      live = true;
      send(pending.sort((a, b) => a.seq - b.seq));
      // The hub hears other instances through Redis pub/sub, which drops a message a subscriber
      // was not connected for, and a publish can fail. So with each heartbeat the stream also
      // reads the store again, from one read back (an entry may commit after a higher seq), and
      // sends what it has not: an ending recorded anywhere reaches it within two heartbeats.
      let rereadFrom = backlogCursor;
      let lastRead = backlogCursor;
      let reading = false;
      const catchUp = async () => {
        if (reading) return;
        reading = true;
        try {
          const entries = await revocations.after(rereadFrom);
          if (!raw.writableEnded) send(entries);
          rereadFrom = lastRead;
          lastRead = entries.length > 0 ? Math.max(lastRead, entries[entries.length - 1]!.seq) : lastRead;
        } catch {
          // The store is unreachable for now: the next heartbeat tries again.
        } finally {
          reading = false;
        }
      };
      const heartbeat = setInterval(() => {
        void catchUp();
        raw.write(
          `event: heartbeat\ndata: ${JSON.stringify({ cursor, time: Math.floor(Date.now() / 1000) })}\n\n`,
        );
      }, deps.heartbeatMs);
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        release(client);
        clearInterval(heartbeat);
        unsubscribe();
        streams.delete(end);
        if (!raw.writableEnded) raw.end();
      };
      streams.add(end);
      request.raw.on('close', end);
      raw.on('close', end);
      // A client that left while the backlog was read frees its slot now, not never.
      if (raw.destroyed) end();
    },
  );
};
