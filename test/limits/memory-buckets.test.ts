/**
 * A limitReq zone in memory holds at most `max` keys and evicts the least recently used one, as
 * nginx's full zone does. A key in use is moved up only once it has fallen into the older half,
 * so these rows check what that may and may not change: which key goes when the table is full.
 */
import { test } from 'tap'
import { MemoryBuckets } from '@proxyctl/core/internal'

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
