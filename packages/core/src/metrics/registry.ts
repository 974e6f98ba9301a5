/**
 * Counters, gauges and histograms in Prometheus's model, kept as plain numbers. A labelled series
 * (a "child") is resolved once, where the config is compiled, and the request path only adds to
 * its fields: no label objects or hashing per request (prom-client hashes the labels on every
 * inc/observe of a child). A scrape takes a snapshot (JSON, so cluster workers can send theirs
 * to the primary), merges snapshots, and renders the text format.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram'
/** How the primary of `workers` combines the workers' values of a series: added, or the largest. */
export type Aggregate = 'sum' | 'max'

export class CounterChild {
  value = 0
  inc (n = 1): void { this.value += n }
}

export class GaugeChild {
  value = 0
  set (v: number): void { this.value = v }
  inc (n = 1): void { this.value += n }
  dec (n = 1): void { this.value -= n }
}

export class HistogramChild {
  /** Observations per bucket (not cumulative; the last is +Inf). */
  readonly counts: number[]
  sum = 0
  count = 0
  constructor (private readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0)
  }

  observe (v: number): void {
    const b = this.bounds
    let i = 0
    while (i < b.length && v > (b[i] as number)) i++
    ;(this.counts[i] as number)++
    this.sum += v
    this.count++
  }
}

type Child = CounterChild | GaugeChild | HistogramChild

export interface SeriesSnapshot {
  labels: string[]
  value?: number
  counts?: number[]
  sum?: number
  count?: number
}

export interface FamilySnapshot {
  name: string
  help: string
  type: MetricType
  labelNames: string[]
  aggregate: Aggregate
  buckets?: number[]
  series: SeriesSnapshot[]
}

export type MetricsSnapshot = FamilySnapshot[]

export class Family<C extends Child> {
  readonly children = new Map<string, { labels: string[], child: C }>()
  constructor (
    readonly name: string,
    readonly help: string,
    readonly type: MetricType,
    readonly labelNames: readonly string[],
    readonly aggregate: Aggregate,
    private readonly make: () => C,
    readonly buckets?: readonly number[]
  ) {}

  /** The series of these label values (in `labelNames` order), made on first use: call it at compile time, keep the child. */
  child (...values: string[]): C {
    if (values.length !== this.labelNames.length) throw new RangeError(`metric ${this.name} takes ${this.labelNames.length} label values (${this.labelNames.join(', ')}), got ${values.length}`)
    const key = values.join('\u0000')
    let entry = this.children.get(key)
    if (entry === undefined) {
      entry = { labels: values, child: this.make() }
      this.children.set(key, entry)
    }
    return entry.child
  }

  snapshot (): FamilySnapshot {
    const series: SeriesSnapshot[] = []
    for (const { labels, child } of this.children.values()) {
      if (child instanceof HistogramChild) series.push({ labels, counts: [...child.counts], sum: child.sum, count: child.count })
      else series.push({ labels, value: child.value })
    }
    return { name: this.name, help: this.help, type: this.type, labelNames: [...this.labelNames], aggregate: this.aggregate, ...(this.buckets === undefined ? {} : { buckets: [...this.buckets] }), series }
  }
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/

/** Seconds, from 5 ms to 60 s: a proxy's answers, fast static files to slow upstreams. */
export const DEFAULT_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

/**
 * The metrics of one process. Handlers and plugins register families at compile time through
 * `env.metrics` (a family of the same name and shape is shared; another shape is an error) and
 * keep the children they will update; `onCollect` callbacks set gauges from live state just
 * before each scrape.
 */
export class MetricsRegistry {
  readonly families = new Map<string, Family<Child>>()
  private readonly collectors: Array<() => void> = []

  counter (name: string, help: string, labelNames: readonly string[] = []): Family<CounterChild> {
    return this.family(name, help, 'counter', labelNames, 'sum', () => new CounterChild())
  }

  gauge (name: string, help: string, labelNames: readonly string[] = [], aggregate: Aggregate = 'sum'): Family<GaugeChild> {
    return this.family(name, help, 'gauge', labelNames, aggregate, () => new GaugeChild())
  }

  histogram (name: string, help: string, labelNames: readonly string[] = [], buckets: readonly number[] = DEFAULT_BUCKETS): Family<HistogramChild> {
    return this.family(name, help, 'histogram', labelNames, 'sum', () => new HistogramChild(buckets), buckets)
  }

