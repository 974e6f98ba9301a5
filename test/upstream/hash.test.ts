import t from 'tap'
import {
  ConsistentHashBalancer, HashBalancer, Peer, chashHostPort, crc32, type Balancer
} from '../../packages/plugins/src/upstream/index.js'
import { tableCrc32 } from '../../packages/plugins/src/upstream/crc32.js'
import { countBy, makePeers } from './helpers/peers.js'

const KEYS = Array.from({ length: 10_000 }, (_, i) => `/item/${i}?v=${i * 7919}`)

function servers (n: number, from = 1): Peer[] {
  return Array.from({ length: n }, (_, i) => new Peer({ address: `10.0.0.${from + i}:8080` }))
}

function mapKeys (b: Balancer, keys = KEYS): string[] {
  return keys.map((key) => b.select({ key, tried: new Set() }, 0)?.address ?? '-')
}

function moved (a: string[], b: string[]): number {
  let n = 0
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++
  return n / a.length
}

t.test('crc32 is the IEEE CRC-32 nginx uses, and continues a previous value', async (t) => {
  t.equal(crc32('123456789'), 0xcbf43926, 'check value')
  t.equal(crc32(''), 0)
  t.equal(tableCrc32('123456789'), 0xcbf43926, 'table fallback: check value')
  for (const s of ['a', 'hello world', '/äöü/\u2603', '10.0.0.1\u00008080']) {
    t.equal(tableCrc32(s), crc32(s), `fallback agrees on ${JSON.stringify(s)}`)
  }
  t.equal(crc32('world', crc32('hello ')), crc32('hello world'), 'crc32(b, crc32(a)) = crc32(a + b)')
  t.equal(tableCrc32('world', tableCrc32('hello ')), crc32('hello world'), 'fallback continues too')
})

t.test('consistent hash splits a server name into host and port as nginx', async (t) => {
  const table: Array<[string, string, string]> = [
    ['127.0.0.1:8080', '127.0.0.1', '8080'],
    ['[::1]:8080', '[::1]', '8080'],
    ['backend.example.com', 'backend.example.com', ''],
    ['unix:/run/app.sock', '/run/app.sock', ''],
    ['UNIX:/run/app.sock', '/run/app.sock', ''],
    ['host:port', 'host:port', '']
  ]
  for (const [server, host, port] of table) t.same(chashHostPort(server), { host, port }, server)
})

t.test('the ring has 160 points per unit of weight', async (t) => {
  const b = new ConsistentHashBalancer([new Peer({ address: 'x:1', weight: 2 }), new Peer({ address: 'y:1' })])
  t.equal(b.points.length, 480)
  t.ok(b.points.every((p, i) => i === 0 || b.points[i - 1].hash < p.hash), 'sorted, no duplicates')
})

for (const [name, make] of [['plain', (p: Peer[]) => new HashBalancer(p)], ['consistent', (p: Peer[]) => new ConsistentHashBalancer(p)]] as const) {
  t.test(`${name} hash: the same key always goes to the same peer`, async (t) => {
    const b = make(servers(5))
    const first = mapKeys(b, KEYS.slice(0, 200))
    t.same(mapKeys(b, KEYS.slice(0, 200)), first, 'second pass identical')
    t.same(mapKeys(make(servers(5)), KEYS.slice(0, 200)), first, 'a new balancer with the same servers agrees')
    t.equal(new Set(first).size, 5, 'keys spread over all peers')
  })

  t.test(`${name} hash: an empty or missing key is round robin`, async (t) => {
    const b = make(makePeers(1, 1, 1))
    const picks = Array.from({ length: 6 }, (_, i) => b.select({ key: i % 2 ? '' : undefined, tried: new Set() }, 0)?.address)
    t.same(countBy(picks as string[]), { a: 2, b: 2, c: 2 })
  })

  t.test(`${name} hash: an unavailable or tried peer moves only its own keys`, async (t) => {
    const peers = servers(4)
    const b = make(peers)
    const keys = KEYS.slice(0, 1000)
    const before = mapKeys(b, keys)
    peers[2].down = true
    const after = mapKeys(b, keys)
    const victim = peers[2].address
    t.ok(keys.every((_, i) => before[i] === victim ? after[i] !== victim : after[i] === before[i]), 'only the down peer\'s keys moved')
    peers[2].down = false
    const key = keys[0]
    const first = peers.find((p) => p.address === before[0])!
    const retry = b.select({ key, tried: new Set([first]) }, 0)
    t.ok(retry !== null && retry !== first, 'the retry goes to another peer')
  })
}

