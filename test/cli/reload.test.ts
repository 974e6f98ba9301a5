// Reload (`proxyctl reload`, SIGHUP) as a user runs it: the built CLI started on a TypeScript
// config, the config file rewritten, then reloaded. Real upstreams count the sockets they accept,
// a real `ws` peer holds a tunnel. Every row runs with one process and with `workers: 2`.
import fs from 'node:fs'
import http from 'node:http'
import type net from 'node:net'
import path from 'node:path'
import t, { type Test } from 'tap'
import { configDir, request, runCli, startCli, writeConfig, type StartedCli } from '../helpers/proxy.js'
import { freePort } from '../helpers/failure.js'
import { waitFor, type Teardown } from '../helpers/lifecycle.js'
import { closed, nextMessage, openWs, startWsUpstream } from '../helpers/ws.js'
import { handshake, testCa } from '../helpers/tls.js'
import type { WebSocket } from 'ws'

/** An upstream that answers its name and counts the connections it accepted; `/slow` answers after 1.5 s. */
interface CountingUpstream { readonly address: string, accepted: number }

async function countingUpstream (t: Teardown, name: string): Promise<CountingUpstream> {
  const up = { address: '', accepted: 0 }
  const sockets = new Set<net.Socket>()
  const server = http.createServer((req, res) => {
    const answer = (): void => { res.end(`${name} ${req.url ?? ''}`) }
    if (req.url === '/slow') setTimeout(answer, 1500)
    else answer()
  })
  // Longer than any row: a connection the upstream let go would look like one the proxy dropped.
  server.keepAliveTimeout = 120_000
  server.on('connection', (s) => { up.accepted++; sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  up.address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close() })
  return up
}

/** What a row's configs may say; each row writes its config before and after from these. */
interface Shape {
  listen: number[]
  /** Locations: key to the handler's source. */
  locations: Record<string, string>
  /** Named upstreams: name to its servers. */
  upstreams?: Record<string, string[]>
  /** Raw source spliced into the server block (a bad key, for the error rows). */
  extra?: string
  /** Raw source for the whole `servers` array instead (the TLS row). */
  servers?: string
  /** metrics.listen's port. */
  metrics?: number
}

function source (s: Shape, workers: number): string {
  const locations = Object.entries(s.locations).map(([k, v]) => `    ${JSON.stringify(k)}: ${v},`).join('\n')
  const upstreams = Object.entries(s.upstreams ?? {}).map(([k, v]) => `    ${k}: { servers: ${JSON.stringify(v)} },`).join('\n')
  return `import { defineConfig, respond, proxy, websocket } from 'proxyctl'
export default defineConfig({
  workers: ${workers},
  shutdownTimeout: 3000,${s.metrics === undefined ? '' : `\n  metrics: { listen: '127.0.0.1:${s.metrics}' },`}
  upstreams: {
${upstreams}
  },
  servers: ${s.servers ?? `[{
    listen: ${JSON.stringify(s.listen.map((p) => `127.0.0.1:${p}`))},${s.extra ?? ''}
    locations: {
${locations}
    }
  }]`}
})
`
}

/** Two servers on one TLS address, each with the certificate files a.crt/a.key and b.crt/b.key beside the config. */
function tlsServers (port: number): string {
  return `[
    { serverName: 'a.test', listen: { address: '127.0.0.1:${port}', https: { cert: './a.crt', key: './a.key' } }, locations: { '/': respond(200, 'a') } },
    { serverName: 'b.test', listen: { address: '127.0.0.1:${port}', https: { cert: './b.crt', key: './b.key' } }, locations: { '/': respond(200, 'b') } }
  ]`
}

/** GET on a fresh connection (so with workers the primary hands it to either). */
async function get (port: number, p: string): Promise<{ status: number, body: string }> {
  const r = await request({ host: '127.0.0.1', port }, { path: p, headers: { connection: 'close' } })
  return { status: r.status, body: r.body }
}

