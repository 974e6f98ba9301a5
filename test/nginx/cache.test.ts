// test/cache/fixtures/*nginx-compare.ts against Debian's nginx (test/helpers/nginx-comparisons.ts).
import t from 'tap'
import { compareArea } from '../helpers/nginx-comparisons.js'

compareArea(t, 'cache')
