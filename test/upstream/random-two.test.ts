import t from 'tap'
import { RandomTwoBalancer, type Peer } from '../../packages/plugins/src/upstream/index.js'
import { countBy, makePeers, seeded } from './helpers/peers.js'

const none = () => ({ tried: new Set<Peer>() })

t.test('of the two drawn, the less loaded peer is taken', async (t) => {
  const peers = makePeers(1, 1, 1, 1)
  peers[0].activeConnections = 10
  peers[1].activeConnections = 5
  const b = new RandomTwoBalancer(peers, { random: seeded(1) })
  const counts = countBy(Array.from({ length: 3000 }, () => b.select(none(), 0)!.address))
  t.notOk(counts.a, 'the most loaded is never taken (it loses to whichever it is paired with)')
  t.ok(counts.b > 300 && counts.b < 700, `b (loaded) wins only against a: ${counts.b}/3000 (1/6 expected)`)
  t.ok(counts.c > counts.b * 2 && counts.d > counts.b * 2, `idle c ${counts.c} and d ${counts.d} take the rest`)
})

t.test('two peers: always the less loaded', async (t) => {
  const peers = makePeers(1, 1)
  peers[1].activeConnections = 3
  const b = new RandomTwoBalancer(peers, { random: seeded(2) })
  t.same(countBy(Array.from({ length: 200 }, () => b.select(none(), 0)!.address)), { a: 200 })
})

t.test('load is compared per unit of weight', async (t) => {
  const peers = makePeers(4, 1)
  peers[0].activeConnections = 7 // 7/4 < 2/1
  peers[1].activeConnections = 2
  const b = new RandomTwoBalancer(peers, { random: seeded(3) })
  t.same(countBy(Array.from({ length: 100 }, () => b.select(none(), 0)!.address)), { a: 100 })
})

t.test('under sustained load requests spread by weight', async (t) => {
  const b = new RandomTwoBalancer(makePeers(3, 1), { random: seeded(4) })
  const picks = Array.from({ length: 800 }, () => {
    const p = b.select(none(), 0)!
    p.acquire()
    return p.address
  })
  const counts = countBy(picks)
  t.ok(Math.abs(counts.a - 600) <= 20, `a ${counts.a} of 800 (weight 3/4)`)
})

t.test('down, full and tried peers are never taken', async (t) => {
  const peers = makePeers({ weight: 1 }, { weight: 1, maxConns: 1 }, { weight: 1 }, { weight: 1 })
  peers[0].down = true
  peers[1].activeConnections = 1
  const tried = new Set<Peer>([peers[3]])
  const b = new RandomTwoBalancer(peers, { random: seeded(5) })
  t.same(countBy(Array.from({ length: 100 }, () => b.select({ tried }, 0)!.address)), { c: 100 }, 'only c is left')
  tried.add(peers[2])
  t.equal(b.select({ tried }, 0), null, 'nothing left: null')
})

t.test('a single peer is taken without drawing', async (t) => {
  let draws = 0
  const b = new RandomTwoBalancer(makePeers(1), { random: () => { draws++; return 0.5 } })
  t.equal(b.select(none(), 0)?.address, 'a')
  t.equal(draws, 0)
})

t.test('after 21 draws without two usable peers, round robin', async (t) => {
  let draws = 0
  const b = new RandomTwoBalancer(makePeers(1, 1, 1), { random: () => { draws++; return 0 } }) // always a
  t.equal(b.select(none(), 0)?.address, 'a', 'round robin\'s first pick')
  t.equal(draws, 21, 'nginx gives up when its try counter passes 20')
})
