// The nginx-verified location tables (fixtures/location-cases.ts), sent through a real proxyctl
// on 127.0.0.1: every location answers with its own label and captures.
import t from 'tap'
import { respond, type LocationConfig } from '@proxyctl/core'
import { request, startConfig, targetOf, urlOf } from '../helpers/proxy.js'
import { scenarios, type Tree } from './fixtures/location-cases.js'

// Labels contain `$` and so cannot be templates: each location answers its index in `labels`.
function toLocations (tree: Tree, vars: string[], labels: string[], parent = ''): Record<string, LocationConfig> {
  const out: Record<string, LocationConfig> = {}
  for (const [key, sub] of Object.entries(tree)) {
    const label = parent === '' ? key : `${parent} > ${key}`
    labels.push(label)
    const body = `${labels.length - 1}|${vars.map((v) => `${v}=$${v}`).join('|')}`
    out[key] = { handler: respond(200, body), locations: toLocations(sub, vars, labels, label) }
  }
  return out
}

for (const scenario of scenarios) {
  t.test(scenario.name, async (t) => {
    const labels: string[] = []
    const proxy = await startConfig(t, { servers: [{ listen: '127.0.0.1:0', locations: toLocations(scenario.locations, scenario.vars, labels) }] })
    const target = targetOf(urlOf(proxy))
    for (const c of scenario.cases) {
      const res = await request(target, { path: c.uri })
      if (c.expect === null) {
        t.equal(res.status, 404, `${c.rule}: no location matches ${c.uri}`)
        continue
      }
      const [index, ...vars] = res.body.split('|')
      t.equal(labels[Number(index)], c.expect, `${c.rule} (${c.uri})`)
      for (const [name, value] of Object.entries(c.captures ?? {})) {
        t.ok(vars.includes(`${name}=${value}`), `${c.rule}: $${name} is "${value}"`)
      }
    }
  })
}
