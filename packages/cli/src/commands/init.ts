import fs from 'node:fs'
import path from 'node:path'

const STARTER = `// proxyctl config: \`npx proxyctl check\` validates it, \`npx proxyctl start\` serves it.
// Every key is typed: let your editor complete them.
import { defineConfig, respond } from 'proxyctl'

export default defineConfig({
  servers: [
    {
      // Ports, 'host:port', '[::]:8080' (IPv6) or 'unix:/path.sock'; an object adds
      // defaultServer or https: { address: 8443, https: { cert, key } }.
      listen: ['127.0.0.1:8080', '[::1]:8080'],
      // Exact names, '*.example.com', 'www.example.*' or a regex '~^api\\\\d+\\\\.example\\\\.com$'.
      serverName: ['localhost'],
      // Locations use nginx's syntax and selection rules:
      //   '= /path' exact, '/prefix' (longest wins), '^~ /prefix' (stops regex checks),
      //   '~ regex' / '~* regex' (in order, beat plain prefixes), '@name' (internal only).
      locations: {
        '= /health': respond(200, 'ok\\n'),
        '/': respond(200, 'hello from proxyctl: $request_method $uri from $remote_addr\\n'),
        '~ ^/old/(.*)$': respond(301, '/new/$1')
        // With upstreams: '/api/': proxy('http://app'),
      }
    }
  ]
  // upstreams: { app: { servers: ['127.0.0.1:3000', 'unix:/run/app.sock'] } },
})
`

/** `proxyctl init`: writes a starter config; refuses to overwrite unless forced. */
export function init (force: boolean): number {
  const file = path.resolve('proxy.config.ts')
  if (fs.existsSync(file) && !force) {
    process.stderr.write(`proxyctl: ${file} already exists (use --force to overwrite)\n`)
    return 1
  }
  fs.writeFileSync(file, STARTER)
  process.stdout.write(`wrote ${file}\nnext: npx proxyctl check && npx proxyctl start\n`)
  return 0
}
