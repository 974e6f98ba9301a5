// Plugins apply to their scope (global, server, location and its nested locations) and never
// leak into siblings; each location is its own encapsulated Fastify context. Also: HTTPS listen.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import https from 'node:https'
import path from 'node:path'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { respond, defineHandler } from '@proxyctl/core'
import { request, startConfig, targetOf, tmpDir, urlOf } from '../helpers/proxy.js'

/** A plugin that stamps a response header, to see which scopes it reached. */
const stamp = (name: string) => async function stampPlugin (f: FastifyInstance) {
  f.addHook('onRequest', async (_req, reply) => { reply.header(`x-${name}`, '1') })
}

/** A plugin that decorates the request, to see where the decorator exists. */
async function decorates (f: FastifyInstance, opts: { value: string }) {
  f.decorateRequest('scoped', opts.value)
}

// Answers with the stamps it sees on its own reply and whether `request.scoped` exists.
const show = (label: string) => defineHandler(`show ${label}`, () => ({
  handle: (req, reply) => reply.send(`${label}:${(req as unknown as { scoped?: string }).scoped ?? 'none'}`)
}))

const cases: Array<{ rule: string, host: string, path: string, body: string, stamps: string[] }> = [
  { rule: 'global plugin reaches every location of every server', host: 'a.test', path: '/plain', body: 'a-plain:none', stamps: ['global', 'server-a'] },
  { rule: 'server plugin reaches only its own server', host: 'b.test', path: '/plain', body: 'b-plain:none', stamps: ['global'] },
  { rule: 'location plugin hooks and decorators apply in that location', host: 'a.test', path: '/api/x', body: 'a-api:from-api', stamps: ['global', 'server-a', 'api'] },
  { rule: 'a nested location inherits its parent location plugins', host: 'a.test', path: '/api/v1/x', body: 'a-api-v1:from-api', stamps: ['global', 'server-a', 'api', 'v1'] },
  { rule: 'a sibling location sees none of them', host: 'a.test', path: '/other/', body: 'a-other:none', stamps: ['global', 'server-a'] },
  { rule: 'plugins given as [plugin, options] get their options', host: 'b.test', path: '/opts', body: 'b-opts:from-options', stamps: ['global'] }
]
const allStamps = ['global', 'server-a', 'api', 'v1']

t.test('plugin scopes', async (t) => {
  const proxy = await startConfig(t, {
    plugins: [stamp('global')],
    servers: [
      {
        listen: '127.0.0.1:0',
        serverName: 'a.test',
        plugins: [stamp('server-a')],
        locations: {
          '/plain': show('a-plain'),
          '/api/': {
            plugins: [stamp('api'), { plugin: decorates, options: { value: 'from-api' } }],
            handler: show('a-api'),
            locations: { '/api/v1/': { plugins: [stamp('v1')], handler: show('a-api-v1') } }
          },
          '/other/': show('a-other')
        }
      },
      {
        listen: '127.0.0.1:0',
        serverName: 'b.test',
        locations: {
          '/plain': show('b-plain'),
          '/opts': { plugins: [[decorates, { value: 'from-options' }]], handler: show('b-opts') }
        }
      }
    ]
  })
  const target = targetOf(urlOf(proxy))
  for (const c of cases) {
    const res = await request(target, { path: c.path, headers: { host: c.host } })
    t.equal(res.body, c.body, c.rule)
    for (const s of allStamps) t.equal(res.headers[`x-${s}`] !== undefined, c.stamps.includes(s), `${c.rule}: ${s} ${c.stamps.includes(s) ? 'applies' : 'does not apply'}`)
  }
})

t.test('https listen serves TLS with the given certificate', async (t) => {
  const dir = tmpDir(t)
  const key = path.join(dir, 'key.pem')
  const cert = path.join(dir, 'cert.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' })
  const proxy = await startConfig(t, {
    servers: [{
      listen: { address: '127.0.0.1:0', https: { cert: fs.readFileSync(cert), key: fs.readFileSync(key) } },
      locations: { '/': respond(200, '$scheme $https') }
    }]
  })
  t.match(urlOf(proxy), /^https:\/\/127\.0\.0\.1:\d+$/)
  const { port } = targetOf(urlOf(proxy))
  const body = await new Promise<string>((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, path: '/', ca: fs.readFileSync(cert), servername: 'localhost', checkServerIdentity: () => undefined }, (res) => {
      let b = ''
      res.on('data', (d) => { b += d })
      res.on('end', () => resolve(b))
    }).on('error', reject)
  })
  t.equal(body, 'https on')
})

/** A plugin carrying fastify-plugin's metadata, as `fp(fn, meta)` leaves it. */
function withMeta (meta: Record<string, unknown>) {
  const fn = async function metaPlugin (_f: FastifyInstance): Promise<void> {}
  ;(fn as unknown as Record<symbol, unknown>)[Symbol.for('plugin-meta')] = meta
  return fn
}

t.test('fastify-plugin metadata is checked by Fastify as on the plugin itself', async (t) => {
  const rows: Array<{ rule: string, meta: Record<string, unknown>, code: string | undefined }> = [
    { rule: 'a plugin for this Fastify major starts', meta: { name: 'fits', fastify: '5.x' }, code: undefined },
    { rule: 'a plugin for another Fastify major is refused', meta: { name: 'old', fastify: '4.x' }, code: 'FST_ERR_PLUGIN_VERSION_MISMATCH' },
    { rule: 'a plugin whose dependency is not registered is refused', meta: { name: 'needy', dependencies: ['not-here'] }, code: 'FST_ERR_PLUGIN_DEPENDENCY_NOT_REGISTERED' }
  ]
  for (const row of rows) {
    const started = startConfig(t, { plugins: [withMeta(row.meta)], servers: [{ listen: '127.0.0.1:0', locations: { '/': respond(200, 'ok') } }] })
    if (row.code === undefined) await t.resolves(started, row.rule)
    else await t.rejects(started, { code: row.code }, row.rule)
  }
})
