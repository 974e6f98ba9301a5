/**
 * try_files through a real proxyctl serving a real file tree. The table lives in
 * fixtures/try-files-cases.ts and was checked against nginx 1.22.1 with fixtures/nginx-compare.ts.
 */
import t from 'tap'
import { tryFilesScenarios } from './fixtures/try-files-cases.js'
import { runScenarios, setup } from './fixtures/run.js'

const tree = setup(t, tryFilesScenarios)
const counter = { cases: 0 }
runScenarios(t, tryFilesScenarios, tree, counter)

t.test('try_files: table size', async (t) => {
  t.ok(counter.cases >= 20, `${counter.cases} cases, each a real request`)
})
