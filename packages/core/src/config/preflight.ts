/**
 * What `nginx -t` checks beyond the config's text, done by `proxyctl check` and before `start`
 * listens: every hostname an upstream or a proxy target names resolves (nginx: "host not found in
 * upstream"). Checks are registered while the config resolves (resolve.ts for upstreams,
 * handlers through `env.preflight`), run together, and every failure is reported with its key path.
 */
import { lookup } from 'node:dns/promises'
import { ConfigError, ConfigErrors } from '../errors.js'
import type { ResolvedConfig } from './model.js'

/** One check: resolves with a problem to report at `keyPath`, or undefined. */
export interface PreflightCheck {
  readonly keyPath: string
  readonly run: () => Promise<string | undefined>
}

const LOOKUP_TIMEOUT = 5000
const done = new WeakSet<ResolvedConfig>()

/** A check that `host` resolves; `what` is nginx's wording of the failure. */
export function hostResolves (keyPath: string, host: string, what: string): PreflightCheck {
  return {
    keyPath,
    async run () {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<string>((resolve) => { timer = setTimeout(() => resolve(`${what} (no answer in ${LOOKUP_TIMEOUT} ms)`), LOOKUP_TIMEOUT) })
      try {
        return await Promise.race([lookup(host, { all: true }).then(() => undefined, (err: NodeJS.ErrnoException) => `${what} (${err.code ?? err.message})`), timeout])
      } finally { clearTimeout(timer) }
    }
  }
}

/** Runs the config's checks once; throws ConfigErrors listing every failure. */
export async function runPreflight (config: ResolvedConfig): Promise<void> {
  if (done.has(config)) return
  const seen = new Set<string>()
  const checks = config.preflight.filter((c) => { const k = `${c.keyPath}`; if (seen.has(k)) return false; seen.add(k); return true })
  const problems = await Promise.all(checks.map(async (c) => ({ keyPath: c.keyPath, problem: await c.run() })))
  const errors = problems.filter((p) => p.problem !== undefined).map((p) => new ConfigError(p.keyPath, p.problem as string))
  if (errors.length > 0) {
    const e = new ConfigErrors(errors)
    if (config.file !== undefined) e.setFile(config.file)
    throw e
  }
  done.add(config)
}
