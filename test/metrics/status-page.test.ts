/**
 * Issue 17's acceptance for the status page, in a real Chromium (Debian's, via playwright-core):
 * the page served by the metrics listener loads without a build step or a CDN, draws the servers,
 * locations and upstream servers of a proxyctl under real traffic, and shows an upstream server
 * that starts failing as down within 2 s of its failure. The page polls /status.json every 500 ms;
 * the traffic reaches each server of `app` every ~50 ms, so the failure is noticed (maxFails 1)
 * well within the budget even on a loaded machine.
 */
import t from 'tap'
import type { Request } from 'playwright-core'
import { chromiumMissing, launchChromium } from '../helpers/browser.js'
import { tmpDir } from '../helpers/proxy.js'
import { startStatusScene } from './fixtures/status-scene.js'

t.setTimeout(90_000)

interface Row { cells: string[], state?: string, upstream?: string, server?: string }

t.test('the status page shows each upstream server\'s state and a failing one as down within 2 s', { skip: chromiumMissing() }, async (t) => {
  const dir = tmpDir(t, 'proxyctl-status-')
  const scene = await startStatusScene(t, dir)
  await scene.openTunnels(2)
  const [a, b] = scene.app
  const { page } = await launchChromium(t, dir)
  const fetched: string[] = []
  page.on('request', (r: Request) => { fetched.push(r.url()) })

  const res = await page.goto(scene.metricsUrl + '/', { timeout: 15_000 })
  t.equal(res?.status(), 200, 'the page is served at / of the metrics listener')
  t.equal(await page.title(), 'proxyctl status')
  const upstreamRow = (server: string): string => `#upstreams tr[data-upstream="app"][data-server="${server}"]`
  // Two polls: rates are drawn from the difference between them.
  await page.waitForFunction(() => document.querySelectorAll('#upstreams tbody tr').length > 0 && document.getElementById('live')?.textContent === 'live', undefined, { timeout: 10_000 })
  await page.waitForTimeout(1200)
  const rows = async (table: string): Promise<Row[]> => page.$$eval(`#${table} tbody tr`, (trs) => trs.map((tr) => ({
    cells: [...tr.querySelectorAll('td')].map((td) => td.textContent ?? ''),
    ...((tr as HTMLElement).dataset)
  })))

  const ups = await rows('upstreams')
  const before = (server: string): Row | undefined => ups.find((r) => r.upstream === 'app' && r.server === server)
  const servers = await rows('servers')
  const locations = servers.map((r) => r.cells[1])
  const rate = (r: Row | undefined, i: number): number => Number(r?.cells[i] ?? NaN)
  const api = servers.find((r) => r.cells[1] === '/api/')
  const cases: Array<[string, unknown, unknown]> = [
    ['server a is shown up', before(a.address)?.state, 'up'],
    ['server b is shown up', before(b.address)?.state, 'up'],
    ['b\'s badge says up', before(b.address)?.cells[2], 'up'],
    ['the server row names the virtual server', servers[0]?.cells[0], 'shop.example'],
    ['every location that answered is listed, the 404s as (no location)', ['/api/', '/static/', '/limited/', '/live/', '(no location)'].every((l) => locations.includes(l)), true],
    ['a location that never answered (the implicit "= /api" redirect) is left out', locations.includes('= /api'), false],
    ['/api/\'s own latency is drawn in ms', /^\d+\.\d ms$/.test(api?.cells[5] ?? ''), true],
    ['/api/ has a request rate above 0', rate(api, 2) > 0, true],
    ['the server\'s latency is drawn in ms', /^\d+\.\d ms$/.test(servers[0]?.cells[5] ?? ''), true],
    ['a\'s tries per second are above 0', rate(before(a.address), 3) > 0, true],
    ['a\'s average response time is drawn in ms', /^\d+\.\d ms$/.test(before(a.address)?.cells[5] ?? ''), true],
    ['the two open tunnels are shown on /live/', servers.find((r) => r.cells[1] === '/live/')?.cells[6], '2'],
    ['the limit rejections of /limited/\'s zone are shown (at least the two of the opening burst)', Number(/limitReq reports (\d+)/.exec(await page.textContent('#connections') ?? '')?.[1] ?? 0) >= 2, true]
  ]
  for (const [name, got, want] of cases) t.same(got, want, name)

  await b.stop()
  const failedAt = Date.now()
  await page.waitForSelector(`${upstreamRow(b.address)}[data-state="failed"]`, { timeout: 5000 }).catch(() => undefined)
  const shownAfter = Date.now() - failedAt
  t.ok(shownAfter <= 2000, `b is shown down ${shownAfter} ms after it stopped (at most 2000)`)
  const down = await rows('upstreams')
  const after = (server: string): Row | undefined => down.find((r) => r.upstream === 'app' && r.server === server)
  t.equal(after(b.address)?.state, 'failed', 'b is in state failed (maxFails reached)')
  t.equal(after(b.address)?.cells[2], 'failed', 'its badge says failed')
  // Found and read in one task of the page: it redraws its tables at each poll (page.$eval finds, then reads, in two).
  const badge = await page.evaluate((sel) => { const el = document.querySelector(sel); return el === null ? [] : [el.className, getComputedStyle(el).backgroundColor] }, `${upstreamRow(b.address)} .badge`)
  t.same(badge, ['badge state-failed', 'rgb(250, 220, 220)'], 'in red')
  t.equal(after(a.address)?.state, 'up', 'a stays up')
  await scene.stop()
  t.equal(scene.answers.get(502) ?? 0, 0, 'no client saw a 502: the failed try went on to a')
  t.same([...new Set(fetched.map((u) => new URL(u).origin))], [new URL(scene.metricsUrl).origin], 'the page fetched nothing but its own listener (no CDN)')
})
