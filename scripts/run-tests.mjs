#!/usr/bin/env node
// Runs the test suite with tap and ends with the plain summary line CI reads:
// "tests: N passed, N failed". Extra arguments go to tap (e.g. a test file).
import { spawn } from 'node:child_process'

const child = spawn('npx', ['--no-install', 'tap', '--reporter=tap', ...process.argv.slice(2)], {
  stdio: ['ignore', 'pipe', 'inherit']
})
let tail = ''
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk)
  tail = (tail + chunk.toString()).slice(-4096)
})
child.on('close', (code) => {
  // tap's closing comment: "# { total: 12, pass: 11, fail: 1, skip: 0 }"
  const m = /# \{ total: (\d+)([^}]*)\}/.exec(tail)
  const num = (key) => Number((new RegExp(`${key}: (\\d+)`).exec(m?.[2] ?? '') ?? [])[1] ?? 0)
  if (m) {
    const skipped = num('skip') + num('todo')
    console.log(`tests: ${num('pass')} passed, ${num('fail')} failed${skipped ? `, ${skipped} skipped` : ''}`)
  }
  process.exit(code ?? 1)
})
