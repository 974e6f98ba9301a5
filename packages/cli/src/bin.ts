#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { check } from './commands/check.js'
import { init } from './commands/init.js'
import { start } from './commands/start.js'
import { reportFailure } from './report.js'

const USAGE = `Usage: proxyctl <command> [options]

Commands:
  start   load the config and serve it
  check   validate the config, try its listen addresses, print the servers and locations
  init    write a commented starter proxy.config.ts in this folder

Options:
  -c, --config FILE   config module (default: ./proxy.config.ts, .mts, .js or .mjs)
  -f, --force         init: overwrite an existing file
  -h, --help          show this help
`

async function main (): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      force: { type: 'boolean', short: 'f' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  const command = positionals[0]
  if (values.help === true || command === undefined) {
    process.stdout.write(USAGE)
    return command === undefined && values.help !== true ? 1 : 0
  }
  switch (command) {
    case 'start': return await start(values.config)
    case 'check': return await check(values.config)
    case 'init': return init(values.force === true)
    default:
      process.stderr.write(`proxyctl: unknown command "${command}"\n\n${USAGE}`)
      return 1
  }
}

main().then((code) => { if (code !== 0) process.exitCode = code }, (err: unknown) => {
  process.exitCode = reportFailure(err)
})
