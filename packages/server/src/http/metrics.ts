/**
 * A few Prometheus counters and gauges, in text exposition format. No dependency needed. A gauge
 * may be read from a store: one whose read fails is left out of that scrape, the rest still answer.
 */
export class Metrics {
  private readonly counters = new Map<string, number>();
  private readonly help = new Map<string, string>();
  private readonly gauges = new Map<string, () => number | Promise<number>>();

  inc(name: string, labels: Record<string, string> = {}, by = 1): void {
    const key = `${name}${formatLabels(labels)}`;
    this.counters.set(key, (this.counters.get(key) ?? 0) + by);
  }

  describe(name: string, help: string): void {
    this.help.set(name, help);
  }

  gauge(name: string, help: string, read: () => number | Promise<number>): void {
    this.help.set(name, help);
    this.gauges.set(name, read);
  }

  get(name: string, labels: Record<string, string> = {}): number {
    return this.counters.get(`${name}${formatLabels(labels)}`) ?? 0;
  }

  async render(): Promise<string> {
    const lines: string[] = [];
    const byName = new Map<string, string[]>();
    for (const [key, value] of this.counters) {
      const name = key.replace(/\{.*$/, '');
      byName.set(name, [...(byName.get(name) ?? []), `${key} ${value}`]);
    }
    for (const [name, samples] of [...byName].sort()) {
      if (this.help.has(name)) lines.push(`# HELP ${name} ${this.help.get(name)}`);
      lines.push(`# TYPE ${name} counter`, ...samples);
    }
    const gauges = [...this.gauges];
    const values = await Promise.allSettled(gauges.map(([, read]) => read()));
    gauges.forEach(([name], i) => {
      const value = values[i]!;
      if (value.status === 'rejected') return;
      lines.push(`# HELP ${name} ${this.help.get(name)}`, `# TYPE ${name} gauge`, `${name} ${value.value}`);
    });
    return `${lines.join('\n')}\n`;
  }
}

function formatLabels(labels: Record<string, string>): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  return `{${entries.map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`).join(',')}}`;
}
