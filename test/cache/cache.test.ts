// The proxy cache (README, "Proxy cache"): the RFC 9111 / nginx table of cache-cases.ts against
// proxyctl through real sockets and a real upstream (compared whole with nginx by
// fixtures/cache-nginx-compare.ts), the lock, and the config's checks.
import path from 'node:path'
import t from 'tap'
import { resolveConfig } from '@proxyctl/core'
import { freePort } from '../helpers/failure.js'
import { startConfig, tmpDir } from '../helpers/proxy.js'
import { cases, playAll, proxyctlConfig, startCacheUpstream, spreadOf, verdict, type StepResult } from './fixtures/cache-cases.js'

t.test('the cache table against proxyctl: status, $upstream_cache_status and upstream requests, step by step', async (t) => {
  const dir = tmpDir(t)
  const sock = path.join(dir, 'up.sock')
  const up = await startCacheUpstream(t, sock)
  const port = await freePort()
  await startConfig(t, proxyctlConfig(port, sock, path.join(dir, 'dead.sock')))
  const all = await playAll(port, cases, up)
  cases.forEach((c, n) => {
    const results = all[n] as StepResult[]
    let seen = 0
    results.forEach((r, i) => {
      seen += r.upstream.length
      const step = c.steps[i] as (typeof c.steps)[number]
      if (step.spread !== undefined) t.same(spreadOf(r), step.spread, `${c.name}: X-Cache-Status of the ${step.parallel ?? 0} answers`)
      t.same(verdict(r, seen), step.expect, `${c.name}: step ${i + 1} (${step.method ?? 'GET'} ${step.path}${step.parallel !== undefined ? ` ×${step.parallel}, the most common answer` : ''})`)
    })
  })
})
