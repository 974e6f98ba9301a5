/**
 * errorPages (nginx's error_page) through a real proxyctl: static files, returns, try_files and
 * real upstreams on a unix socket. The table lives in fixtures/error-pages-cases.ts and was
 * checked against nginx 1.22.1 with fixtures/nginx-compare.ts.
 */
import t from 'tap'
import { errorPageScenarios } from './fixtures/error-pages-cases.js'
import { runScenarios, setup } from './fixtures/run.js'

const tree = setup(t, errorPageScenarios)
const counter = { cases: 0 }
runScenarios(t, errorPageScenarios, tree, counter)

t.test('error pages: table size', async (t) => {
  t.ok(counter.cases >= 20, `${counter.cases} cases, each a real request`)
})
