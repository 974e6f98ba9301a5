/**
 * Takes docs/status-page.png, the README's picture of the status page: the scene of
 * test/metrics/status-page.test.ts (a proxyctl with two app servers, static files, a limited
 * location, WebSocket tunnels, a few dozen requests a second), one app server stopped a few
 * seconds in so the page shows it failed, and Debian's Chromium headless. Loopback only.
 *
 *   pnpm screenshot:status            (builds first; OUT=path to write elsewhere)
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { chromiumMissing, launchChromium } from '../test/helpers/browser.js'
import { startStatusScene } from '../test/metrics/fixtures/status-scene.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const out = process.env.OUT ?? path.join(root, 'docs', 'status-page.png')

// What the test helpers register to clean up, run in reverse at the end.
const cleanups: Array<() => unknown> = []
const t = { teardown (fn: () => unknown) { cleanups.push(fn) } }

async function main (): Promise<void> {
  const missing = chromiumMissing()
  if (missing !== false) throw new Error(missing)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'proxyctl-screenshot-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const scene = await startStatusScene(t, dir, { loops: 3, pauseMs: 15 })
  await scene.openTunnels(3)
  const { page } = await launchChromium(t, dir, { viewport: { width: 1100, height: 640 } })
  await page.goto(scene.metricsUrl + '/', { timeout: 15_000 })
  await sleep(3000)
  await scene.app[1].stop()
  // A few polls after the failure: the failed server in red, rates settled on the other one.
  await page.waitForSelector(`#upstreams tr[data-server="${scene.app[1].address}"][data-state="failed"]`, { timeout: 5000 })
  await sleep(2500)
  fs.mkdirSync(path.dirname(out), { recursive: true })
  await page.screenshot({ path: out, fullPage: true })
  console.log(`wrote ${path.relative(process.cwd(), out)}`)
}

try {
  await main()
} finally {
  for (const fn of cleanups.reverse()) await fn()
}
