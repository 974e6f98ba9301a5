/**
 * A served file's answer through a real proxyctl: Content-Type, ETag, Last-Modified, conditional
 * and range requests, HEAD, precompressed siblings, folders and index order. The table lives in
 * fixtures/conditional-range-cases.ts and was checked against nginx 1.22.1 with
 * fixtures/nginx-compare.ts.
 */
import t from 'tap'
import { conditionalScenarios } from './fixtures/conditional-range-cases.js'
import { runScenarios, setup } from './fixtures/run.js'

const tree = setup(t, conditionalScenarios)
const counter = { cases: 0 }
runScenarios(t, conditionalScenarios, tree, counter)

t.test('conditional and range: table size', async (t) => {
  t.ok(counter.cases >= 20, `${counter.cases} cases, each a real request`)
})
