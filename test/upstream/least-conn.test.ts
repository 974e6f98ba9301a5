import t from 'tap'
import { LeastConnBalancer, type Peer } from '../../packages/plugins/src/upstream/index.js'
import { countBy, makePeers, run } from './helpers/peers.js'

const none = () => ({ tried: new Set<Peer>() })

t.test('the peer with fewest active connections per weight is chosen', async (t) => {
  const table: Array<{ name: string, weights: number[], conns: number[], want: string }> = [
    { name: 'one busy peer is avoided', weights: [1, 1, 1], conns: [50, 0, 3], want: 'b' },
    { name: 'weight divides connections: 4/2 < 3/1', weights: [1, 2], conns: [3, 4], want: 'b' },
    { name: 'weight divides connections: 2/1 < 5/2', weights: [1, 2], conns: [2, 5], want: 'a' },
    { name: 'the idle light peer beats the busy heavy one', weights: [10, 1], conns: [1, 0], want: 'b' }
  ]
  for (const { name, weights, conns, want } of table) {
    const peers = makePeers(...weights)
    peers.forEach((p, i) => { p.activeConnections = conns[i] })
    t.equal(new LeastConnBalancer(peers).select(none(), 0)?.address, want, name)
  }
})

t.test('a peer holding many connections gets nothing while others are less loaded', async (t) => {
  const peers = makePeers(1, 1, 1)
  peers[0].activeConnections = 100
  const lc = new LeastConnBalancer(peers)
  const picks: string[] = []
  for (let i = 0; i < 60; i++) {
    const p = lc.select(none(), 0)!
    p.acquire() // requests stay open
    picks.push(p.address)
  }
  t.same(countBy(picks), { b: 30, c: 30 })
})

t.test('ties are broken by smooth weighted round robin', async (t) => {
  t.equal(run(new LeastConnBalancer(makePeers(1, 1)), 6).join(''), 'ababab', 'equal weights alternate')
  t.equal(run(new LeastConnBalancer(makePeers(5, 1, 1)), 14).join(''), 'aabacaa'.repeat(2), 'idle 5:1:1 as round robin')
  const peers = makePeers(1, 1, 1)
  peers[0].activeConnections = 1
  t.equal(run(new LeastConnBalancer(peers), 4).join(''), 'bcbc', 'round robin only among the least loaded')
})

t.test('with concurrent long requests weights are respected', async (t) => {
  const lc = new LeastConnBalancer(makePeers(3, 1))
  const picks: string[] = []
  for (let i = 0; i < 400; i++) {
    const p = lc.select(none(), 0)!
    p.acquire()
    picks.push(p.address)
  }
  t.same(countBy(picks), { a: 300, b: 100 }, 'open connections end up 3:1')
})

t.test('unavailable and tried peers are skipped', async (t) => {
  const peers = makePeers({ weight: 1 }, { weight: 1, maxConns: 1 }, { weight: 1 })
  peers[2].activeConnections = 5
  peers[1].activeConnections = 1 // at maxConns although least loaded but a
  peers[0].down = true
  t.equal(new LeastConnBalancer(peers).select(none(), 0)?.address, 'c', 'down and full skipped: the busy c remains')
  t.equal(new LeastConnBalancer(peers).select({ tried: new Set([peers[2]]) }, 0), null, 'c tried: nothing')
})
