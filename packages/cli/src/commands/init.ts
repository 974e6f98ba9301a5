import fs from 'node:fs'
import path from 'node:path'

const STARTER = `// proxyctl config: \`npx proxyctl check\` validates it, \`npx proxyctl start\` serves it.
// Every key is typed: let your editor complete them.
import { defineConfig, respond, selfSignedCertificate } from 'proxyctl'

// A self-signed certificate for localhost, 127.0.0.1 and ::1, made on first use and kept in
// ~/.cache/proxyctl: for trying https here (curl -k), not for production. For a real site:
// const https = { cert: './example.com.crt', key: './example.com.key' }
const https = await selfSignedCertificate()

export default defineConfig({
  servers: [
    {
      // Ports, 'host:port', '[::]:8080' (IPv6) or 'unix:/path.sock'; an object adds https (TLS),
      // http2 (h2 by ALPN on TLS, h2c on plain) or defaultServer.
      listen: ['127.0.0.1:8080', '[::1]:8080', { address: '127.0.0.1:8443', https, http2: true }, { address: '[::1]:8443', https, http2: true }],
      // Exact names, '*.example.com', 'www.example.*' or a regex '~^api\\\\d+\\\\.example\\\\.com$'.
      serverName: ['localhost'],
      // Locations use nginx's syntax and selection rules:
      //   '= /path' exact, '/prefix' (longest wins), '^~ /prefix' (stops regex checks),
      //   '~ regex' / '~* regex' (in order, beat plain prefixes), '@name' (internal only).
      locations: {
        '= /health': respond(200, 'ok\\n'),
        '/': respond(200, 'hello from proxyctl: $request_method $uri from $remote_addr over $scheme\\n'),
        '~ ^/old/(.*)$': respond(301, '/new/$1')
        // With upstreams: '/api/': proxy('http://app'),
      }
    }
  ]
  // upstreams: { app: { servers: ['127.0.0.1:3000', 'unix:/run/app.sock'] } },
})
`

// NodeNext as Node resolves: an installed proxyctl's types come from its package exports.
export const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    noEmit: true,
    skipLibCheck: true
  }
}

/** This CLI's version: the proxyctl that init's files depend on. */
export function ownVersion (): string {
  return (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version
}

/** The package.json init writes: an ES module folder (as the config is), proxyctl as a dependency. */
function packageJson (): object {
  return { private: true, type: 'module', dependencies: { proxyctl: `^${ownVersion()}` } }
}

/**
 * `proxyctl init`: writes a starter config (refuses to overwrite it unless forced), and a
 * tsconfig.json and package.json when the folder has none, so an editor type-checks the config
 * once proxyctl is installed. Those two are never overwritten.
 */
export function init (force: boolean): number {
  const file = path.resolve('proxy.config.ts')
  if (fs.existsSync(file) && !force) {
    process.stderr.write(`proxyctl: ${file} already exists (use --force to overwrite)\n`)
    return 1
  }
  fs.writeFileSync(file, STARTER)
  process.stdout.write(`wrote ${file}\n`)
  const tsconfig = path.resolve('tsconfig.json')
  if (!fs.existsSync(tsconfig)) {
    fs.writeFileSync(tsconfig, JSON.stringify(TSCONFIG, null, 2) + '\n')
    process.stdout.write(`wrote ${tsconfig}\n`)
  }
  const pkg = path.resolve('package.json')
  const writePkg = !fs.existsSync(pkg)
  if (writePkg) {
    fs.writeFileSync(pkg, JSON.stringify(packageJson(), null, 2) + '\n')
    process.stdout.write(`wrote ${pkg}\n`)
  }
  process.stdout.write('next: npx proxyctl check && npx proxyctl start (http on 8080, https on 8443)\n')
  if (writePkg) process.stdout.write('(npm install gives your editor proxyctl\'s types)\n')
  return 0
}
