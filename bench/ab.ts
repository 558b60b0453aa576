// One hot route on two checkouts side by side: this one and another (for instance a `git worktree`
// of an earlier commit, with its own `npm ci`). Both servers run at once, on SQLite, with the
// settings of bench:core; in each round each server has its /healthz and then the scenario
// measured, and the order of the two servers alternates from round to round.
//
//   npm run bench:ab -- ../other-checkout              token-mode /auth/me (a new token every request)
//   npm run bench:ab -- ../other-checkout session-read session-mode /auth/me
//
// BENCH_ROUNDS (6), BENCH_SECONDS (5), BENCH_CONNECTIONS (16). Prints per round and medians.
import path from 'node:path';
import { cannon } from './lib/load.js';
import { type Proc, ROOT, startTessera, withServerCpu } from './lib/proc.js';
import { fmt } from './lib/report.js';
import { median, type Run } from './lib/stats.js';
import { BENCH_SETTINGS, freshTokenReads, logins, meSessions, registerUsers } from './lib/tessera.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);

const [other, scenario = 'token-read'] = process.argv.slice(2);
if (!other || !['token-read', 'session-read'].includes(scenario)) {
  console.error('usage: npm run bench:ab -- <other checkout> [token-read|session-read]');
  process.exit(2);
}

interface Side {
  name: string;
  server: Proc;
  /** The scenario on this side's server: what to do before a run, and the run. */
  reads: { prepare?: () => Promise<void>; run: () => Promise<Run> };
  rounds: { rps: number; ratio: number; cpu: number }[];
}

/** A run with its server CPU; any failure or repeated token stops the comparison. */
async function measured(side: Side, run: () => Promise<Run>): Promise<Run & { serverCpuMicros: number }> {
  const r = await withServerCpu(side.server.child.pid, run);
  if (r.failures > 0 || r.repeats > 0 || r.serverCpuMicros === undefined)
    throw new Error(`${side.name}: ${JSON.stringify(r)}`);
  return r as Run & { serverCpuMicros: number };
}

const sides: Side[] = [];
try {
  for (const [name, root] of [
    ['this checkout', ROOT],
    [`other (${other})`, path.resolve(other)],
  ] as const) {
    const server = await startTessera(BENCH_SETTINGS, [], root);
    await registerUsers(server.base);
    const base = server.base;
    const reads =
      scenario === 'token-read'
        ? freshTokenReads(base, SECONDS, CONNECTIONS)
        : await logins(base, 'session', CONNECTIONS).then((sessions) => ({
            run: () => meSessions(base, sessions, SECONDS, CONNECTIONS),
          }));
    sides.push({ name, server, reads, rounds: [] });
    await cannon({ url: `${base}/healthz`, duration: 1, connections: CONNECTIONS });
  }
  for (let r = 0; r < ROUNDS; r++) {
    for (const side of r % 2 === 0 ? sides : [...sides].reverse()) {
      const base = side.server.base;
      await side.reads.prepare?.();
      const healthz = await measured(side, () =>
        cannon({ url: `${base}/healthz`, duration: SECONDS, connections: CONNECTIONS }),
      );
      const run = await measured(side, side.reads.run);
      side.rounds.push({ rps: run.rps, ratio: run.rps / healthz.rps, cpu: run.serverCpuMicros });
      console.log(
        `round ${r + 1}, ${side.name}: ${fmt(run.rps)} req/s, ${(run.rps / healthz.rps).toFixed(2)}× its /healthz (${fmt(healthz.rps)} req/s), server CPU ${fmt(run.serverCpuMicros, 1)} µs/request`,
      );
    }
  }
} finally {
  for (const side of sides) await side.server.stop();
}

const [mine, theirs] = sides as [Side, Side];
const fewerCpu = mine.rounds.filter((x, i) => x.cpu < theirs.rounds[i]!.cpu).length;
const moreRps = mine.rounds.filter((x, i) => x.rps > theirs.rounds[i]!.rps).length;
console.log(`\n${scenario}, ${ROUNDS} rounds of ${SECONDS} s, ${CONNECTIONS} connections; medians:`);
for (const side of sides) {
  const m = (f: (x: Side['rounds'][number]) => number) => median(side.rounds.map(f));
  console.log(
    `  ${side.name}: ${fmt(m((x) => x.rps))} req/s, ${m((x) => x.ratio).toFixed(2)}× /healthz, server CPU ${fmt(
      m((x) => x.cpu),
      1,
    )} µs/request`,
  );
}
console.log(
  `  this checkout used less server CPU per request in ${fewerCpu} of ${ROUNDS} rounds and answered more requests in ${moreRps}`,
);
