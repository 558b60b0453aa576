import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface JwksServer {
  url: string;
  origin: string;
  requests: number;
  keys: unknown[];
  cacheControl: string;
  status: number;
  close(): Promise<void>;
}

export async function startJwksServer(
  keys: unknown[],
  cacheControl = 'public, max-age=300',
): Promise<JwksServer> {
  const state = { requests: 0, keys, cacheControl, status: 200 };
  const server: Server = createServer((req, res) => {
    if (req.url !== '/.well-known/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    state.requests++;
    if (state.status !== 200) {
      res.writeHead(state.status).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': state.cacheControl });
    res.end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return Object.defineProperties(
    {
      url: `${origin}/.well-known/jwks.json`,
      origin,
      close: () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    },
    {
      requests: { get: () => state.requests, set: (v: number) => (state.requests = v), enumerable: true },
      keys: { get: () => state.keys, set: (v: unknown[]) => (state.keys = v), enumerable: true },
      cacheControl: {
        get: () => state.cacheControl,
        set: (v: string) => (state.cacheControl = v),
        enumerable: true,
      },
      status: { get: () => state.status, set: (v: number) => (state.status = v), enumerable: true },
    },
  ) as JwksServer;
}
