/**
 * Static files first, else an app over a unix socket, as examples/rails365.config.ts (the
 * article's second example) ships: examples/rails365-upstream.mjs (the stand-in Rails app) on a
 * unix socket, `proxyctl start --config examples/rails365.config.ts` in front of it, and requests
 * from a client over 127.0.0.1 and [::1]. A file under the root is served from it, anything else
 * goes to the app over the unix socket and its answer comes back through the proxy, with Host as
 * the client sent it, X-Forwarded-For appended, and no rewriting of Location (proxy_redirect
 * off); the app down is a 502 while files are still served.
 */
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { runCli, startCli, targetOf, tmpDir } from '../helpers/proxy.js'
import { exchange, headerValues, type Target } from '../helpers/raw-http.js'
import { CONFIG, startApp } from './fixtures/rails365-cases.js'

t.test('examples/rails365.config.ts: static files first, else the app over a unix socket', async t => {
  const sock = path.join(tmpDir(t), 'rails365.sock')
  const app = await startApp(t, sock)
  t.ok(fs.existsSync(sock), 'the app listens on its unix socket')

  process.env.RAILS365_SOCKET = sock
  process.env.RAILS365_LISTEN = '127.0.0.1:0,[::1]:0'
  t.teardown(() => { delete process.env.RAILS365_SOCKET; delete process.env.RAILS365_LISTEN })

  const check = await runCli(['check', '--config', CONFIG])
  t.equal(check.code, 0, `proxyctl check accepts the example${check.code === 0 ? '' : `:\n${check.stdout}${check.stderr}`}`)

  const run = await startCli(t, ['--config', CONFIG], { expectListeners: 2 })
  const v4 = targetOf(run.urls[0] as string)
  const v6 = targetOf(run.urls[1] as string)
  const port = v4.port as number
  const get = (to: Target, target: string, host: string, headers: Array<[string, string]> = []): ReturnType<typeof exchange> =>
    exchange(to, target, { host, headers })
  const appSaw = (r: Awaited<ReturnType<typeof exchange>>): { host: string[], xff: string[] } =>
    ({ host: headerValues(r.headers, 'x-app-host'), xff: headerValues(r.headers, 'x-app-forwarded-for') })

  // try_files $uri/index.html $uri: a file under the root
  const about = await get(v4, '/about.html', 'www.rails365.net')
  t.equal(about.status, 200, '/about.html: 200 from the root')
  t.match(about.body, /<h1>About rails365<\/h1>/, '/about.html: the file\'s content')
  t.strictSame(appSaw(about).host, [], '/about.html: the app was not asked')

  // The rest of try_files $uri/index.html $uri on the public/ tree, as nginx answers each.
  const tree: Array<{ rule: string, method?: string, target: string, status: number, body: RegExp }> = [
    { rule: '/ is $uri/index.html of the root', target: '/', status: 200, body: /<h1>Home of rails365<\/h1>/ },
    { rule: '/docs/ is its own index.html', target: '/docs/', status: 200, body: /<h1>Docs index<\/h1>/ },
    { rule: '/docs (no slash) is served from $uri/index.html at once, no redirect', target: '/docs', status: 200, body: /<h1>Docs index<\/h1>/ },
    { rule: 'POST to a static file is 405, as nginx\'s static module', method: 'POST', target: '/about.html', status: 405, body: /405 Not Allowed/ }
  ]
  for (const c of tree) {
    const r = await exchange(v4, c.target, { host: 'www.rails365.net', ...(c.method ? { method: c.method, body: 'a=1' } : {}) })
    t.equal(r.status, c.status, `${c.rule}: status`)
    t.match(r.body, c.body, `${c.rule}: body`)
    t.strictSame(appSaw(r).host, [], `${c.rule}: the app was not asked`)
  }
  const post = await exchange(v4, '/articles/', { host: 'www.rails365.net', method: 'POST', body: 'title=hi' })
  t.equal(post.status, 200, 'POST /articles/ (no such file) goes to the app')
  t.match(app.output(), /POST \/articles\//, 'the app saw the POST')

  // ... else @rails365, over the unix socket
  const articles = await get(v4, '/articles/', 'www.rails365.net')
  t.equal(articles.status, 200, '/articles/: 200')
  t.match(articles.body, /<h1>Articles<\/h1>/, '/articles/: the app\'s page comes back through the proxy')
  t.strictSame(appSaw(articles), { host: ['www.rails365.net'], xff: ['127.0.0.1'] }, '/articles/: Host as sent ($http_host), X-Forwarded-For the client')
  t.equal(headerValues(articles.headers, 'x-runtime').length, 1, '/articles/: the app\'s own headers pass')
  t.equal(headerValues(articles.headers, 'content-length')[0], String(Buffer.byteLength(articles.body, 'latin1')), '/articles/: Content-Length kept')

  const withPort = await get(v4, '/articles/1', `www.rails365.net:${port}`, [['X-Forwarded-For', '203.0.113.7']])
  t.equal(withPort.status, 200, '/articles/1: 200')
  t.strictSame(appSaw(withPort), { host: [`www.rails365.net:${port}`], xff: ['203.0.113.7, 127.0.0.1'] },
    '/articles/1: Host keeps its port; $proxy_add_x_forwarded_for appends the client to the incoming X-Forwarded-For')

  const six = await get(v6, '/articles/', 'www.rails365.net')
  t.strictSame(appSaw(six), { host: ['www.rails365.net'], xff: ['::1'] }, 'a client over [::1]: X-Forwarded-For ::1')

  const otherHost = await get(v4, '/articles/', 'rails365.example')
  t.strictSame(appSaw(otherHost).host, ['rails365.example'], 'default_server: another Host is served too, and passed as sent')

  // proxy_redirect off: Location exactly as the app sent it
  const login = await get(v4, '/login', 'www.rails365.net')
  t.equal(login.status, 302, '/login: 302')
  t.strictSame(headerValues(login.headers, 'location'), ['http://www.rails365.net/users/sign_in'], '/login: Location as the app built it from Host, not rewritten')
  const legacy = await get(v4, '/legacy', 'www.rails365.net')
  t.strictSame(headerValues(legacy.headers, 'location'), ['http://rails365/articles/'],
    '/legacy: Location naming the upstream is not rewritten (proxy_redirect default would make it http://www.rails365.net:PORT/articles/)')

  const missing = await get(v4, '/nope', 'www.rails365.net')
  t.equal(missing.status, 404, 'a path neither a file nor known to the app: the app\'s 404')
  t.match(missing.body, /served by the rails365 app/, 'the 404 is the app\'s')

  t.match(app.output(), /GET \/articles\/ host=www\.rails365\.net x-forwarded-for=127\.0\.0\.1/, 'the app logged the proxied request')
  t.notMatch(app.output(), /about\.html/, 'the app never saw the static file request')

  // the app stops: nginx's 502, and it answers again once back (fail_timeout=0)
  await app.stop()
  const down = await get(v4, '/articles/', 'www.rails365.net')
  t.equal(down.status, 502, 'app down: 502 Bad Gateway')
  const again = await get(v4, '/about.html', 'www.rails365.net')
  t.equal(again.status, 200, 'app down: static files are still served')
  const app2 = await startApp(t, sock)
  const back = await get(v4, '/articles/', 'www.rails365.net')
  t.equal(back.status, 200, 'app back: answered at once (failTimeout 0 never takes the only server out)')
  await app2.stop()

  t.equal(await run.stop('SIGTERM'), 0, 'proxyctl stops cleanly')
})
