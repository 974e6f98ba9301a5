/**
 * `resolveInterval`: hostname servers are resolved again; peers follow the address set. The
 * lookup is injected (a hostname "resolving" to loopback addresses 127.0.0.1-3, each with a
 * real upstream on the same port).
 */
import t from 'tap'
import { Pool } from 'undici'
import { UpstreamPool, type LookupAll, type PoolLogger } from '@proxyctl/plugins/internal'
import { startUpstream, type Upstream } from '../helpers/upstream.js'
import { setTimeout as sleep } from 'node:timers/promises'
import { waitFor, type Teardown } from '../helpers/lifecycle.js'
import { countBy } from './helpers/peers.js'
import { captureLogger } from './helpers/through-proxy.js'

/** Upstreams a, b, c on 127.0.0.1, .2, .3, one port; a lookup answering `answer.ips`. */
async function setup (t: Teardown, resolveInterval: number) {
  const a = await startUpstream(t, 'a', { host: '127.0.0.1', port: 0 })
  const port = Number(a.address.split(':')[1])
  const b = await startUpstream(t, 'b', { host: '127.0.0.2', port })
  const c = await startUpstream(t, 'c', { host: '127.0.0.3', port })
  const answer: { ips: string[] | Error } = { ips: ['127.0.0.1', '127.0.0.2'] }
  const calls: string[] = []
  const lookup: LookupAll = async (host) => {
    calls.push(host)
    if (answer.ips instanceof Error) throw answer.ips
    return answer.ips.map((address) => ({ address, family: 4 }))
  }
  const pool = new UpstreamPool('app', { servers: [`app.test:${port}`], resolveInterval }, {}, { lookup })
  const { logger, lines } = captureLogger()
  pool.log = logger as unknown as PoolLogger
  t.teardown(() => pool.close())
  await pool.start()
  const addrs = (): string[] => pool.peers.map((p) => p.address).sort()
  return { a, b, c, port, answer, calls, pool, lines, addrs }
}

/** Which upstream answers a GET through a peer's own connection pool. */
async function via (pool: unknown): Promise<string> {
  const res = await (pool as Pool).request({ method: 'GET', path: '/', headersTimeout: 2000, bodyTimeout: 2000 })
  await res.body.dump()
  return String(res.headers['x-upstream'])
}

t.test('re-resolution: new addresses get peers, vanished ones lose them, unchanged peers keep their state', async (t) => {
  const { answer, port, pool, lines, addrs } = await setup(t, 30)
  t.same(addrs(), [`127.0.0.1:${port}`, `127.0.0.2:${port}`], 'one peer per address at start')
  t.ok(pool.peers.every((p) => p.server === `app.test:${port}`), 'each peer keeps the configured server name (what consistent hashing hashes)')
  const keep = pool.peers.find((p) => p.address === `127.0.0.1:${port}`)!
  const gone = pool.peers.find((p) => p.address === `127.0.0.2:${port}`)!
  keep.fails = 1 // some passive state to survive
  keep.checkDown = true
  const group = pool.group

  await sleep(100)
  t.equal(pool.group, group, 'same answer: the group is not rebuilt')

  answer.ips = ['127.0.0.3', '127.0.0.1']
  await waitFor(() => addrs().includes(`127.0.0.3:${port}`), 2000, 'the new address')
  t.same(addrs(), [`127.0.0.1:${port}`, `127.0.0.3:${port}`], '127.0.0.2 removed, 127.0.0.3 added')
  t.not(pool.group, group, 'the group is rebuilt')
  t.equal(pool.peers.find((p) => p.address === `127.0.0.1:${port}`), keep, 'the unchanged address keeps its Peer')
  t.match(keep, { fails: 1, checkDown: true }, '... and its state')
  keep.checkDown = false
  keep.fails = 0
  await waitFor(() => gone.pool?.closed === true, 2000, 'the removed peer\'s connections closing')
  t.same(countBy(Array.from({ length: 10 }, () => pool.pick({ tried: new Set() }, Date.now()).peer?.address ?? '-')),
    { [`127.0.0.1:${port}`]: 5, [`127.0.0.3:${port}`]: 5 }, 'the rebuilt group balances over the new set')
  const added = pool.peers.find((p) => p.address === `127.0.0.3:${port}`)!
  t.equal(await via(added.pool), 'c', 'the new peer reaches the new address')
  t.equal(await via(keep.pool), 'a', 'the kept peer still reaches its address')
  t.match(lines.find((l) => l.level === 'info'), { upstream: 'app', added: [`127.0.0.3:${port}`], removed: [`127.0.0.2:${port}`] }, 'the change is logged')
})

t.test('re-resolution: a failed lookup keeps the current peers', async (t) => {
  const { answer, port, lines, addrs, calls } = await setup(t, 30)
  answer.ips = new Error('getaddrinfo ENOTFOUND app.test')
  const n = calls.length
  await waitFor(() => calls.length >= n + 2, 2000, 'two more lookups')
  t.same(addrs(), [`127.0.0.1:${port}`, `127.0.0.2:${port}`], 'peers unchanged')
  t.match(lines.find((l) => l.level === 'warn'), { upstream: 'app', server: `app.test:${port}`, reason: /ENOTFOUND/ }, 'the failure is logged')
  answer.ips = ['127.0.0.2']
  await waitFor(() => addrs().length === 1, 2000, 'the next good answer')
  t.same(addrs(), [`127.0.0.2:${port}`])
})

t.test('resolveInterval 0 resolves once; close() stops re-resolution', async (t) => {
  const once = await setup(t, 0)
  await sleep(100)
  t.equal(once.calls.length, 1, 'resolveInterval 0: one lookup')
  const every = await setup(t, 20)
  await waitFor(() => every.calls.length >= 3, 2000, 'lookups every 20 ms')
  await every.pool.close()
  const n = every.calls.length
  await sleep(100)
  t.equal(every.calls.length, n, 'no lookup after close()')
})
