// HTTP load from this process with autocannon; every bench's runs go through here.
import autocannon from 'autocannon';
import { quantile, type Run } from './stats.js';

export type LoadOptions = autocannon.Options & { connections: number };

/**
 * One autocannon run; `repeats` is read when it ends (see Run.repeats). p50 and p99 come from
 * every 2xx answer's own latency (autocannon's `response` event, fractional ms), not from
 * autocannon's histogram, which keeps whole milliseconds.
 */
export function cannon(opts: LoadOptions, repeats = () => 0): Promise<Run> {
  const latencies: number[] = [];
  return new Promise((resolve, reject) => {
    const instance = autocannon(opts, (err, r) => {
      if (err) return reject(err);
      const seconds = (r.finish.getTime() - r.start.getTime()) / 1000;
      latencies.sort((a, b) => a - b);
      resolve({
        requests: r.requests.total,
        seconds,
        rps: r.requests.total / seconds,
        p50: quantile(latencies, 0.5),
        p99: quantile(latencies, 0.99),
        failures: r.non2xx + r.errors + r.timeouts,
        repeats: repeats(),
      });
    });
    instance.on('response', (_client, status: number, _bytes, ms: number) => {
      if (status >= 200 && status < 300) latencies.push(ms);
    });
  });
}

/** GET `url` with the same headers on every request. */
export function getRun(
  url: string,
  seconds: number,
  connections: number,
  headers: Record<string, string> = {},
): Promise<Run> {
  return cannon({ url, duration: seconds, connections, headers });
}

/** GET `url`, each connection with its own headers from `perConnection` (taken in turn). */
export function getPerConnection(
  url: string,
  seconds: number,
  connections: number,
  perConnection: Record<string, string>[],
): Promise<Run> {
  let next = 0;
  return cannon({
    url,
    duration: seconds,
    connections,
    setupClient: (client) => client.setHeaders(perConnection[next++ % perConnection.length]!),
  });
}

/** GET `url` with the next value of `pool` (round-robin) in `header` on every request. */
export function getRotating(
  url: string,
  seconds: number,
  connections: number,
  header: string,
  pool: readonly string[],
): Promise<Run> {
  let i = 0;
  return cannon({
    url,
    duration: seconds,
    connections,
    requests: [
      {
        method: 'GET',
        setupRequest: (req) => {
          const value = pool[i++ % pool.length]!;
          return { ...req, headers: { ...req.headers, [header]: value } };
        },
      },
    ],
  });
}
