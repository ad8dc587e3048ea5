// In-process counters for the /metrics endpoint (Prometheus text format 0.0.4). Device state
// gauges are read from the store at scrape time; these count what the store does not keep.
export class Counters {
  private readonly values = new Map<string, number>();

  inc(name: string, labels: Record<string, string> = {}, by = 1): void {
    const key = name + labelText(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }

  get(name: string, labels: Record<string, string> = {}): number {
    return this.values.get(name + labelText(labels)) ?? 0;
  }

  /** Lines "name{labels} value", grouped by metric name with TYPE headers. */
  render(help: Record<string, string> = {}): string {
    const byName = new Map<string, string[]>();
    for (const [key, value] of [...this.values.entries()].sort()) {
      const name = key.split('{')[0]!;
      const lines = byName.get(name) ?? [];
      lines.push(`${key} ${value}`);
      byName.set(name, lines);
    }
    let out = '';
    for (const [name, lines] of byName) {
      if (help[name]) out += `# HELP ${name} ${help[name]}\n`;
      out += `# TYPE ${name} counter\n${lines.join('\n')}\n`;
    }
    return out;
  }
}

export function labelText(labels: Record<string, string>): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  return '{' + entries.map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',') + '}';
}
