import t from 'tap'
import { Peer, RoundRobinBalancer } from '../../packages/plugins/src/upstream/index.js'
import { countBy, makePeers, run } from './helpers/peers.js'

t.test('smooth weighted round robin produces nginx\'s exact interleaving', async (t) => {
  const table: Array<[number[], string]> = [
    [[5, 1, 1], 'aabacaa'],
    [[1, 1, 1], 'abc'],
    [[1, 1], 'ab'],
    [[2, 1], 'aba'],
    [[3, 1], 'aaba'],
    [[1, 2], 'bab'],
    [[4, 2, 1], 'abacaba']
  ]
  for (const [weights, cycle] of table) {
    const rr = new RoundRobinBalancer(makePeers(...weights))
    t.equal(run(rr, cycle.length * 3).join(''), cycle.repeat(3), `weights ${weights.join(':')} repeat ${cycle}`)
  }
})

t.test('weights 3:1 split 4000 picks 3:1 within 3%', async (t) => {
  const counts = countBy(run(new RoundRobinBalancer(makePeers(3, 1)), 4000))
  t.ok(Math.abs(counts.a - 3000) <= 90, `a got ${counts.a}`)
  t.ok(Math.abs(counts.b - 1000) <= 30, `b got ${counts.b}`)
})

t.test('unavailable peers are skipped', async (t) => {
  const cases: Array<[string, (b: Peer) => void]> = [
    ['down', (b) => { b.down = true }],
    ['maxConns reached', (b) => { b.activeConnections = 2 }],
    ['failed (maxFails reached within failTimeout)', (b) => { b.recordFailure(0) }]
  ]
  for (const [name, spoil] of cases) {
    const peers = makePeers({ weight: 1 }, { weight: 5, maxConns: 2 }, { weight: 1 })
    spoil(peers[1])
    t.equal(run(new RoundRobinBalancer(peers), 6, 1).join(''), 'acacac', `${name}: only a and c`)
  }
})

t.test('all peers unavailable gives null', async (t) => {
  const peers = makePeers(1, 1)
  for (const p of peers) p.down = true
  t.equal(new RoundRobinBalancer(peers).select({ tried: new Set() }, 0), null)
})

t.test('peers already tried by this request are skipped', async (t) => {
  const peers = makePeers(5, 1, 1)
  const rr = new RoundRobinBalancer(peers)
  const tried = new Set<Peer>([peers[0]])
  const first = rr.select({ tried }, 0)
  t.equal(first?.address, 'b', 'heaviest a tried: b next')
  tried.add(first!)
  t.equal(rr.select({ tried }, 0)?.address, 'c', 'then c')
  tried.add(peers[2])
  t.equal(rr.select({ tried }, 0), null, 'all tried: null')
})

t.test('a failure lowers the effective weight by weight/maxFails; it ramps back one per pick', async (t) => {
  const [a, b] = makePeers({ weight: 10, maxFails: 2 }, { weight: 10, maxFails: 2 })
  a.recordFailure(0)
  t.equal(a.effectiveWeight, 5, '10 - 10/2')
  t.equal(a.fails, 1, 'still below maxFails: available')
  const rr = new RoundRobinBalancer([a, b])
  rr.select({ tried: new Set() }, 1)
  t.equal(a.effectiveWeight, 6, 'each selection pass adds 1')
  for (let i = 0; i < 10; i++) rr.select({ tried: new Set() }, 1)
  t.equal(a.effectiveWeight, 10, 'capped at weight')
})

t.test('effective weight never goes below 0', async (t) => {
  const [a] = makePeers({ weight: 1, maxFails: 1 })
  a.recordFailure(0)
  t.equal(a.effectiveWeight, 0)
  a.recordFailure(0)
  t.equal(a.effectiveWeight, 0)
})
