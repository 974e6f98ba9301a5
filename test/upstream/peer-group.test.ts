import t from 'tap'
import { Peer, PeerGroup, type GroupPolicy } from '../../packages/plugins/src/upstream/index.js'
import { countBy } from './helpers/peers.js'

const SEC = 1000

function group (servers: Array<string | ConstructorParameters<typeof Peer>[0]>, policy?: GroupPolicy) {
  return PeerGroup.fromConfig(servers, { name: 'app', policy })
}
const pickOne = (g: PeerGroup, now = 0, input = {}) => g.select({ tried: new Set(), ...input }, now)?.address ?? null

t.test('select adds the peer to tried and marks it selected', async (t) => {
  const g = group([{ address: 'a', failTimeout: 10 * SEC }, 'b'])
  const tried = new Set<Peer>()
  const p = g.select({ tried }, 20 * SEC)!
  t.ok(tried.has(p))
  t.equal(p.checkedAt, 20 * SEC, 'checkedAt moved: a new check period began')
  const q = g.select({ tried }, 20 * SEC)!
  t.not(q, p, 'the retry gets the other peer')
  t.equal(g.select({ tried }, 20 * SEC), null, 'both tried: null')
  t.equal(g.lastReason?.code, 'PROXYCTL_UPSTREAM_UNAVAILABLE')
  t.equal(g.lastReason?.counts.tried, 2)
})

t.test('backup peers are used only when no primary is usable', async (t) => {
  const g = group(['a', 'b', { address: 'z', backup: true }])
  const [a, b] = g.primary
  t.same(countBy(Array.from({ length: 10 }, () => pickOne(g)!)), { a: 5, b: 5 }, 'primaries healthy: no backup')
  a.down = true
  t.same(countBy(Array.from({ length: 4 }, () => pickOne(g)!)), { b: 4 }, 'one primary down: the other')
  b.recordFailure(0)
  const sel = g.pick({ tried: new Set() }, 1)
  t.equal(sel.peer?.address, 'z', 'all primaries unavailable: backup')
  t.equal(sel.backup, true, 'pick says it is a backup')
  t.equal(pickOne(g, 10 * SEC + 1), 'b', 'b back after failTimeout: backup no longer used')
})

t.test('after every primary was tried, the retry goes to a backup', async (t) => {
  const g = group(['a', 'b', { address: 'z', backup: true }])
  const tried = new Set<Peer>()
  const seq = [g.select({ tried }, 0), g.select({ tried }, 0), g.select({ tried }, 0), g.select({ tried }, 0)]
  t.same(seq.map((p) => p?.address ?? null), ['a', 'b', 'z', null])
  t.equal(g.tries, 3, 'nginx\'s attempt budget: every peer not down')
})

t.test('tries counts peers not marked down', async (t) => {
  t.equal(group(['a', { address: 'b', down: true }, { address: 'c', backup: true }]).tries, 2)
})

t.test('a group with a single peer never makes it unavailable', async (t) => {
  const g = group([{ address: 'a', maxFails: 1 }])
  const p = g.primary[0]
  for (let i = 0; i < 10; i++) {
    t.equal(pickOne(g, i), 'a', `request ${i}`)
    p.recordFailure(i)
  }
  t.equal(p.fails, 0)
})

t.test('a single primary with a backup is subject to maxFails (nginx: not "single")', async (t) => {
  const g = group([{ address: 'a', maxFails: 1 }, { address: 'z', backup: true }])
  g.primary[0].recordFailure(0)
  t.equal(pickOne(g, 1), 'z')
})

t.test('a single peer that is down or full is not selected', async (t) => {
  const g = group([{ address: 'a', maxConns: 1 }])
  g.primary[0].acquire()
  t.equal(pickOne(g), null, 'full')
  g.primary[0].release()
  g.primary[0].down = true
  t.equal(pickOne(g), null, 'down')
})

t.test('nginx-tests upstream.t: a peer failing every 3rd request serves 6 of 30 and is disabled', async (t) => {
  const g = group([
    { address: 'p1', maxFails: 3, failTimeout: 10 * SEC },
    { address: 'p2', maxFails: 3, failTimeout: 10 * SEC }
  ])
  let p1Requests = 0
  const served: string[] = []
  for (let i = 0; i < 30; i++) {
    const now = i * 200
    const tried = new Set<Peer>()
    for (let peer = g.select({ tried }, now); peer !== null; peer = g.select({ tried }, now)) {
      if (peer.address === 'p1' && ++p1Requests % 3 === 0) {
        peer.recordFailure(now) // next upstream
        continue
      }
      peer.recordSuccess(now)
      served.push(peer.address)
      break
    }
  }
  t.same(countBy(served), { p1: 6, p2: 24 })
})

