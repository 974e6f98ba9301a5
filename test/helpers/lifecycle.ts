/**
 * What every helper shares: the part of a tap test a helper needs to clean up after itself, and
 * polling until something holds.
 */
import { setTimeout as sleep } from 'node:timers/promises'

/** A tap test (or anything else) that runs `fn` when it ends. */
export interface Teardown { teardown (fn: () => unknown): void }

/**
 * Polls `check` every 5 ms until it is true or `ms` pass, and resolves with its last result. With
 * `what`, a timeout rejects instead, naming what was awaited.
 */
export async function waitFor (check: () => boolean, ms = 3000, what?: string): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (check()) return true
    await sleep(5)
  }
  if (check()) return true
  if (what !== undefined) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
  return false
}