async function refused (port: number): Promise<boolean> {
  try { await get(port, '/'); return false } catch (err) { return (err as NodeJS.ErrnoException).code === 'ECONNREFUSED' }
}

interface Env {
  t: Test
  run: StartedCli
  file: string
  dir: string
  workers: number
  ports: number[]
  up: CountingUpstream
  up2: CountingUpstream
  wsUp: string
  /** Rewrites the config file. */
  write (s: Shape): void
  /** `proxyctl reload -c FILE`: its exit code and output. */
  reload (): Promise<{ code: number | null, stdout: string, stderr: string }>
}

interface Row {
  name: string
  before: (e: Env) => Shape
  /** Runs the action between the two configs and checks what the rule says. */
  check: (e: Env) => Promise<void>
}

const rows: Row[] = [
  {
    name: 'a config with errors: proxyctl reload prints them with their key paths and exits 1 without signalling; the old config keeps serving',
    before: (e) => ({ listen: [e.ports[0] as number], locations: { '/': "respond(200, 'v1')" } }),
    async check ({ t, run, write, reload, ports }) {
      write({ listen: [ports[0] as number], locations: { '/': "respond(200, 'v2')" }, extra: "\n    clientMaxBodySize: 'lots'," })
      const r = await reload()
      t.equal(r.code, 1, 'exit 1')
      t.match(r.stderr, /proxy\.config\.ts: servers\[0\]\.clientMaxBodySize: /, 'the error names file and key path')
      t.notMatch(run.output(), /SIGHUP/, 'nothing was signalled')
      t.same(await get(ports[0] as number, '/'), { status: 200, body: 'v1' }, 'the old config answers')
    }
  },
  {
    name: 'SIGHUP with a config in error: the errors are logged with their key paths and the old config keeps serving',
    before: (e) => ({ listen: [e.ports[0] as number], locations: { '/': "respond(200, 'v1')" } }),
    async check ({ t, run, write, ports }) {
      write({ listen: [ports[0] as number], locations: { '/': "respond(200, 'v2')", '/x': "respond(200, '$no_such_variable')" } })
      run.child.kill('SIGHUP')
      await waitFor(() => /reload failed/.test(run.output()), 20_000, 'the failure line')
      t.match(run.output(), /"code":"PROXYCTL_CONFIG_INVALID".*reload failed.*servers\[0\]\.locations\[\\"\/x\\"\]\.body: unknown variable .*no_such_variable/, 'logged with its code and key path')
      t.same(await get(ports[0] as number, '/'), { status: 200, body: 'v1' }, 'the old config answers')
    }
  },
  {
    name: 'a changed location: new requests get the new config as soon as proxyctl reload exits 0; a request in flight finishes on the old',
    before: (e) => ({ listen: [e.ports[0] as number], upstreams: { app: [e.up.address] }, locations: { '/': "respond(200, 'v1')", '/slow': "proxy('http://app')" } }),
    async check ({ t, write, reload, ports, up }) {
      const port = ports[0] as number
      const slow = get(port, '/slow')
      await new Promise((resolve) => setTimeout(resolve, 200))
      write({ listen: [port], upstreams: { app: [up.address] }, locations: { '/': "respond(200, 'v2')" } })
      const r = await reload()
      t.equal(r.code, 0, `exit 0 (${r.stderr.trim()})`)
      t.match(r.stdout, /generation 2 serves/)
      t.same(await get(port, '/'), { status: 200, body: 'v2' }, 'the new location answers at once')
      t.same(await slow, { status: 200, body: 'app /slow' }, 'the request in flight got its whole answer')
      t.equal((await get(port, '/slow')).body, 'v2', 'the removed location is gone: / answers it')
    }
  },
  {
    name: 'an added listener answers and a removed one refuses; the kept one serves throughout',
    before: (e) => ({ listen: [e.ports[0] as number, e.ports[1] as number], locations: { '/': "respond(200, 'v1')" } }),
    async check ({ t, write, reload, ports }) {
      const [kept, removed, added] = ports as [number, number, number]
      t.equal((await get(removed, '/')).body, 'v1')
      write({ listen: [kept, added], locations: { '/': "respond(200, 'v2')" } })
      t.equal((await reload()).code, 0, 'exit 0')
      t.same(await get(added, '/'), { status: 200, body: 'v2' }, 'the added address answers')
      t.same(await get(kept, '/'), { status: 200, body: 'v2' }, 'the kept address answers with the new config')
      let gone = false
      for (let i = 0; i < 50 && !gone; i++) { gone = await refused(removed); if (!gone) await new Promise((resolve) => setTimeout(resolve, 100)) }
      t.ok(gone, 'the removed address refuses connections')
    }
  },
  {
    name: 'an unchanged upstream keeps its pool: the upstream accepts no new connection after the reload',
    before: (e) => ({ listen: [e.ports[0] as number], upstreams: { app: [e.up.address] }, locations: { '/': "proxy('http://app')", '/v': "respond(200, 'v1')" } }),
    async check ({ t, write, reload, ports, up, workers }) {
      const port = ports[0] as number
      // Every worker opens its connection (the primary hands fresh connections round robin, to
      // the workers listening: the second may still be loading its config).
      const until = Date.now() + 20_000
      while (up.accepted < workers && Date.now() < until) { await get(port, '/'); await new Promise((resolve) => setTimeout(resolve, 50)) }
      t.equal(up.accepted, workers, 'one upstream connection per process, kept alive')
      write({ listen: [port], upstreams: { app: [up.address] }, locations: { '/': "proxy('http://app')", '/v': "respond(200, 'v2')" } })
      t.equal((await reload()).code, 0, 'exit 0')
      t.equal((await get(port, '/v')).body, 'v2', 'the changed location answers')
      for (let i = 0; i < 10; i++) t.equal((await get(port, '/')).body, 'app /', 'proxied after the reload')
      t.equal(up.accepted, workers, 'no new upstream connection: the pool was carried over')
    }
  },
  {
    name: 'a changed upstream: requests go to its new servers',
    before: (e) => ({ listen: [e.ports[0] as number], upstreams: { app: [e.up.address] }, locations: { '/': "proxy('http://app')" } }),
    async check ({ t, write, reload, ports, up, up2 }) {
      const port = ports[0] as number
      t.equal((await get(port, '/')).body, 'app /')
      write({ listen: [port], upstreams: { app: [up2.address] }, locations: { '/': "proxy('http://app')" } })
      t.equal((await reload()).code, 0, 'exit 0')
      const before = up.accepted
      for (let i = 0; i < 4; i++) t.equal((await get(port, '/')).body, 'app2 /', 'the new server answers')
      t.equal(up.accepted, before, 'the old server gets nothing more')
    }
  },
  {
    name: 'certificates are read again: a kept TLS address presents the new files to new handshakes, the default and an SNI-chosen server alike',
    before: (e) => {
      const ca = testCa(path.join(e.dir, 'certs'))
      for (const [file, name] of [['a', 'a.test'], ['b', 'b.test']]) {
        const leaf = ca.leaf(`${file}-old`, [name], { cn: `${name} old` })
        fs.copyFileSync(leaf.certFile, path.join(e.dir, `${file}.crt`))
        fs.copyFileSync(leaf.keyFile, path.join(e.dir, `${file}.key`))
      }
      return { listen: [e.ports[0] as number], locations: {}, servers: tlsServers(e.ports[0] as number) }
    },
    async check ({ t, write, reload, ports, dir }) {
      const port = ports[0] as number
      t.same([(await handshake(port)).cn, (await handshake(port, { servername: 'b.test' })).cn], ['a.test old', 'b.test old'], 'before: the files as they were')
      const ca = testCa(path.join(dir, 'certs-new'))
      for (const [file, name] of [['a', 'a.test'], ['b', 'b.test']]) {
        const leaf = ca.leaf(`${file}-new`, [name], { cn: `${name} new` })
        fs.copyFileSync(leaf.certFile, path.join(dir, `${file}.crt`))
        fs.copyFileSync(leaf.keyFile, path.join(dir, `${file}.key`))
      }
      write({ listen: [port], locations: {}, servers: tlsServers(port) })
      t.equal((await reload()).code, 0, 'exit 0')
      t.same([(await handshake(port)).cn, (await handshake(port, { servername: 'b.test' })).cn], ['a.test new', 'b.test new'], 'after: the new files, without SNI and with it')
    }
  },
  {
    name: 'a change a reload cannot make (TLS on an address that is bound plain) is refused with its key path; the old config keeps serving',
    before: (e) => {
      const leaf = testCa(path.join(e.dir, 'certs')).leaf('a', ['a.test'])
      for (const [from, to] of [[leaf.certFile, 'a.crt'], [leaf.keyFile, 'a.key'], [leaf.certFile, 'b.crt'], [leaf.keyFile, 'b.key']]) fs.copyFileSync(from as string, path.join(e.dir, to as string))
      return { listen: [e.ports[0] as number], locations: { '/': "respond(200, 'v1')" } }
    },
    async check ({ t, run, write, reload, ports }) {
      const port = ports[0] as number
      write({ listen: [port], locations: {}, servers: tlsServers(port) })
      const r = await reload()
      t.equal(r.code, 1, 'exit 1')
      t.match(r.stderr, new RegExp(`proxy\\.config\\.ts: servers\\[0\\]\\.listen: 127\\.0\\.0\\.1:${port} is bound already: changing its TLS on or off needs a restart`), 'the process\'s error, with file and key path')
      t.match(run.output(), /reload failed/, 'and logged')
      t.same(await get(port, '/'), { status: 200, body: 'v1' }, 'the old config answers')
    }
  },
  {
    name: 'metrics count reloads: config_generation is one more, config_reloads_total counts each outcome',
    before: (e) => ({ listen: [e.ports[0] as number], metrics: e.ports[2] as number, locations: { '/': "respond(200, 'v1')" } }),
    async check ({ t, run, write, reload, ports, workers }) {
      const [port, , metricsPort] = ports as [number, number, number]
      write({ listen: [port], metrics: metricsPort, locations: { '/': "respond(200, '$nope')" } })
      run.child.kill('SIGHUP')
      await waitFor(() => /reload failed/.test(run.output()), 20_000, 'the failure line')
      write({ listen: [port], metrics: metricsPort, locations: { '/': "respond(200, 'v2')" } })
      t.equal((await reload()).code, 0, 'exit 0')
      const text = (await request({ host: '127.0.0.1', port: metricsPort }, { path: '/metrics' })).body
      const value = (series: string): number | undefined => { const m = new RegExp(`^${series.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text); return m === null ? undefined : Number(m[1]) }
      t.same({
        generation: value('proxyctl_config_generation'),
        ok: value('proxyctl_config_reloads_total{result="ok"}'),
        failed: value('proxyctl_config_reloads_total{result="failed"}') ?? 0
      }, {
        generation: 2,
        // Each worker counts its own; a config the primary refuses never reaches the workers (README).
        ok: workers,
        failed: workers === 1 ? 1 : 0
      })
    }
  },
  {
    name: 'a WebSocket on an unchanged location stays open while another location changes',
    before: (e) => ({ listen: [e.ports[0] as number], locations: { '/ws/': `websocket(${JSON.stringify(e.wsUp)})`, '/v': "respond(200, 'v1')" } }),
    async check ({ t, write, reload, ports, wsUp }) {
      const port = ports[0] as number
      const ws = await openWs(t, `ws://127.0.0.1:${port}/ws/`)
      ws.send('before')
      t.equal((await nextMessage(ws)).data.toString(), 'before')
      let closedAt: number | undefined
      ws.once('close', () => { closedAt = Date.now() })
      write({ listen: [port], locations: { '/ws/': `websocket(${JSON.stringify(wsUp)})`, '/v': "respond(200, 'v2')" } })
      t.equal((await reload()).code, 0, 'exit 0')
      t.equal((await get(port, '/v')).body, 'v2', 'the other location changed')
      // Past the old app's close (shutdownTimeout 3 s at most after the swap).
      await new Promise((resolve) => setTimeout(resolve, 3500))
      ws.send('after')
      t.equal((await nextMessage(ws)).data.toString(), 'after', 'the tunnel still echoes')
      t.equal(closedAt, undefined, 'never closed')
    }
  },
  {
    name: 'a WebSocket on a changed location is closed after the swap, within shutdownTimeout',
    before: (e) => ({ listen: [e.ports[0] as number], locations: { '/ws/': `websocket(${JSON.stringify(e.wsUp)})` } }),
    async check ({ t, write, reload, ports, wsUp }) {
      const port = ports[0] as number
      const ws: WebSocket = await openWs(t, `ws://127.0.0.1:${port}/ws/`)
      ws.send('before')
      t.equal((await nextMessage(ws)).data.toString(), 'before')
      const end = closed(ws, 10_000)
      write({ listen: [port], locations: { '/ws/': `websocket(${JSON.stringify(wsUp)}, { readTimeout: 30000 })` } })
      t.equal((await reload()).code, 0, 'exit 0')
      const reloaded = Date.now()
      await end
      t.ok(Date.now() - reloaded < 3000, 'closed within shutdownTimeout of the reload')
      const fresh = await openWs(t, `ws://127.0.0.1:${port}/ws/`)
      fresh.send('again')
      t.equal((await nextMessage(fresh)).data.toString(), 'again', 'a new tunnel opens on the new location')
    }
  }
]

// Each row starts a proxy and runs the CLI twice; with two rounds of rows that takes minutes on a busy machine.
t.setTimeout(720_000)

for (const workers of [1, 2]) {
  t.test(`reload, workers: ${workers}`, async (t) => {
    const wsUpstream = await startWsUpstream(t, { port: 0 })
    for (const row of rows) {
      await t.test(row.name, async (t) => {
        const dir = configDir(t)
        const file = path.join(dir, 'proxy.config.ts')
        const ports = [await freePort(), await freePort(), await freePort()]
        const partial = {
          t, file, dir, workers, ports,
          up: await countingUpstream(t, 'app'),
          up2: await countingUpstream(t, 'app2'),
          wsUp: wsUpstream.target,
          write: (s: Shape) => { writeConfig(dir, source(s, workers)) },
          reload: async () => await runCli(['reload', '-c', file], { timeoutMs: 60_000 })
        }
        const first = row.before(partial as Env)
        partial.write(first)
        const run = await startCli(t, ['--config', file], { expectListeners: first.listen.length })
        t.ok(fs.existsSync(path.join(dir, 'proxyctl.pid')), 'the pid file is beside the config')
        await row.check({ ...partial, run } as Env)
        t.equal(await run.stop('SIGTERM'), 0, 'stops cleanly afterwards')
        t.notOk(fs.existsSync(path.join(dir, 'proxyctl.pid')), 'the pid file is removed on stop')
      })
    }
  })
}

t.test('--version prints the version of proxyctl\'s package.json and exits 0', async (t) => {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../packages/cli/package.json', import.meta.url), 'utf8')) as { version: string }
  for (const flag of ['--version', '-v']) {
    const r = await runCli([flag])
    t.same({ code: r.code, stdout: r.stdout }, { code: 0, stdout: `proxyctl ${pkg.version}\n` }, flag)
  }
})

t.test('proxyctl reload without a running proxyctl: exit 1, says so', async (t) => {
  const dir = configDir(t)
  const file = writeConfig(dir, source({ listen: [await freePort()], locations: { '/': "respond(200, 'v1')" } }, 1))
  const r = await runCli(['reload', '-c', file])
  t.equal(r.code, 1)
  t.match(r.stderr, /proxyctl\.pid: no running proxyctl \(no pid file\)/)
})
