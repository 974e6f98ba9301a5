/**
 * Balancers through a real proxy and real upstream servers on loopback: what nginx's selection
 * rules look like from the outside (which upstream answers, `x-upstream`).
 */
import t from 'tap'
import type { UpstreamConfig } from 'proxyctl'
import { startUpstream, type Upstream, type UpstreamHandler, echo } from '../helpers/upstream.js'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Teardown } from '../helpers/lifecycle.js'
import { countBy } from './helpers/peers.js'
import { appConfig, client, hit, hitMany, start } from './helpers/through-proxy.js'

const NAMES = 'abcdefgh'

async function upstreams (tt: Teardown, n: number, handler: UpstreamHandler = echo): Promise<Upstream[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => startUpstream(tt, NAMES[i] as string, { port: 0 }, handler)))
}

t.test('round robin: the answering sequence is nginx\'s smooth weighted round robin', async (t) => {
  const table: Array<{ rule: string, weights: number[], expect: string }> = [
    { rule: 'weights 5:1:1 give a a b a c a a, twice', weights: [5, 1, 1], expect: 'a a b a c a a a a b a c a a' },
    { rule: 'equal weights take turns', weights: [1, 1, 1], expect: 'a b c a b c' },
    { rule: 'weights 3:1 give a a b a', weights: [3, 1], expect: 'a a b a a a b a' }
  ]
  for (const c of table) {
    await t.test(c.rule, async (t) => {
      const ups = await upstreams(t, c.weights.length)
      const p = await start(t, appConfig({ servers: ups.map((u, i) => ({ address: u.address, weight: c.weights[i] })) }))
      const cl = client(t, p.url, { connections: 1 })
      const seq: string[] = []
      for (let i = 0; i < c.expect.split(' ').length; i++) seq.push((await hit(cl)).upstream)
      t.equal(seq.join(' '), c.expect)
    })
  }
})

t.test('round robin: weights 3:1 split 4000 concurrent requests 3:1 within ±3%', async (t) => {
  const ups = await upstreams(t, 2)
  const p = await start(t, appConfig({ servers: [{ address: ups[0]!.address, weight: 3 }, { address: ups[1]!.address, weight: 1 }] }))
  const cl = client(t, p.url, { connections: 16 })
  const started = Date.now()
  const hits = await hitMany(cl, 4000, 16)
  t.ok(hits.every((h) => h.status === 200), 'every request answered 200')
  const counts = countBy(hits.map((h) => h.upstream))
  const shareA = (counts.a ?? 0) / 4000
  t.ok(Math.abs(shareA - 0.75) <= 0.03, `a answered ${counts.a}, b ${counts.b} (a's share ${shareA}, want 0.75 ± 0.03)`)
  t.comment(`4000 requests in ${Date.now() - started} ms`)
})

t.test('least_conn: concurrent requests go mostly to the fast upstreams, not the one holding requests 300 ms', async (t) => {
  const slowAware: UpstreamHandler = (req, res, up) => {
    if (up.name === 'c') setTimeout(() => echo(req, res, up), 300)
    else echo(req, res, up)
  }
  const ups = await upstreams(t, 3, slowAware)
  const p = await start(t, appConfig({ servers: ups.map((u) => u.address), balance: 'least-conn' }))
  const cl = client(t, p.url, { connections: 6 })
  // 6 clients, each sending one request after another for 700 ms (at most 400 each).
  const deadline = Date.now() + 700
  const answered: string[] = []
  await Promise.all(Array.from({ length: 6 }, async () => {
    for (let i = 0; i < 400 && Date.now() < deadline; i++) answered.push((await hit(cl)).upstream)
  }))
  const counts = countBy(answered)
  const slow = counts.c ?? 0
  t.ok(answered.length > 60, `${answered.length} requests answered`)
  t.ok(slow <= 12, `the slow upstream got ${slow} requests (a ${counts.a}, b ${counts.b})`)
  t.ok(slow / answered.length < 0.1, `the slow upstream's share is ${(slow / answered.length).toFixed(3)} < 0.1`)
  t.ok((counts.a ?? 0) > 20 && (counts.b ?? 0) > 20, 'both fast upstreams share the rest')
})