t.test('plain hash is Cache::Memcached\'s: bits 16..30 of crc32(key), modulo total weight', async (t) => {
  const peers = makePeers(2, 3, 1) // owns points a:0-1 b:2-4 c:5
  const b = new HashBalancer(peers)
  const keys = KEYS.slice(0, 300)
  const want = keys.map((key) => {
    const w = ((crc32(key) >>> 16) & 0x7fff) % 6
    return w < 2 ? 'a' : w < 5 ? 'b' : 'c'
  })
  t.same(mapKeys(b, keys), want, '300 keys')
})

t.test('plain hash rehashes with the round number prefixed to the key', async (t) => {
  const peers = makePeers(1, 1, 1)
  peers[0].down = true
  const b = new HashBalancer(peers)
  const keys = KEYS.slice(0, 300)
  const want = keys.map((key) => {
    let sum = 0
    for (let r = 0; r <= 20; r++) {
      sum += (crc32(r ? `${r}${key}` : key) >>> 16) & 0x7fff
      if (sum % 3 !== 0) return sum % 3 === 1 ? 'b' : 'c'
    }
    return 'round robin'
  })
  t.same(mapKeys(b, keys), want, '300 keys')
})

t.test('consistent hash: the key goes to the first ring point at or after crc32(key)', async (t) => {
  const b = new ConsistentHashBalancer(servers(3))
  const keys = KEYS.slice(0, 300)
  const want = keys.map((key) => (b.points.find((p) => p.hash >= crc32(key)) ?? b.points[0]).server)
  t.same(mapKeys(b, keys), want, '300 keys')
})

t.test('removing or adding one of N servers moves about 1/N of 10,000 keys with consistent hash, most with plain hash', async (t) => {
  for (let n = 4; n <= 10; n++) {
    const all = servers(n + 1)
    const base = all.slice(0, n)
    const fewer = base.slice(0, n - 1) // last one removed
    const chash = mapKeys(new ConsistentHashBalancer(base))
    const removed = mapKeys(new ConsistentHashBalancer(fewer))
    const added = mapKeys(new ConsistentHashBalancer(all))
    const gone = base[n - 1].address
    const extra = all[n].address

    const fracRemoved = moved(chash, removed)
    t.ok(fracRemoved > 0.4 / n && fracRemoved < 1.6 / n, `consistent, ${n} -> ${n - 1}: ${(fracRemoved * 100).toFixed(1)}% moved (1/N = ${(100 / n).toFixed(1)}%)`)
    t.ok(chash.every((p, i) => p === gone || removed[i] === p), `consistent, ${n} -> ${n - 1}: only the removed server's keys moved`)

    const fracAdded = moved(chash, added)
    t.ok(fracAdded > 0.4 / (n + 1) && fracAdded < 1.6 / (n + 1), `consistent, ${n} -> ${n + 1}: ${(fracAdded * 100).toFixed(1)}% moved`)
    t.ok(chash.every((p, i) => added[i] === p || added[i] === extra), `consistent, ${n} -> ${n + 1}: keys moved only to the new server`)

    const plain = mapKeys(new HashBalancer(base))
    const plainRemoved = moved(plain, mapKeys(new HashBalancer(fewer)))
    const plainAdded = moved(plain, mapKeys(new HashBalancer(all)))
    t.ok(plainRemoved > 0.5, `plain, ${n} -> ${n - 1}: ${(plainRemoved * 100).toFixed(1)}% moved`)
    t.ok(plainAdded > 0.5, `plain, ${n} -> ${n + 1}: ${(plainAdded * 100).toFixed(1)}% moved`)
  }
})

t.test('consistent hash spreads keys in proportion to weight', async (t) => {
  const peers = [new Peer({ address: 'a:80', weight: 1 }), new Peer({ address: 'b:80', weight: 3 })]
  const counts = countBy(mapKeys(new ConsistentHashBalancer(peers)))
  const share = counts['b:80'] / KEYS.length
  t.ok(share > 0.65 && share < 0.85, `weight 3 of 4 got ${(share * 100).toFixed(1)}%`)
})

t.test('consistent hash: peers sharing a server name share its points, round robin among them', async (t) => {
  const peers = [
    new Peer({ address: '10.0.0.1:80', server: 'app:80' }),
    new Peer({ address: '10.0.0.2:80', server: 'app:80' }),
    new Peer({ address: '10.0.0.3:80', server: 'db:80' })
  ]
  const b = new ConsistentHashBalancer(peers)
  t.equal(b.points.length, 320, 'the second app address adds only duplicate points')
  const key = KEYS.find((k) => (b.points.find((p) => p.hash >= crc32(k)) ?? b.points[0]).server === 'app:80')!
  const picks = Array.from({ length: 4 }, () => b.select({ key, tried: new Set() }, 0)?.address)
  t.same(picks, ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.1:80', '10.0.0.2:80'])
})
