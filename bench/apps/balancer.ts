// A tiny round-robin load balancer (node:http, keep-alive to each backend): what sits in front of
// two account-server instances in the bench. Env: PORT, BACKENDS (comma-separated base URLs).
import http from 'node:http';

const backends = process.env.BACKENDS!.split(',').map((b) => new URL(b));
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
let next = 0;

const server = http.createServer((req, res) => {
  if (req.url === '/lb-healthz') {
    res.end('ok');
    return;
  }
  const target = backends[next++ % backends.length]!;
  const upstream = http.request(
    {
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: { ...req.headers, 'x-forwarded-for': req.socket.remoteAddress ?? '' },
      agent,
    },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(upstream);
});
server.keepAliveTimeout = 30_000;
server.listen(Number(process.env.PORT), '127.0.0.1');
process.once('SIGTERM', () => server.close(() => process.exit(0)));
