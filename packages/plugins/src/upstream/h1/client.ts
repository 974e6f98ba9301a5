import { H1Connection, type ConnectionOwner, type H1Handler, type H1Request, type H1Target } from './connection.js'
import { H1Error } from './errors.js'

export interface H1ClientOptions {
  /** Milliseconds to establish a connection (proxy_connect_timeout). */
  connectTimeout: number
  /** Milliseconds an idle connection is kept (upstream keepalive_timeout). */
  keepaliveTimeout: number
  /** Sent as `host` when a request has none. */
  defaultHost: string
  /** Longest response head in bytes. Default 16 KiB, as undici and Node. */
  maxHeaderSize?: number
}

/** How often idle connections past their time are closed. Reuse checks the time itself. */
const SWEEP_INTERVAL = 1000
/** An upstream's `Keep-Alive: timeout=N` is trusted minus this margin (undici's rule). */
const HINT_MARGIN = 1000

/**
 * The HTTP/1.1 client of one upstream server (a peer): keep-alive connections, the most recently
 * used first (nginx's keepalive cache), no limit of its own (max_conns is the peer's, counted in
 * flight). Requests without a body, or with one buffered in memory, come here; see proxy.ts.
 */
export class H1Client implements ConnectionOwner {
  private readonly idle: H1Connection[] = []
  private readonly all = new Set<H1Connection>()
  private closing = false
  private drained: (() => void) | undefined
  private sweeper: NodeJS.Timeout | undefined
  private readonly connectionOptions

  constructor (private readonly target: H1Target, private readonly options: H1ClientOptions) {
    this.connectionOptions = { connectTimeout: options.connectTimeout, maxHeaderSize: options.maxHeaderSize ?? 16384, defaultHost: options.defaultHost }
  }

  /** Connections open, idle or busy. */
  get size (): number { return this.all.size }

  dispatch (request: H1Request, handler: H1Handler): void {
    if (this.closing) { handler.onError(new H1Error('PROXYCTL_H1_CLOSING', 'upstream client is closed')); return }
    const now = performance.now()
    let conn: H1Connection | undefined
    while ((conn = this.idle.pop()) !== undefined && conn.idleUntil <= now) conn.close()
    if (conn === undefined) {
      conn = new H1Connection(this.target, this, this.connectionOptions)
      this.all.add(conn)
    }
    conn.dispatch(request, handler)
  }

  released (conn: H1Connection): void {
    if (this.closing) { conn.close(); return }
    const hint = conn.keepAliveHint
    const keep = hint > 0 ? Math.min(this.options.keepaliveTimeout, hint - HINT_MARGIN) : this.options.keepaliveTimeout
    if (keep <= 0) { conn.close(); return }
    conn.idleUntil = performance.now() + keep
    this.idle.push(conn)
    this.sweeper ??= setInterval(() => this.sweep(), SWEEP_INTERVAL).unref()
  }

  closed (conn: H1Connection): void {
    this.all.delete(conn)
    const i = this.idle.indexOf(conn)
    if (i !== -1) this.idle.splice(i, 1)
    if (this.all.size === 0) this.drained?.()
  }

  private sweep (): void {
    const now = performance.now()
    // The oldest idle connections are at the bottom of the stack.
    while (this.idle.length > 0 && this.idle[0].idleUntil <= now) (this.idle.shift() as H1Connection).close()
    if (this.idle.length === 0 && this.sweeper !== undefined) { clearInterval(this.sweeper); this.sweeper = undefined }
  }

  /** Closes idle connections now and busy ones once their exchange ends. */
  async close (): Promise<void> {
    this.closing = true
    if (this.sweeper !== undefined) clearInterval(this.sweeper)
    for (const conn of this.idle.splice(0)) conn.close()
    if (this.all.size === 0) return
    await new Promise<void>((resolve) => { this.drained = resolve })
  }

  /** Closes every connection now; exchanges in flight fail. */
  async destroy (): Promise<void> {
    this.closing = true
    if (this.sweeper !== undefined) clearInterval(this.sweeper)
    for (const conn of this.all) conn.close()
    if (this.all.size === 0) return
    await new Promise<void>((resolve) => { this.drained = resolve })
  }
}