t.test('when every peer is unavailable: null, "no live upstreams", and no state reset (nginx >= 1.11.5)', async (t) => {
  const g = group([{ address: 'a', failTimeout: 10 * SEC }, { address: 'b', failTimeout: 10 * SEC }, { address: 'c', down: true }])
  const [a, b] = g.primary
  a.recordFailure(0)
  b.recordFailure(1 * SEC)
  const sel = g.pick({ tried: new Set() }, 2 * SEC)
  t.equal(sel.peer, null)
  t.match(sel.reason, { code: 'PROXYCTL_UPSTREAM_UNAVAILABLE', message: 'no live upstreams in upstream "app"', counts: { total: 3, down: 1, failed: 2, maxConns: 0, tried: 0 } })
  t.equal(g.lastReason, sel.reason, 'lastReason after select')
  t.equal(a.fails, 1, 'fails not reset')
  t.equal(pickOne(g, 3 * SEC), null, 'the next request: still no live upstreams')
  t.equal(pickOne(g, 10 * SEC + 1), 'a', 'a\'s window over: a gets a trial request')
  t.equal(g.lastReason, null, 'lastReason cleared')
  t.equal(pickOne(g, 10 * SEC + 2), null, 'during a\'s trial, nothing else is available yet')
  a.recordSuccess(10 * SEC + 3)
  t.equal(pickOne(g, 10 * SEC + 4), 'a', 'a\'s trial succeeded: a is back')
})

t.test('every peer at maxConns: null until a request ends', async (t) => {
  const g = group([{ address: 'a', maxConns: 1 }, { address: 'b', maxConns: 1 }])
  const a = g.select({ tried: new Set() }, 0)!
  a.acquire()
  g.select({ tried: new Set() }, 0)!.acquire()
  t.equal(pickOne(g), null)
  t.equal(g.lastReason?.counts.maxConns, 2)
  a.release()
  t.equal(pickOne(g), 'a')
})

t.test('every policy builds and selects through the group', async (t) => {
  const policies: Array<[string, GroupPolicy, object]> = [
    ['round-robin', 'round-robin', {}],
    ['least-conn', 'least-conn', {}],
    ['ip-hash', 'ip-hash', { clientAddress: '10.1.2.3' }],
    ['random-two', 'random-two', {}],
    ['hash', { hash: '$request_uri' }, { key: '/x' }],
    ['consistent hash', { hash: '$request_uri', consistent: true }, { key: '/x' }]
  ]
  for (const [name, policy, input] of policies) {
    const g = group(['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80'], policy)
    const p = pickOne(g, 0, input)
    t.ok(p !== null && p.startsWith('10.0.0.'), `${name}: ${p}`)
  }
  t.throws(() => group(['a'], 'fastest' as never), /unknown balance policy/)
  t.throws(() => group([]), /no servers/)
  t.throws(() => group([{ address: 'z', backup: true }]), /no primary servers/)
})

t.test('hash policies stick by key, ip-hash by client network, through the group', async (t) => {
  const servers = ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80']
  const h = group(servers, { hash: '$request_uri', consistent: true })
  t.equal(new Set(Array.from({ length: 10 }, () => pickOne(h, 0, { key: '/cart/42' }))).size, 1, 'same key, same peer')
  const ip = group(servers, 'ip-hash')
  t.equal(new Set(Array.from({ length: 10 }, (_, i) => pickOne(ip, 0, { clientAddress: `192.0.2.${i}` }))).size, 1, 'same /24, same peer')
})

t.test('least-conn balances the backups by least connections too', async (t) => {
  const g = group([{ address: 'a', down: true }, { address: 'y', backup: true }, { address: 'z', backup: true }], 'least-conn')
  g.backup[0].activeConnections = 3
  t.equal(pickOne(g), 'z')
})

t.test('a custom policy picks among the usable peers', async (t) => {
  const seen: string[][] = []
  const g = group(['a', { address: 'b', down: true }, 'c', { address: 'z', backup: true }], (input, available) => {
    seen.push(available.map((p) => p.address))
    return available.length - 1
  })
  t.equal(pickOne(g), 'c', 'index into the available list')
  t.same(seen.at(-1), ['a', 'c'], 'down b not offered')
  const tried = new Set<Peer>([g.primary[2]])
  t.equal(g.select({ tried }, 0)?.address, 'a', 'tried c not offered')
  t.equal(g.select({ tried }, 0)?.address, 'z', 'primaries exhausted: backups offered')
  t.same(seen.at(-1), ['z'])
})

t.test('a custom policy gets the request object passed in', async (t) => {
  const g = group(['a', 'b'], (input, available) => (input.request as { sticky: number }).sticky % available.length)
  t.equal(pickOne(g, 0, { request: { sticky: 3 } }), 'b')
})

t.test('a custom policy that misbehaves gives null with a balancer-error reason', async (t) => {
  const cases: Array<[string, () => number, RegExp]> = [
    ['index out of range', () => 5, /returned 5 for 2 servers/],
    ['not an integer', () => 0.5, /returned 0.5/],
    ['NaN', () => NaN, /returned NaN/],
    ['throws', () => { throw new Error('boom') }, /custom balancer threw/]
  ]
  for (const [name, fn, message] of cases) {
    const g = group(['a', 'b'], fn)
    const sel = g.pick({ tried: new Set() }, 0)
    t.equal(sel.peer, null, name)
    t.equal(sel.reason?.code, 'PROXYCTL_BALANCER_ERROR', `${name}: code`)
    t.match(sel.reason?.message, message, `${name}: message`)
  }
  const g = group(['a'], () => { throw new Error('boom') })
  t.match(g.pick({ tried: new Set() }, 0).reason?.error, { message: 'boom' }, 'the thrown error is kept')
})
