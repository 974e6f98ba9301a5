/**
 * A limitReq zone in memory holds at most `max` keys and evicts the least recently used one, as
 * nginx's full zone does. A key in use is moved up only once it has fallen into the older half,
 * so these rows check what that may and may not change: which key goes when the table is full.
 */
import { test } from 'tap'
import { checkBucket, MemoryBuckets } from '@proxyctl/core/internal'

interface Row { name: string, max: number, steps: string[], kept: string[], gone: string[] }

// Steps: `+k` creates key k, `k` uses it (get).
const rows: Row[] = [
  { name: 'a full table evicts the oldest key', max: 4, steps: ['+a', '+b', '+c', '+d', '+e'], kept: ['b', 'c', 'd', 'e'], gone: ['a'] },
  { name: 'a key used after falling into the older half is kept; the next oldest goes', max: 4, steps: ['+a', '+b', '+c', '+d', 'a', '+e'], kept: ['a', 'c', 'd', 'e'], gone: ['b'] },
  { name: 'a key used while still in the newer half stays where it is, and is not evicted', max: 8, steps: ['+a', '+b', '+c', '+d', '+e', '+f', '+g', '+h', 'h', '+i'], kept: ['b', 'h', 'i'], gone: ['a'] },
  { name: 'a table of one key keeps the newest', max: 1, steps: ['+a', 'a', '+b'], kept: ['b'], gone: ['a'] },
  {
    name: 'a key used between every two new keys survives a stream of ten times the table in new keys',
    max: 100,
    steps: ['+hot', ...Array.from({ length: 1000 }, (_, i) => [`+k${i}`, 'hot']).flat()],
    kept: ['hot', 'k999', 'k901'],
    gone: ['k0', 'k899']
  }
]

for (const row of rows) {
  test(row.name, async (t) => {
    const table = new MemoryBuckets(row.max)
    for (const s of row.steps) {
      if (s.startsWith('+')) table.create(s.slice(1), { excess: 0, last: 0 })
      else if (table.get(s) === undefined) t.fail(`${s} is gone when used`)
    }
    t.ok(table.size <= row.max, `at most ${row.max} keys`)
    for (const k of row.kept) t.ok(table.get(k) !== undefined, `${k} kept`)
    for (const k of row.gone) t.equal(table.get(k), undefined, `${k} evicted`)
  })
}

// limit_req's verdicts for one key, requests at the given ms: rate in r/s, burst and delay in
// requests (nginx's units ×1000 inside). A delay is whole ms, as nginx's: one under 1 ms passes.
const verdicts: Array<{ name: string, rate: number, burst: number, delay: number, at: number[], expect: string[] }> = [
  { name: 'a first request passes and costs nothing', rate: 1, burst: 0, delay: 0, at: [0], expect: ['pass'] },
  { name: 'over the rate with no burst is refused', rate: 1, burst: 0, delay: 0, at: [0, 10, 20], expect: ['pass', 'busy', 'busy'] },
  { name: 'within the burst without nodelay waits for its turn', rate: 10, burst: 5, delay: 0, at: [0, 0, 0], expect: ['pass', 'delay 100', 'delay 200'] },
  { name: 'within delay= passes at once, beyond it waits', rate: 10, burst: 5, delay: 2, at: [0, 0, 0, 0], expect: ['pass', 'pass', 'pass', 'delay 100'] },
  { name: 'a wait under 1 ms is no wait', rate: 1_000_000, burst: 100, delay: 0, at: [0, 0, 0], expect: ['pass', 'pass', 'pass'] },
  { name: 'time drains the excess: at the rate passes, faster is refused', rate: 10, burst: 0, delay: 0, at: [0, 100, 200, 250], expect: ['pass', 'pass', 'pass', 'busy'] }
]
for (const v of verdicts) {
  test(`limitReq: ${v.name}`, async (t) => {
    const table = new MemoryBuckets(16)
    const got = v.at.map((ms) => {
      const r = checkBucket(table, 'k', v.rate * 1000, v.burst * 1000, v.delay * 1000, ms)
      return r.kind === 'delay' ? `delay ${r.delay}` : r.kind
    })
    t.same(got, v.expect)
  })
}
