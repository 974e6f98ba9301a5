/**
 * Hostile paths against a real proxyctl serving a real file tree, each sent byte for byte. The
 * table lives in fixtures/traversal-cases.ts and was checked against nginx 1.22.1 with
 * fixtures/nginx-compare.ts. Files beside the root hold a sentinel; no answer may contain it.
 */
import t from 'tap'
import { traversalScenarios } from './fixtures/traversal-cases.js'
import { runScenarios, setup } from './fixtures/run.js'

const tree = setup(t, traversalScenarios)
const counter = { cases: 0 }
runScenarios(t, traversalScenarios, tree, counter)

t.test('traversal: table size', async (t) => {
  t.ok(counter.cases >= 20, `${counter.cases} hostile requests, none answered with a file from outside the root`)
})
