// A real three-node Redis Cluster for a test file: started on free ports in a folder of its own,
// without persistence, and stopped (the folder removed) when the file's tests end.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';

function missing(command: string): boolean {
  const r = spawnSync(command, ['--version'], { stdio: 'ignore' });
  return r.error !== undefined || r.status !== 0;
}

/** Why cluster suites skip; undefined when redis-server and redis-cli are on the PATH. */
export const skipWithoutRedisCluster: string | undefined = (() => {
  const absent = ['redis-server', 'redis-cli'].filter(missing);
  return absent.length > 0 ? `Redis Cluster not startable: no ${absent.join(' or ')} on the PATH` : undefined;
})();

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** Ports P whose cluster bus port P + 10000 is free too. */
async function clusterPorts(n: number): Promise<number[]> {
  const out: number[] = [];
  while (out.length < n) {
    const p = 20_000 + Math.floor(Math.random() * 20_000);
    if (out.includes(p) || out.includes(p + 10_000) || out.includes(p - 10_000)) continue;
    if ((await portFree(p)) && (await portFree(p + 10_000))) out.push(p);
  }
  return out;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const started = Date.now();
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() - started > timeoutMs) throw new Error(`Redis Cluster: ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface RedisClusterFixture {
  ports: number[];
  /** The seed nodes, comma-separated, as TESSERA_REDIS_URL takes them with TESSERA_REDIS_CLUSTER. */
  url: string;
  /** A plain client on one node (CLUSTER commands, KEYSLOT). */
  node(port: number): Redis;
  stop(): Promise<void>;
}

/** Starts three masters, assigns the slots across them and waits for `cluster_state:ok` on each. */
export async function startRedisCluster(): Promise<RedisClusterFixture> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tessera-redis-cluster-'));
  const ports = await clusterPorts(3);
  const servers: ChildProcess[] = [];
  const clients: Redis[] = [];
  const stop = async () => {
    for (const c of clients) c.disconnect();
    await Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.exitCode !== null || s.signalCode !== null) return resolve();
            s.once('exit', () => resolve());
            s.kill('SIGKILL');
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      const server = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          path.join(dir, `nodes-${port}.conf`),
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'no',
          '--daemonize',
          'no',
        ],
        { stdio: 'ignore' },
      );
      servers.push(server);
    }
    const node = (port: number) => {
      const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
      c.on('error', () => {});
      clients.push(c);
      return c;
    };
    const admins = ports.map(node);
    for (const a of admins) await until('a node answers PING', async () => (await a.ping()) === 'PONG');
    const create = spawnSync(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    if (create.status !== 0)
      throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    for (const a of admins) {
      await until('cluster_state:ok', async () => {
        const info = (await a.cluster('INFO')) as string;
        return info.includes('cluster_state:ok') && info.includes('cluster_known_nodes:3');
      });
    }
    return { ports, url: ports.map((p) => `redis://127.0.0.1:${p}`).join(','), node, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
