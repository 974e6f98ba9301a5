#!/usr/bin/env -S node --max-semi-space-size=8 --v8-pool-size=1 --no-concurrent-array-buffer-sweeping --no-memory-reducer
// The Node flags above are proxyctl's memory and GC setting (measured: bench/README.md, "Node
// flags"): a proxy's per-request objects die within the request, so an 8 MiB young generation
// (Node's default grows to 16 MiB) keeps less resident; smaller starves HTTP/2, whose streams'
// objects (Node's compatibility layer) outlive a 2 MiB one's scavenges and are promoted. One GC
// helper thread per process, as one process per core (`workers`) is the scaling model. Freed
// socket buffers are swept inside the scavenge rather than later on that helper thread: until the
// sweep ends V8 still counts them, and under large bodies that alone kept starting full
// collections. No memory reducer: its collections after a quiet spell deoptimised hot code
// (process.nextTick among it) that stayed slower for good.
// Starting it as `node .../bin.js` skips them (and takes whatever flags that command gives).
import { parseArgs } from 'node:util'
import { check } from './commands/check.js'
import { explain } from './commands/explain.js'
import { init } from './commands/init.js'
import { initPlugin } from './commands/plugin-kit.js'
import { reload } from './commands/reload.js'
import { start } from './commands/start.js'
import fs from 'node:fs'
import { reportFailure } from './report.js'

const USAGE = `Usage: proxyctl <command> [options]

Commands:
  start   load the config and serve it; SIGHUP reloads it
  reload  validate the config, have the running proxyctl (the pid file's) serve it;
          exit 0 once the new config serves, 1 with the errors when the old one stays
  check   validate the config, try its listen addresses, print the servers and locations
  explain [METHOD] URL [-H 'Name: value']... [--json]
          which listen address, server and location a request reaches and why, the
          variables, plugins and what the handler would do (the request upstream, the
          files tried); nothing is started
  init    write a commented starter proxy.config.ts in this folder
  init --plugin NAME
          write a publishable plugin package NAME (TypeScript, a test, a README) into the
          folder NAME (@scope/name: into name)

Options:
  -c, --config FILE   config module (default: ./proxy.config.ts, .mts, .js or .mjs)
  -f, --force         init: overwrite an existing file
      --log-format F  start: json or pretty (default: pretty on a terminal, else json)
      --pid-file FILE start, reload: the pid file (default: proxyctl.pid beside the config)
  -H, --header LINE   explain: a request header, 'Name: value' (repeatable)
      --json          explain: print JSON (the shape is in the README)
      --listen ADDR   explain: the listen address the request arrives on (default: from the URL)
      --client ADDR   explain: the client's address (default 127.0.0.1)
  -h, --help          show this help
  -v, --version       print proxyctl's version
`

async function main (): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      force: { type: 'boolean', short: 'f' },
      plugin: { type: 'string' },
      'log-format': { type: 'string' },
      header: { type: 'string', short: 'H', multiple: true },
      json: { type: 'boolean' },
      listen: { type: 'string' },
      client: { type: 'string' },
      'pid-file': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' }
    }
  })
  const command = positionals[0]
  if (values.version === true) {
    const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
    process.stdout.write(`proxyctl ${pkg.version}\n`)
    return 0
  }
  if (values.help === true || command === undefined) {
    process.stdout.write(USAGE)
    return command === undefined && values.help !== true ? 1 : 0
  }
  switch (command) {
    case 'start': {
      const format = values['log-format']
      if (format !== undefined && format !== 'json' && format !== 'pretty') {
        process.stderr.write(`proxyctl: --log-format must be json or pretty, got "${format}"\n`)
        return 1
      }
      return await start(values.config, format, values['pid-file'])
    }
    case 'reload': return await reload(values.config, values['pid-file'])
    case 'check': return await check(values.config)
    case 'explain': return await explain(positionals.slice(1), { config: values.config, headers: values.header, json: values.json, listen: values.listen, client: values.client })
    case 'init': return values.plugin !== undefined ? initPlugin(values.plugin) : init(values.force === true)
    default:
      process.stderr.write(`proxyctl: unknown command "${command}"\n\n${USAGE}`)
      return 1
  }
}

main().then((code) => { if (code !== 0) process.exitCode = code }, (err: unknown) => {
  process.exitCode = reportFailure(err)
})
