/**
 * Headless Chromium for tests: Debian's /usr/bin/chromium driven by playwright-core, a fresh
 * profile in a folder of the test's, loopback only (no background networking, no QUIC). Tests
 * that need it are skipped, saying so, where it is not installed.
 */
import fs from 'node:fs'
import path from 'node:path'
import { chromium, type BrowserContext } from 'playwright-core'
import type { Teardown } from './lifecycle.js'

export const CHROMIUM = '/usr/bin/chromium'

/** A test's `skip` option: false, or why it cannot run here. */
export const chromiumSkip: false | string = fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install chromium)`

/** Launches Chromium with a profile in `dir`/profile and `args` added; closed when the test ends. */
export async function launchChromium (t: Teardown, dir: string, args: string[] = []): Promise<BrowserContext> {
  const context = await chromium.launchPersistentContext(path.join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic', ...args],
    timeout: 30_000
  })
  t.teardown(() => context.close())
  return context
}
