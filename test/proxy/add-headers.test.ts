/**
 * addHeaders (add_header), proxySetHeaders (proxy_set_header at server and top level) and
 * passRequestHeaders (proxy_pass_request_headers) through a real proxyctl, a unix-socket upstream
 * and static files: the table of fixtures/add-headers-cases.ts, whole answers and what the
 * upstream received, the same table add-headers-nginx-compare.ts checks against nginx. Then the
 * rules nginx cannot express (`{}` clearing, config errors).
 */
import path from 'node:path'
import t from 'tap'
import { resolveConfig, respond } from '@proxyctl/core'
import { proxy } from '@proxyctl/plugins'
import { startConfig, tmpDir, urlOf } from '../helpers/proxy.js'
import { buildTree, headerCases, playHeaderCase, proxyctlConfig, receivedSince, startAppUpstream } from './fixtures/add-headers-cases.js'

t.test('addHeaders, proxySetHeaders, passRequestHeaders: the table checked against nginx', async t => {
  const dir = tmpDir(t)
  const w = { sock: path.join(dir, 'app.sock'), dead: path.join(dir, 'dead.sock'), root: path.join(dir, 'www') }
  buildTree(w.root)
  const up = await startAppUpstream(t, w.sock)
  const running = await startConfig(t, proxyctlConfig(w, '127.0.0.1:0'))
  const port = Number(new URL(urlOf(running)).port)
  for (const c of headerCases) {
    const from = up.seen.length
    const answer = await playHeaderCase(port, c)
    t.same({ answer, upstream: receivedSince(up, from) }, { answer: c.answer, upstream: c.upstream }, c.name)
  }
})

t.test('rules nginx cannot express', async t => {
  const dir = tmpDir(t)
  const w = { sock: path.join(dir, 'app.sock'), dead: path.join(dir, 'dead.sock'), root: path.join(dir, 'www') }
  const up = await startAppUpstream(t, w.sock)
  const running = await startConfig(t, {
    servers: [{
      listen: '127.0.0.1:0',
      addHeaders: { 'X-Srv': 'srv' },
      proxySetHeaders: { 'X-Srv-Set': 'srv' },
      locations: {
        '/clear/': { addHeaders: {}, proxySetHeaders: {}, handler: proxy(`http://unix:${w.sock}`) },
        '/outer/': { addHeaders: { 'X-Outer': 'o' }, proxySetHeaders: { 'X-Outer-Set': 'o' }, locations: { '/outer/in/': proxy(`http://unix:${w.sock}`) } }
      }
    }]
  })
  const port = Number(new URL(urlOf(running)).port)
  const rows = [
    { rule: '`{}` clears the inherited addHeaders and proxySetHeaders', path: '/clear/a', answerHas: [] as string[], answerLacks: ['x-srv: srv'], upstreamLacks: ['x-srv-set: srv'], upstreamHas: [] as string[] },
    { rule: 'a nested location inherits its enclosing location\'s, not the server\'s', path: '/outer/in/a', answerHas: ['x-outer: o'], answerLacks: ['x-srv: srv'], upstreamHas: ['x-outer-set: o'], upstreamLacks: ['x-srv-set: srv'] }
  ]
  for (const r of rows) {
    const from = up.seen.length
    const answer = await playHeaderCase(port, { name: r.rule, path: r.path, answer: undefined as never, upstream: null })
    const got = receivedSince(up, from)
    for (const h of r.answerHas) t.ok(answer.headers.includes(h), `${r.rule}: answer has ${h}`)
    for (const h of r.answerLacks) t.notOk(answer.headers.includes(h), `${r.rule}: answer lacks ${h}`)
    for (const h of r.upstreamHas) t.ok(got?.headers.includes(h), `${r.rule}: upstream got ${h}`)
    for (const h of r.upstreamLacks) t.notOk(got?.headers.includes(h), `${r.rule}: upstream did not get ${h}`)
  }
})

t.test('config errors name their key path', async t => {
  const rows: Array<{ rule: string, config: unknown, error: RegExp }> = [
    { rule: 'an unknown variable in addHeaders', config: { servers: [{ addHeaders: { 'X-A': '$nope' } }] }, error: /servers\[0\]\.addHeaders\["X-A"\]: unknown variable "\$nope"/ },
    { rule: 'an unknown variable in a location\'s always header', config: { servers: [{ locations: { '/': { addHeaders: { 'X-A': { value: '$nope', always: true } }, handler: respond(200) } } }] }, error: /servers\[0\]\.locations\["\/"\]\.addHeaders\["X-A"\]\.value: unknown variable/ },
    { rule: 'a header name with a space', config: { servers: [{ addHeaders: { 'X A': 'a' } }] }, error: /servers\[0\]\.addHeaders\["X A"\]/ },
    { rule: 'proxySetHeaders naming Connection is refused where proxy() inherits it', config: { proxySetHeaders: { Connection: 'x' }, servers: [{ locations: { '/': proxy('http://127.0.0.1:1') } }] }, error: /servers\[0\]\.locations\["\/"\] \(proxySetHeaders in force here\)\["Connection"\]: the proxy sets "Connection" itself/ }
  ]
  for (const r of rows) t.throws(() => resolveConfig(r.config), r.error, r.rule)
})
