// Metrics checks shared by the in-process test and the workers test: a scrape parsed into series.

/** `name{a="x",b="y"} 3` lines of a Prometheus text scrape, by name + sorted labels. */
export function parseScrape (text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line)
    if (m === null) throw new Error(`not a Prometheus line: ${line}`)
    out.set(`${m[1]}{${m[3] ?? ''}}`, Number(m[4]))
  }
  return out
}

/** The value of one series, 0 when absent. */
export function value (series: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  const key = `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',')}}`
  return series.get(key) ?? 0
}
