import t from 'tap'
import { Peer } from '../../packages/plugins/src/upstream/index.js'

const SEC = 1000

t.test('a config string or object becomes a peer with nginx\'s defaults', async (t) => {
  const p = Peer.from('10.0.0.1:8080')
  t.match(p, { address: '10.0.0.1:8080', server: '10.0.0.1:8080', weight: 1, maxFails: 1, failTimeout: 10 * SEC, backup: false, down: false, maxConns: 0 })
  t.equal(p.effectiveWeight, 1)
  t.match(Peer.from({ address: 'b:1', weight: 3, maxFails: 0, failTimeout: 0, backup: true, down: true, maxConns: 7 }),
    { weight: 3, maxFails: 0, failTimeout: 0, backup: true, down: true, maxConns: 7, effectiveWeight: 3 })
})

t.test('invalid settings are rejected', async (t) => {
  const bad: Array<[string, object]> = [
    ['empty address', { address: '' }],
    ['weight 0', { address: 'a', weight: 0 }],
    ['fractional weight', { address: 'a', weight: 1.5 }],
    ['negative maxFails', { address: 'a', maxFails: -1 }],
    ['negative failTimeout', { address: 'a', failTimeout: -1 }],
    ['negative maxConns', { address: 'a', maxConns: -1 }]
  ]
  for (const [name, options] of bad) t.throws(() => new Peer(options as never), name)
})

t.test('maxFails=3, failTimeout=10s: the 3rd failure disables the peer for failTimeout', async (t) => {
  const p = new Peer({ address: 'a', maxFails: 3, failTimeout: 10 * SEC })
  t.equal(p.recordFailure(0), false, '1st failure')
  t.ok(p.isAvailable(1), '1 failure: available')
  t.equal(p.recordFailure(1 * SEC), false, '2nd failure')
  t.ok(p.isAvailable(1 * SEC + 1), '2 failures: still available')
  t.equal(p.recordFailure(2 * SEC), true, '3rd failure reports "temporarily disabled"')
  const table: Array<[number, boolean]> = [
    [2 * SEC, false],
    [5 * SEC, false],
    [12 * SEC, false], // nginx's bound is inclusive: now - checked <= fail_timeout
    [12 * SEC + 1, true],
    [60 * SEC, true]
  ]
  for (const [now, available] of table) t.equal(p.isAvailable(now), available, `at ${now}ms: ${available ? 'available' : 'unavailable'}`)
  t.equal(p.availableAfter(5 * SEC), 12 * SEC, 'availableAfter: end of the window')
  t.equal(p.availableAfter(13 * SEC), undefined)
})

t.test('after failTimeout a disabled peer gets one trial request; its success restores the peer', async (t) => {
  const p = new Peer({ address: 'a', maxFails: 1, failTimeout: 10 * SEC })
  p.recordFailure(0)
  t.notOk(p.isAvailable(5 * SEC), 'disabled')
  t.ok(p.isAvailable(11 * SEC), 'window over')
  p.markSelected(11 * SEC) // the trial request
  t.notOk(p.isAvailable(11 * SEC + 1), 'while the trial is out, unavailable again')
  p.recordSuccess(12 * SEC)
  t.equal(p.fails, 0, 'success on a request of a new check period resets fails')
  t.ok(p.isAvailable(12 * SEC), 'fully available')
})

t.test('a failed trial request disables the peer for another failTimeout', async (t) => {
  const p = new Peer({ address: 'a', maxFails: 1, failTimeout: 10 * SEC })
  p.recordFailure(0)
  p.markSelected(11 * SEC)
  p.recordFailure(11 * SEC + 500)
  t.notOk(p.isAvailable(21 * SEC), 'still disabled 10s after the trial began')
  t.ok(p.isAvailable(21 * SEC + 501), 'available 10s after the trial failed')
})

t.test('successes within failTimeout of a failure do not reset the count', async (t) => {
  // nginx-tests upstream.t: a peer failing every 3rd request is disabled after 9 requests
  const p = new Peer({ address: 'a', maxFails: 3, failTimeout: 10 * SEC })
  for (let i = 1; i <= 9; i++) {
    const now = i * 100
    t.ok(p.isAvailable(now), `request ${i}: available`)
    p.markSelected(now)
    if (i % 3 === 0) p.recordFailure(now)
    else p.recordSuccess(now)
  }
  t.equal(p.fails, 3)
  t.notOk(p.isAvailable(1000), 'disabled after the 3rd failure')
})

t.test('a success on a request selected after failTimeout since the last failure forgives earlier failures', async (t) => {
  const p = new Peer({ address: 'a', maxFails: 3, failTimeout: 10 * SEC })
  p.recordFailure(0)
  p.recordFailure(1 * SEC)
  p.markSelected(5 * SEC)
  p.recordSuccess(5 * SEC)
  t.equal(p.fails, 2, 'within failTimeout: kept')
  p.markSelected(12 * SEC)
  p.recordSuccess(12 * SEC)
  t.equal(p.fails, 0, 'selected > failTimeout after the last failure: reset')
})

t.test('maxFails 0 disables failure accounting', async (t) => {
  const p = new Peer({ address: 'a', maxFails: 0, weight: 4 })
  for (let i = 0; i < 100; i++) t.equal(p.recordFailure(i), false)
  t.ok(p.isAvailable(100), 'available after 100 failures')
  t.equal(p.effectiveWeight, 4, 'weight untouched')
})

t.test('failTimeout 0: a failed peer is unavailable only at the instant of the failure', async (t) => {
  // nginx: now - checked <= 0, i.e. the rest of that second on nginx's 1 s clock
  const p = new Peer({ address: 'a', maxFails: 1, failTimeout: 0 })
  p.recordFailure(5000)
  t.notOk(p.isAvailable(5000), 'same instant: unavailable')
  t.ok(p.isAvailable(5001), 'next instant: available')
  p.markSelected(5001)
  p.recordSuccess(5002)
  t.equal(p.fails, 0, 'the next success resets')
})

t.test('a single peer is never disabled by failures', async (t) => {
  const p = new Peer({ address: 'a', maxFails: 1 })
  p.single = true
  for (let i = 0; i < 10; i++) t.equal(p.recordFailure(i), false)
  t.equal(p.fails, 0)
  t.ok(p.isAvailable(10))
})

t.test('down and maxConns make a peer unselectable', async (t) => {
  const p = new Peer({ address: 'a', maxConns: 2 })
  p.acquire()
  t.ok(p.isAvailable(0), '1 of 2')
  p.acquire()
  t.notOk(p.isAvailable(0), '2 of 2: full')
  t.ok(p.atMaxConns())
  p.release()
  t.ok(p.isAvailable(0), 'released')
  p.release()
  p.release()
  t.equal(p.activeConnections, 0, 'never below 0')
  p.down = true
  t.notOk(p.isAvailable(0), 'down')
  t.ok(new Peer({ address: 'b', maxConns: 0, down: false }).isAvailable(0), 'maxConns 0 is unlimited')
})
