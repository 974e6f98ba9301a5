// The limitReq / limitConn timing table (fixtures/limit-cases.ts, checked against nginx by
// fixtures/limit-nginx-compare.ts) played against proxyctl, and the log line of each refusal and delay.
import path from 'node:path'
import t from 'tap'
import { resolveConfig, startProxy } from '@proxyctl/core'
import { captureLogger } from '../helpers/log.js'
import { tmpDir } from '../helpers/proxy.js'
import { limitCases, playLimitCase, proxyctlLimitConfig, STALL_MS, startLimitsUpstream, warmUp } from './fixtures/limit-cases.js'

t.test('limitReq / limitConn timing table', async (t) => {
  const dir = tmpDir(t)
  const app = path.join(dir, 'app.sock')
  const up = await startLimitsUpstream(t, app)
  const { logger, lines } = captureLogger()
  const proxy = await startProxy(resolveConfig(proxyctlLimitConfig(0, app)), { logger, announce: false })
  t.teardown(() => proxy.close(0))
  const port = proxy.listeners[0]?.port as number
  await warmUp(port)
  for (const c of limitCases) {
    const r = await playLimitCase(port, c, up)
    // Replayed only after a proven scheduling stall (fixtures/limit-cases.ts says how it is proven).
    for (const why of r.replays) t.comment(`${c.name}: replayed after ${why}`)
    t.same(r.waves, c.expected, c.name)
  }
  // The counted play's lines are the zone's last (earlier ones may be of plays replayed after a
  // stall): "rate" refused two requests in its first wave. Its excess is 1 less what drained since
  // the request that passed: at most STALL_MS at 10r/s in a play without a proven stall.
  const refusals = lines.filter((l) => l.code === 'PROXYCTL_LIMIT_REQ_REJECTED' && l.zone === 'rate').slice(-2)
  const refusal = refusals.reduce((a, b) => ((b.excess as number) > (a?.excess as number) ? b : a), refusals[0])
  t.match(refusal, { level: 'error', client: '127.0.0.1', zone: 'rate', limit: 'limitReq', excess: Number, msg: /^limiting requests, excess: \d\.\d{3} by zone "rate", client: 127\.0\.0\.1, server: , request: "GET \/rate\/r\d\d HTTP\/1\.1", host: "limits\.test"$/ }, 'a refusal: one error line with code, client, zone and excess')
  t.ok((refusal?.excess as number) > 1 - STALL_MS / 100 && (refusal?.excess as number) <= 1, `its excess is 1 less what drained (${String(refusal?.excess)})`)
  // The counted play of "burst 2" delayed two requests: its two lines are the zone's last.
  const [delay, second] = lines.filter((l) => l.code === 'PROXYCTL_LIMIT_REQ_DELAYED' && l.zone === 'burst').slice(-2)
  t.match(delay, { level: 'warn', client: '127.0.0.1', zone: 'burst', limit: 'limitReq', excess: Number, msg: /^delaying request, excess: \d\.\d{3}, by zone "burst"/ }, 'a delay: one warn line (a level below refusals)')
  const within = (x: unknown, n: number): boolean => (x as number) > n - STALL_MS / 100 && (x as number) <= n
  t.ok(within(delay?.excess, 1) && within(second?.excess, 2), `the wave's two delays: excess 1 and 2, less what drained (${String(delay?.excess)}, ${String(second?.excess)})`)
  const conn = lines.find((l) => l.code === 'PROXYCTL_LIMIT_CONN_REJECTED')
  t.match(conn, { level: 'error', client: '127.0.0.1', zone: 'conn1', max: 1, limit: 'limitConn', msg: /^limiting connections by zone "conn1"/ }, 'limitConn: one error line with code, client, zone and max')
  t.match(lines.find((l) => l.code === 'PROXYCTL_LIMIT_REQ_REJECTED' && l.zone === 'dry'), { dryRun: true, msg: /^limiting requests, dry run,/ }, 'dry run: logged as such')
})

t.test('config: unknown zones, nodelay with delay, mixed stores, bad rates', async (t) => {
  const bad = (c: object): string => { try { resolveConfig(c as never); return 'accepted' } catch (err) { return (err as Error).message } }
  const server = (loc: object): object => ({ servers: [{ listen: '127.0.0.1:0', locations: { '/': { handler: undefined, ...loc } } }] })
  const cases: Array<[string, object, RegExp]> = [
    ['a limitReq naming no zone', { ...server({ limitReq: { zone: 'nope' } }) }, /limitReq\.zone: unknown limit_req_zone "nope"/],
    ['nodelay and delay together', { limitReqZones: { a: { key: '$remote_addr', rate: '1r/s' } }, ...server({ limitReq: { zone: 'a', nodelay: true, delay: 1 } }) }, /"nodelay" and "delay" cannot both be set/],
    ['a rate nginx would not read', { limitReqZones: { a: { key: '$remote_addr', rate: '10/s' } }, ...server({}) }, /limitReqZones\.a\.rate: expected a rate/],
    ['a zone smaller than 32k', { limitConnZones: { a: { key: '$remote_addr', size: '8k' } }, ...server({}) }, /limitConnZones\.a\.size: expected a size of at least 32k/],
    ['memory and redis zones in one list', { limitReqZones: { a: { key: '$remote_addr', rate: '1r/s' }, b: { key: '$remote_addr', rate: '1r/s', store: { redis: 'redis://127.0.0.1:1' } } }, ...server({ limitReq: [{ zone: 'a' }, { zone: 'b' }] }) }, /limitReq: the zones of one limitReq list must share one store/],
    ['a limitConnStatus outside 400-599', { ...server({ limitConnStatus: 200 }) }, /limitConnStatus/]
  ]
  for (const [name, config, want] of cases) t.match(bad(config), want, name)
})
