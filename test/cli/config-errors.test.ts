// Each config error: `proxyctl check` names the file and the key path, exits 1, prints no stack.
import net from 'node:net'
import t from 'tap'
import { configDir, runCli, writeConfig } from '../helpers/proxy.js'

interface Case {
  rule: string
  /** Body of the config module, after `import ... from 'proxyctl'`. */
  source: string | ((port: number) => string)
  /** Key path and message, as printed after the file name. */
  expect: RegExp
}

const head = "import { defineConfig, respond, defineHandler } from 'proxyctl'\n"
const server = (body: string): string => `${head}export default defineConfig({ servers: [{ listen: '127.0.0.1:0', ${body} }] })\n`

const cases: Case[] = [
  { rule: 'unknown key', source: server("lisen: 8080, locations: {}"), expect: /: servers\[0\]\.lisen: unknown key$/m },
  { rule: 'unknown key in a location', source: server("locations: { '/': { handlr: respond(200) } } as never"), expect: /: servers\[0\]\.locations\["\/"\]\.handlr: unknown key$/m },
  { rule: 'wrong type', source: `${head}export default defineConfig({ servers: [{ listen: true as never }] })\n`, expect: /: servers\[0\]\.listen: expected a port, an address string, \{ address, defaultServer\?, https\? \}, or a list of them$/m },
  { rule: 'wrong type for a handler', source: server("locations: { '/': 42 as never }"), expect: /: servers\[0\]\.locations\["\/"\]: expected a location object .* or a handler$/m },
  { rule: 'no servers', source: `${head}export default defineConfig({ servers: [] })\n`, expect: /: servers: at least one server is required$/m },
  { rule: 'duplicate prefix location (plain and ^~ are one prefix)', source: server("locations: { '/a': respond(200), '^~ /a': respond(200) }"), expect: /: servers\[0\]\.locations\["\^~ \/a"\]: duplicate location "\/a"/m },
  { rule: 'duplicate exact location', source: server("locations: { '= /a': respond(200), '=  /a': respond(200) }"), expect: /: servers\[0\]\.locations\["=  \/a"\]: duplicate location "\/a"/m },
  { rule: 'named location referenced but not defined', source: server(`locations: { '/': defineHandler('goto', (env) => { env.namedLocation('@missing', '.fallback'); return { handle: (_q, r) => r.send() } }) }`), expect: /: servers\[0\]\.locations\["\/"\]\.fallback: named location "@missing" is not defined in servers\[0\]$/m },
  { rule: 'regex that does not compile', source: server("locations: { '~ (/': respond(200) }"), expect: /: servers\[0\]\.locations\["~ \(\/"\]: invalid regular expression: /m },
  { rule: 'unknown variable', source: server("locations: { '/': respond(200, 'hi $nope') }"), expect: /: servers\[0\]\.locations\["\/"\]\.body: unknown variable "\$nope"$/m },
  { rule: 'unknown variable in a redirect', source: server("locations: { '/': respond(302, '/x/$urii') }"), expect: /: servers\[0\]\.locations\["\/"\]\.redirect: unknown variable "\$urii"$/m },
  {
    rule: 'two servers claiming default on the same address',
    source: `${head}export default defineConfig({ servers: [
      { listen: { address: '127.0.0.1:0', defaultServer: true } },
      { listen: [{ address: '127.0.0.1:0', defaultServer: true }] }] })\n`,
    expect: /: servers\[1\]\.listen\[0\]\.defaultServer: a duplicate default server for 127\.0\.0\.1:0 \(already servers\[0\]\)$/m
  },
  { rule: 'nested location outside its parent', source: server("locations: { '/a/': { locations: { '/b/': respond(200) } } }"), expect: /: servers\[0\]\.locations\["\/a\/"\]\.locations\["\/b\/"\]: location "\/b\/" is outside location "\/a\/"/m },
  { rule: 'bad listen address', source: `${head}export default defineConfig({ servers: [{ listen: '127.0.0.1:99999' }] })\n`, expect: /: servers\[0\]\.listen: port out of range in "127\.0\.0\.1:99999"$/m },
  { rule: 'invalid server name', source: server("serverName: 'www.*.example.com'"), expect: /: servers\[0\]\.serverName: invalid server name "www\.\*\.example\.com"/m },
  {
    rule: 'a port already in use',
    source: (port) => `${head}export default defineConfig({ servers: [{ listen: '127.0.0.1:${port}' }] })\n`,
    expect: /: servers\[0\]\.listen: listen 127\.0\.0\.1:\d+: address already in use$/m
  },
  { rule: 'a size nginx would not read', source: server("clientMaxBodySize: '1x' as never"), expect: /: servers\[0\]\.clientMaxBodySize: expected a size: bytes, or a number with k, m or g \('8k', '1m'\)$/m },
  { rule: 'large_client_header_buffers without a size', source: server("largeClientHeaderBuffers: '4' as never"), expect: /: servers\[0\]\.largeClientHeaderBuffers: expected 'NUMBER SIZE' as nginx's large_client_header_buffers \('4 8k'\)$/m },
  { rule: 'a connection limit set on a location (nginx allows it in http and server only)', source: server("locations: { '/': { clientHeaderTimeout: 5 } as never }"), expect: /: servers\[0\]\.locations\["\/"\]\.clientHeaderTimeout: unknown key$/m },
  { rule: 'setHeaders naming a header the proxy writes itself', source: `${head.replace('respond, ', 'respond, proxy, ')}export default defineConfig({ servers: [{ listen: '127.0.0.1:0', locations: { '/': proxy('http://127.0.0.1:9', { setHeaders: { Connection: 'upgrade' } }) } }] })\n`, expect: /: servers\[0\]\.locations\["\/"\]\.setHeaders\["Connection"\]: the proxy sets "Connection" itself \(keep-alive to the upstream\); to pass WebSocket upgrades, use websocket\(target\) for this location$/m },
  { rule: 'ignoreHeaders naming a header nginx\'s proxy_ignore_headers does not take', source: `${head.replace('respond, ', 'respond, proxy, ')}export default defineConfig({ servers: [{ listen: '127.0.0.1:0', locations: { '/': proxy('http://127.0.0.1:9', { ignoreHeaders: ['X-Accel-Redirect', 'X-Nope' as never] }) } }] })\n`, expect: /: servers\[0\]\.locations\["\/"\]\.ignoreHeaders\[1\]: unknown header "X-Nope": nginx's proxy_ignore_headers takes X-Accel-Redirect, X-Accel-Expires, X-Accel-Limit-Rate, X-Accel-Buffering, X-Accel-Charset, Expires, Cache-Control, Set-Cookie, Vary$/m },
  { rule: 'a map whose source names an unknown variable', source: `${head}export default defineConfig({ maps: { a: { source: '$nope', values: { x: '1' } } }, servers: [{ listen: '127.0.0.1:0' }] })\n`, expect: /: maps\.a\.source: unknown variable "\$nope"$/m },
  { rule: 'a map variant that is a bad regex', source: `${head}export default defineConfig({ maps: { a: { source: '$uri', values: { '~(': '1' } } }, servers: [{ listen: '127.0.0.1:0' }] })\n`, expect: /: maps\.a\.values: invalid regular expression "~\(": /m },
  { rule: 'a rewrite with an unknown flag', source: server("rewrite: ['^/a$ /b lst']"), expect: /: servers\[0\]\.rewrite\[0\]: unknown flag "lst" \(last, break, redirect or permanent\)$/m },
  { rule: 'types keyed by something that is not a MIME type', source: server("types: { wasm: ['wasm'] }"), expect: /: servers\[0\]\.types\.wasm: keys are MIME types \("text\/html"\)$/m },
  { rule: 'a charset name with a space', source: server("charset: 'utf 8'"), expect: /: servers\[0\]\.charset: a charset name \("utf-8"\)$/m },
  { rule: 'ifModifiedSince outside nginx\'s three values', source: server("ifModifiedSince: 'after' as never"), expect: /: servers\[0\]\.ifModifiedSince: /m },
  { rule: 'maxRanges below 0', source: server("maxRanges: -1"), expect: /: servers\[0\]\.maxRanges: /m },
  { rule: 'tryFiles in a regex location with alias (nginx appends tried names to the alias)', source: `${head.replace('respond, ', 'respond, tryFiles, ')}export default defineConfig({ servers: [{ listen: '127.0.0.1:0', locations: { '~ ^/i/(.*)$': { alias: '/tmp/$1', handler: tryFiles('$uri', '=404') } } }] })\n`, expect: /: servers\[0\]\.locations\["~ \^\/i\/\(\.\*\)\$"\]: tryFiles in a regex location with "alias" is not supported: use "root", or serveStatic\(\)$/m },
  { rule: 'no default export', source: `${head}export const config = {}\n`, expect: /proxy\.config\.ts: the config module must `export default defineConfig\(\{ \.\.\. \}\)`$/m },
  { rule: 'a syntax error in the module', source: `${head}export default defineConfig({ servers: [ }\n`, expect: /proxy\.config\.ts: cannot load config: /m }
]

t.test('proxyctl check reports each config error with file, key path, exit 1, no stack', async (t) => {
  // A port some other process holds, for the "in use" case.
  const holder = net.createServer()
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { holder.close() })
  const busyPort = (holder.address() as net.AddressInfo).port

  for (const c of cases) {
    const dir = configDir(t)
    const file = writeConfig(dir, typeof c.source === 'function' ? c.source(busyPort) : c.source)
    const run = await runCli(['check', '--config', file])
    t.equal(run.code, 1, `${c.rule}: exit code 1`)
    t.match(run.stderr, c.expect, `${c.rule}: message`)
    t.ok(run.stderr.includes(file), `${c.rule}: names the file`)
    t.notMatch(run.stderr, /\n\s+at .+:\d+:\d+/, `${c.rule}: no stack trace`)
  }
})

t.test('a valid config passes check with exit 0 and prints the tree', async (t) => {
  const dir = configDir(t)
  const file = writeConfig(dir, server("serverName: 'example.com', locations: { '/': respond(200), '~ \\\\.png$': respond(204), '@app': respond(503) }"))
  const run = await runCli(['check', '--config', file])
  t.equal(run.code, 0)
  t.match(run.stdout, /server servers\[0\] example\.com/)
  t.match(run.stdout, /location ~ \\\.png\$\s+respond 204/)
  t.match(run.stdout, /location @app\s+respond 503/)
  t.match(run.stdout, /configuration is valid/)
})

t.test('proxyctl start exits 1 on a port in use, naming file and key path', async (t) => {
  const holder = net.createServer()
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { holder.close() })
  const port = (holder.address() as net.AddressInfo).port
  const dir = configDir(t)
  const file = writeConfig(dir, `${head}export default defineConfig({ servers: [{ listen: ['127.0.0.1:0', '127.0.0.1:${port}'] }] })\n`)
  const run = await runCli(['start', '--config', file])
  t.equal(run.code, 1)
  t.match(run.stderr, new RegExp(`${file.replace(/[.]/g, '\\.')}: servers\\[0\\]\\.listen: listen 127\\.0\\.0\\.1:${port}: address already in use`))
})