t.test('ip_hash: one /24 always reaches the same upstream; different /24s spread over all', async (t) => {
  const ups = await upstreams(t, 3)
  const p = await start(t, appConfig({ servers: ups.map((u) => u.address), balance: 'ip-hash' }))
  const from = async (localAddress: string, n: number): Promise<string[]> => {
    const cl = client(t, p.url, { localAddress, connections: 1 })
    const out: string[] = []
    for (let i = 0; i < n; i++) out.push((await hit(cl)).upstream)
    await cl.close()
    return out
  }
  await t.test('same /24 (127.0.0.2, .3, .77, .254): one upstream for every request', async (t) => {
    const seen = new Set<string>()
    for (const addr of ['127.0.0.2', '127.0.0.3', '127.0.0.77', '127.0.0.254']) for (const u of await from(addr, 5)) seen.add(u)
    t.equal(seen.size, 1, `answered by ${[...seen].join(', ')}`)
  })
  await t.test('another address in each /24 gets the same upstream as the first one', async (t) => {
    for (const net of [1, 2, 3, 9, 42]) {
      const first = await from(`127.0.${net}.5`, 3)
      const second = await from(`127.0.${net}.200`, 3)
      t.equal(new Set([...first, ...second]).size, 1, `127.0.${net}.0/24 → ${first[0]}`)
    }
  })
  await t.test('30 different /24s spread over the 3 upstreams', async (t) => {
    const per: string[] = []
    for (let net = 1; net <= 30; net++) per.push(...(await from(`127.0.${net}.5`, 1)))
    const counts = countBy(per)
    t.equal(Object.keys(counts).length, 3, `every upstream gets some /24s: ${JSON.stringify(counts)}`)
    t.ok(Math.max(...Object.values(counts)) <= 18, `no upstream gets more than 60%: ${JSON.stringify(counts)}`)
  })
})

t.test('consistent hash on $request_uri: sticky per URI; removing 1 of 5 upstreams moves about 1/5 of URIs', async (t) => {
  const ups = await upstreams(t, 5)
  const uris = Array.from({ length: 500 }, (_, i) => `/item/${i}?v=${(i * 7919) % 1000}`)
  const mapping = async (servers: string[], consistent: boolean): Promise<string[]> => {
    const p = await start(t, appConfig({ servers, balance: { hash: '$request_uri', consistent } }))
    const cl = client(t, p.url, { connections: 16 })
    const first = (await hitMany(cl, uris.length, 16, (i) => uris[i] as string)).map((h) => h.upstream)
    // Asked again (in another order, concurrently), every URI gets the same upstream.
    const again = (await hitMany(cl, uris.length, 16, (i) => uris[uris.length - 1 - i] as string)).map((h) => h.upstream).reverse()
    await cl.close()
    await p.close()
    t.same(again, first, `${consistent ? 'consistent' : 'plain'} hash with ${servers.length} upstreams: the same URI always hits the same upstream`)
    return first
  }
  const all = ups.map((u) => u.address)
  const without = all.filter((_, i) => i !== 2) // c removed
  const moved = (before: string[], after: string[]): number => before.filter((u, i) => u !== after[i]).length

  const c5 = await mapping(all, true)
  const c4 = await mapping(without, true)
  t.equal(Object.keys(countBy(c5)).length, 5, `5 upstreams share the URIs: ${JSON.stringify(countBy(c5))}`)
  const cMoved = moved(c5, c4)
  t.ok(cMoved / uris.length < 0.35, `consistent: ${cMoved} of 500 URIs moved (< 35%)`)
  t.ok(c5.every((u, i) => u === 'c' || c4[i] === u), 'consistent: only URIs of the removed upstream moved')
  t.equal(cMoved, c5.filter((u) => u === 'c').length, 'consistent: every URI of the removed upstream moved')

  const h5 = await mapping(all, false)
  const h4 = await mapping(without, false)
  const hMoved = moved(h5, h4)
  t.ok(hMoved > cMoved && hMoved / uris.length > 0.5, `plain hash: ${hMoved} of 500 URIs moved (more than consistent's ${cMoved}, over 50%)`)
})

t.test('backup: used only while every primary is down', async (t) => {
  const [a, b, c] = await upstreams(t, 3)
  const app: UpstreamConfig = {
    servers: [
      { address: a!.address, failTimeout: 300 },
      { address: b!.address, failTimeout: 300 },
      { address: c!.address, backup: true }
    ]
  }
  const p = await start(t, appConfig(app))
  const cl = client(t, p.url, { connections: 1 })
  const run = async (n: number): Promise<Record<string, number>> => {
    const hits: string[] = []
    for (let i = 0; i < n; i++) {
      const h = await hit(cl)
      t.equal(h.status, 200, 'answered')
      hits.push(h.upstream)
    }
    return countBy(hits)
  }
  t.same(await run(10), { a: 5, b: 5 }, 'primaries up: the backup gets nothing')
  await b!.stop()
  t.notOk('c' in await run(10), 'one primary down: the other primary answers, not the backup')
  await a!.stop()
  t.same(await run(10), { c: 10 }, 'every primary down: the backup answers everything')
  await a!.start()
  await b!.start()
  await sleep(350) // > failTimeout: the primaries get trial requests again
  const back = await run(10)
  t.notOk('c' in back, `primaries back: the backup gets nothing again ${JSON.stringify(back)}`)
})
