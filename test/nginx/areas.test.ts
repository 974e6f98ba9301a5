// Every area with comparison scripts has its test file here, so none is left out of the suite.
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { allScripts } from '../helpers/nginx-comparisons.js'

const areas = [...new Set(allScripts().map((s) => path.basename(path.dirname(path.dirname(s)))))]
t.ok(areas.length >= 5, `areas with comparison scripts: ${areas.join(', ')}`)
for (const area of areas) t.ok(fs.existsSync(path.join(import.meta.dirname, `${area}.test.ts`)), `test/nginx/${area}.test.ts runs test/${area}'s comparisons`)
