import cluster, { type Worker } from 'node:cluster'
import fs from 'node:fs'
import http from 'node:http'
import type { ResolvedConfig } from '../config/model.js'
import { ListenError } from '../errors.js'
import { CONTENT_TYPE, mergeSnapshots, renderText, type MetricsSnapshot } from './registry.js'
import { statusOf } from './status.js'

/** The status page's files, shipped beside dist/ (no build step). */
const PAGE_DIR = new URL('../../status/', import.meta.url)
const PAGE_FILES: Record<string, [string, string]> = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/status.js': ['status.js', 'text/javascript; charset=utf-8'],
  '/status.css': ['status.css', 'text/css; charset=utf-8']
}

export interface MetricsServer {
  readonly url: string
  close (): Promise<void>
}

/** Answers one request of the metrics listener (or of a location's `metrics()`): /metrics, /status.json, the page. */
export function serveMetrics (path: string, snapshot: () => Promise<MetricsSnapshot>, res: http.ServerResponse): void {
  const page = PAGE_FILES[path]
  if (page !== undefined) {
    fs.readFile(new URL(page[0], PAGE_DIR), (err, body) => {
      if (err !== null) { res.writeHead(500).end(); return }
      res.writeHead(200, { 'content-type': page[1], 'cache-control': 'no-cache' }).end(body)
    })
    return
  }
  if (path !== '/metrics' && path !== '/status.json') { res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n'); return }
  snapshot().then((snap) => {
    const body = path === '/metrics' ? renderText(snap) : JSON.stringify(statusOf(snap))
    res.writeHead(200, { 'content-type': path === '/metrics' ? CONTENT_TYPE : 'application/json', 'cache-control': 'no-store' }).end(body)
  }, (err: unknown) => {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics: ${(err as Error).message}\n`)
  })
}

/** The listener of `metrics.listen`; `snapshot` gives this process's figures, or every worker's. */
export async function startMetricsServer (config: ResolvedConfig, snapshot: () => Promise<MetricsSnapshot>): Promise<MetricsServer | undefined> {
  const listen = config.metrics.listen
  if (listen === undefined) return undefined
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') { res.writeHead(405, { allow: 'GET, HEAD' }).end(); return }
    serveMetrics((req.url ?? '/').split('?')[0] as string, snapshot, res)
  })
  const key = listen.kind === 'unix' ? `unix:${listen.path}` : `${listen.host}:${listen.port}`
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => { reject(new ListenError(key, `metrics: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`, { cause: err })) })
    // The primary of `workers` binds it alone: its workers must not share it (node:cluster would).
    if (listen.kind === 'unix') { if (fs.existsSync(listen.path)) fs.unlinkSync(listen.path); server.listen({ path: listen.path, exclusive: true }, resolve) } else server.listen({ host: listen.host, port: listen.port, exclusive: true }, resolve)
  })
  const addr = server.address()
  const url = typeof addr === 'object' && addr !== null ? `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}` : `unix:${String(addr)}`
  return {
    url,
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections() })
  }
}

const ASK = 'proxyctl:metrics?'
const ANSWER = 'proxyctl:metrics!'
let asked = 0

/** In a cluster worker: answer the primary's requests for this process's figures. */
export function answerPrimary (config: ResolvedConfig): () => void {
  const onMessage = (msg: unknown): void => {
    if (typeof msg !== 'object' || msg === null || (msg as { type?: string }).type !== ASK) return
    process.send?.({ type: ANSWER, id: (msg as { id: number }).id, snapshot: config.metrics.registry.snapshot() })
  }
  process.on('message', onMessage)
  return () => { process.removeListener('message', onMessage) }
}

/** In the primary: every live worker's figures, merged (a worker that does not answer within 1 s is left out). */
export function askWorkers (): Promise<MetricsSnapshot> {
  const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected())
  const id = ++asked
  return Promise.all(workers.map((w) => new Promise<MetricsSnapshot | undefined>((resolve) => {
    const done = (snap: MetricsSnapshot | undefined): void => { clearTimeout(timer); w.removeListener('message', onMessage); resolve(snap) }
    const onMessage = (msg: { type?: string, id?: number, snapshot?: MetricsSnapshot }): void => { if (msg?.type === ANSWER && msg.id === id) done(msg.snapshot) }
    const timer = setTimeout(() => done(undefined), 1000)
    w.on('message', onMessage)
    w.send({ type: ASK, id })
  }))).then((all) => mergeSnapshots(all.filter((s): s is MetricsSnapshot => s !== undefined)))
}
