// The arithmetic every bench report shares: medians over rounds, quantiles, ratios to a ceiling.

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The q-quantile (nearest rank) of values already sorted ascending. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** One load run against one cell. */
export interface Run {
  requests: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  /** non-2xx answers, connection errors and timeouts. */
  failures: number;
  /** Refresh tokens sent a second time, access tokens presented a second time, or pool shortfalls. */
  repeats: number;
  /** CPU µs (user + system, all threads) the server process used per request, where measured. */
  serverCpuMicros?: number;
}

export interface RoundRun extends Run {
  /** rps over the rps of the ceiling measured in the same round. */
  ratio: number;
}

/** A cell's figures over all rounds: medians, and each round's ratio to its ceiling. */
export interface Row {
  scenario: string;
  rps: number;
  ratio: number;
  p50: number;
  p99: number;
  failures: number;
  repeats: number;
  /** Median over the rounds of the server's CPU µs per request; NaN where not measured. */
  serverCpuMicros: number;
  rounds: RoundRun[];
}

/**
 * Ratios of each round's runs to that round's ceiling (`ceilings[r]`), then per cell the median
 * of its rounds: rps, ratio (the median of the per-round ratios, not the ratio of the medians),
 * p50 and p99; failures and repeats are summed.
 */
export function summariseRounds(scenario: string, runs: readonly Run[], ceilings: readonly number[]): Row {
  if (runs.length !== ceilings.length)
    throw new Error(`${scenario}: ${runs.length} runs, ${ceilings.length} ceilings`);
  const rounds = runs.map((run, r) => ({
    ...run,
    ratio: ceilings[r]! > 0 ? run.rps / ceilings[r]! : Number.NaN,
  }));
  return {
    scenario,
    rps: median(rounds.map((x) => x.rps)),
    ratio: median(rounds.map((x) => x.ratio)),
    p50: median(rounds.map((x) => x.p50)),
    p99: median(rounds.map((x) => x.p99)),
    failures: rounds.reduce((a, x) => a + x.failures, 0),
    repeats: rounds.reduce((a, x) => a + x.repeats, 0),
    serverCpuMicros: median(rounds.map((x) => x.serverCpuMicros ?? Number.NaN)),
    rounds,
  };
}

/** Bytes per item from two (count, bytes) points: the slope, so fixed overhead drops out. */
export function bytesPerItem(
  a: { count: number; bytes: number },
  b: { count: number; bytes: number },
): number {
  if (b.count === a.count) return Number.NaN;
  return (b.bytes - a.bytes) / (b.count - a.count);
}

/** A goal, checked: `met` is false when the figure is missing (NaN), never silently true. */
export interface Goal {
  text: string;
  met: boolean;
  detail: string;
}

export function goal(text: string, met: boolean | undefined, detail: string): Goal {
  return { text, met: met === true, detail };
}
