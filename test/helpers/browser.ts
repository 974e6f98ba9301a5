/**
 * Real headless Chromium for tests and scripts: Debian's /usr/bin/chromium driven by
 * playwright-core, a fresh profile in a folder the caller owns, loopback only. The arguments keep
 * it from reaching the network on its own (updates, sync, background fetches).
 */
import fs from 'node:fs'
import path from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import type { Teardown } from './lifecycle.js'

export const CHROMIUM = '/usr/bin/chromium'

export const CHROMIUM_ARGS: readonly string[] = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic']

/** A tap `skip` value: false when Chromium is there, else why the test cannot run. */
export const chromiumMissing = (): false | string => fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install chromium)`

/** Launches Chromium with a profile under `dir`; closed when `t` ends. Resolves with its context and first page. */
export async function launchChromium (t: Teardown, dir: string, options: { viewport?: { width: number, height: number } } = {}): Promise<{ context: BrowserContext, page: Page }> {
  const context = await chromium.launchPersistentContext(path.join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS],
    timeout: 30_000,
    ...(options.viewport === undefined ? {} : { viewport: options.viewport })
  })
  t.teardown(() => context.close())
  const page = context.pages()[0] ?? await context.newPage()
  return { context, page }
}