  /**
   * Runs before every snapshot: set gauges from live state (connections open, peers down).
   * Returns the way to stop it, for an object that goes away before the registry (a reload
   * keeps the registry and drops the listeners, pools and tunnels it no longer has).
   */
  onCollect (fn: () => void): () => void {
    this.collectors.push(fn)
    return () => {
      const i = this.collectors.indexOf(fn)
      if (i >= 0) this.collectors.splice(i, 1)
    }
  }

  snapshot (): MetricsSnapshot {
    for (const fn of this.collectors) fn()
    return [...this.families.values()].map((f) => f.snapshot())
  }

  private family<C extends Child> (name: string, help: string, type: MetricType, labelNames: readonly string[], aggregate: Aggregate, make: () => C, buckets?: readonly number[]): Family<C> {
    const known = this.families.get(name)
    if (known !== undefined) {
      if (known.type !== type || known.labelNames.join(',') !== labelNames.join(',')) {
        throw new RangeError(`metric ${name} is already registered as a ${known.type} with labels (${known.labelNames.join(', ')})`)
      }
      return known as unknown as Family<C>
    }
    if (!NAME.test(name)) throw new RangeError(`metric name ${JSON.stringify(name)} is not a Prometheus name`)
    for (const l of labelNames) if (!LABEL.test(l) || l === 'le') throw new RangeError(`label name ${JSON.stringify(l)} of ${name} is not a Prometheus label name`)
    const f = new Family<C>(name, help, type, [...labelNames], aggregate, make, buckets === undefined ? undefined : [...buckets])
    this.families.set(name, f as unknown as Family<Child>)
    return f
  }
}

/** The workers' snapshots as one: each series added (or the largest, for `max` families). */
export function mergeSnapshots (all: readonly MetricsSnapshot[]): MetricsSnapshot {
  if (all.length === 1) return all[0] as MetricsSnapshot
  const out = new Map<string, { family: FamilySnapshot, byKey: Map<string, SeriesSnapshot> }>()
  for (const snap of all) {
    for (const f of snap) {
      let m = out.get(f.name)
      if (m === undefined) {
        m = { family: { ...f, series: [] }, byKey: new Map() }
        out.set(f.name, m)
      }
      for (const s of f.series) {
        const key = s.labels.join('\u0000')
        const have = m.byKey.get(key)
        if (have === undefined) {
          const copy: SeriesSnapshot = { ...s, ...(s.counts === undefined ? {} : { counts: [...s.counts] }) }
          m.byKey.set(key, copy)
          m.family.series.push(copy)
        } else if (s.counts !== undefined && have.counts !== undefined) {
          for (let i = 0; i < s.counts.length; i++) have.counts[i] = (have.counts[i] ?? 0) + (s.counts[i] as number)
          have.sum = (have.sum ?? 0) + (s.sum ?? 0)
          have.count = (have.count ?? 0) + (s.count ?? 0)
        } else {
          have.value = f.aggregate === 'max' ? Math.max(have.value ?? 0, s.value ?? 0) : (have.value ?? 0) + (s.value ?? 0)
        }
      }
    }
  }
  return [...out.values()].map((m) => m.family)
}

const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
const escapeHelp = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
const num = (v: number): string => Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v)

function labelText (names: readonly string[], values: readonly string[], extra?: string): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i] ?? '')}"`)
  if (extra !== undefined) parts.push(extra)
  return parts.length === 0 ? '' : `{${parts.join(',')}}`
}

/** Prometheus's text exposition format (version 0.0.4). */
export function renderText (snap: MetricsSnapshot): string {
  let out = ''
  for (const f of snap) {
    out += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`
    for (const s of f.series) {
      if (f.type !== 'histogram') { out += `${f.name}${labelText(f.labelNames, s.labels)} ${num(s.value ?? 0)}\n`; continue }
      const bounds = f.buckets ?? []
      let cumulative = 0
      for (let i = 0; i <= bounds.length; i++) {
        cumulative += s.counts?.[i] ?? 0
        const le = i < bounds.length ? num(bounds[i] as number) : '+Inf'
        out += `${f.name}_bucket${labelText(f.labelNames, s.labels, `le="${le}"`)} ${cumulative}\n`
      }
      out += `${f.name}_sum${labelText(f.labelNames, s.labels)} ${num(s.sum ?? 0)}\n`
      out += `${f.name}_count${labelText(f.labelNames, s.labels)} ${s.count ?? 0}\n`
    }
  }
  return out
}

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
