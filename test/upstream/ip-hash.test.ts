import t from 'tap'
import { IpHashBalancer, ipHashKey, type Peer } from '../../packages/plugins/src/upstream/index.js'
import { countBy, makePeers } from './helpers/peers.js'

const pick = (b: IpHashBalancer, clientAddress: string | undefined, tried = new Set<Peer>()) =>
  b.select({ clientAddress, tried }, 0)?.address ?? '-'

t.test('the hashed key is the first three octets of IPv4, all 16 bytes of IPv6', async (t) => {
  const table: Array<[string | undefined, number[]]> = [
    ['10.1.2.3', [10, 1, 2]],
    ['::ffff:10.1.2.3', [10, 1, 2]],
    ['::1', [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]],
    ['2001:db8::ff00:42:8329', [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0x42, 0x83, 0x29]],
    ['fe80::1%eth0', [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]],
    [undefined, [0, 0, 0]],
    ['/run/client.sock', [0, 0, 0]]
  ]
  for (const [address, bytes] of table) t.same([...ipHashKey(address)], bytes, String(address))
})

// nginx-tests upstream_ip_hash.t / upstream_ip_hash_ipv6.t: exact counts pin the hash function.
t.test('clients 127.0.1.2 .. 127.0.30.2 spread as in nginx-tests', async (t) => {
  const clients = Array.from({ length: 30 }, (_, i) => `127.0.${i + 1}.2`)
  t.same(countBy(clients.map((c) => pick(new IpHashBalancer(makePeers(1, 1)), c))), { a: 15, b: 15 }, '2 peers: 15/15')
  t.same(countBy(clients.map((c) => pick(new IpHashBalancer(makePeers(1, 1, 1)), c))), { a: 10, b: 10, c: 10 }, '3 peers: 10/10/10')
  t.same(countBy(clients.map((c) => pick(new IpHashBalancer(makePeers(1)), c))), { a: 30 }, 'single peer: all')
})

t.test('clients ::1 .. ::30 spread 15/15 as in nginx-tests', async (t) => {
  const clients = Array.from({ length: 30 }, (_, i) => `::${i + 1}` /* decimal digits, as the Perl test */)
  t.same(countBy(clients.map((c) => pick(new IpHashBalancer(makePeers(1, 1)), c))), { a: 15, b: 15 })
})

t.test('clients of one /24 stick to one peer', async (t) => {
  const b = new IpHashBalancer(makePeers(1, 1, 1, 1))
  for (const net of ['192.168.7', '10.0.0', '172.16.33']) {
    const seen = new Set<string>()
    for (let host = 0; host < 256; host++) seen.add(pick(b, `${net}.${host}`))
    t.equal(seen.size, 1, `${net}.0/24 -> one peer`)
  }
  t.equal(pick(b, '::ffff:192.168.7.9'), pick(b, '192.168.7.200'), 'IPv4-mapped IPv6 hashes as the IPv4 address')
})

t.test('different networks spread over peers by weight', async (t) => {
  const b = new IpHashBalancer(makePeers(1, 1, 2))
  const counts = countBy(Array.from({ length: 4000 }, (_, i) => pick(b, `10.${i >> 8}.${i & 255}.1`)))
  t.ok(counts.a > 800 && counts.a < 1200, `a ${counts.a} of 4000, weight 1/4`)
  t.ok(counts.b > 800 && counts.b < 1200, `b ${counts.b} of 4000, weight 1/4`)
  t.ok(counts.c > 1700 && counts.c < 2300, `c ${counts.c} of 4000, weight 2/4`)
})

t.test('an unavailable or tried peer sends the client to another, others keep theirs', async (t) => {
  const peers = makePeers(1, 1, 1)
  const b = new IpHashBalancer(peers)
  const clients = Array.from({ length: 60 }, (_, i) => `10.9.${i}.1`)
  const before = clients.map((c) => pick(b, c))
  peers[1].down = true
  const after = clients.map((c) => pick(b, c))
  clients.forEach((c, i) => {
    if (before[i] !== 'b') t.equal(after[i], before[i], `${c} stays on ${before[i]}`)
    else t.not(after[i], 'b', `${c} leaves down b`)
  })
  peers[1].down = false
  const c0 = clients[0]
  const first = peers.find((p) => p.address === pick(b, c0))!
  t.not(pick(b, c0, new Set([first])), first.address, 'retry goes elsewhere')
})

t.test('when 21 hash rounds keep landing on unavailable peers, round robin finds the live one', async (t) => {
  // a is heavy, so the hash nearly always lands on it; with a unavailable the
  // 21 rounds may all land on a, and round robin then finds b.
  const peers = makePeers({ weight: 100 }, { weight: 1 })
  peers[0].down = true
  const b = new IpHashBalancer(peers)
  for (let i = 0; i < 50; i++) t.equal(pick(b, `10.0.${i}.1`), 'b', `10.0.${i}.1 -> b`)
})
