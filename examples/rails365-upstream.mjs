#!/usr/bin/env node
// A stand-in for the Rails app (unicorn) of the article's second example, listening on a unix
// socket, so examples/rails365.config.ts runs with nothing else installed:
//
//   node examples/rails365-upstream.mjs [SOCKET]     (default $RAILS365_SOCKET, else
//                                                     /tmp/proxyctl-example/rails365.sock)
//
// It answers with the Host and X-Forwarded-For it received (in the page and as X-App-Host /
// X-App-Forwarded-For headers), so what the proxy sends is visible with curl -i:
//   /articles/        an HTML list
//   /articles/N       one article
//   /login            302 to http://<Host>/users/sign_in (as Rails builds redirects from Host)
//   /legacy           302 to http://rails365/articles/ (an app that names its upstream)
//   /boom             500 (the app's own error page)
//   anything else     404
// Each request is read whole (its body too) before the answer, and logged as one line.
// RAILS365_RECORD=1 adds a line `received {"line","headers","body"}` per request (headers as
// [name, value] pairs in the order and case they came) and fixes X-Runtime, so that two proxies
// in front of the same app can be compared answer for answer
// (test/proxy/fixtures/rails365-nginx-compare.ts).
// SIGTERM / SIGINT close it and remove the socket file.
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'

const socket = process.argv[2] ?? process.env.RAILS365_SOCKET ?? '/tmp/proxyctl-example/rails365.sock'
fs.mkdirSync(path.dirname(socket), { recursive: true })

const escape = (s) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`)

const record = process.env.RAILS365_RECORD === '1'

const server = http.createServer((req, res) => {
  const started = process.hrtime.bigint()
  const chunks = []
  req.on('data', (d) => chunks.push(d))
  req.on('end', () => answer(req, res, started, Buffer.concat(chunks)))
})

function answer (req, res, started, received) {
  const host = req.headers.host ?? ''
  const xff = req.headers['x-forwarded-for'] ?? ''
  const send = (status, headers, body) => {
    res.writeHead(status, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'x-app-host': host,
      'x-app-forwarded-for': xff,
      'x-runtime': record ? '0.000100' : (Number(process.hrtime.bigint() - started) / 1e9).toFixed(6),
      ...headers
    })
    res.end(req.method === 'HEAD' ? undefined : body)
  }
  const page = (title, content) => `<!doctype html>\n<html><head><title>${escape(title)}</title></head><body>` +
    `<h1>${escape(title)}</h1>${content}<p>served by the rails365 app for host ${escape(host)}, forwarded for ${escape(xff)}</p></body></html>\n`
  const url = new URL(req.url ?? '/', 'http://app')
  console.log(`${req.method} ${req.url} host=${host} x-forwarded-for=${xff}`)
  const line = `${req.method} ${req.url} HTTP/${req.httpVersion}`
  const headers = []
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.push([req.rawHeaders[i], req.rawHeaders[i + 1]])
  if (record) console.log(`received ${JSON.stringify({ line, headers, body: received.toString('latin1') })}`)
  let m
  if (url.pathname === '/articles/' || url.pathname === '/articles') {
    send(200, {}, page('Articles', '<ul><li><a href="/articles/1">Deploying Rails behind nginx</a></li><li><a href="/articles/2">Unicorn and unix sockets</a></li></ul>'))
  } else if ((m = /^\/articles\/(\d+)$/.exec(url.pathname)) !== null) {
    send(200, {}, page(`Article ${m[1]}`, '<p>...</p>'))
  } else if (url.pathname === '/login') {
    send(302, { location: `http://${host}/users/sign_in` }, page('Redirecting', ''))
  } else if (url.pathname === '/legacy') {
    send(302, { location: 'http://rails365/articles/' }, page('Redirecting', ''))
  } else if (url.pathname === '/boom') {
    send(500, {}, page('We\'re sorry, but something went wrong', ''))
  } else {
    send(404, {}, page('Not Found', ''))
  }
}

try { fs.unlinkSync(socket) } catch {}
server.listen(socket, () => console.log(`rails365 app listening on unix:${socket}`))

const stop = () => {
  server.close(() => { try { fs.unlinkSync(socket) } catch {} ; process.exit(0) })
  server.closeAllConnections()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
