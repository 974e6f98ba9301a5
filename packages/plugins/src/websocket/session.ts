import type { UpstreamPeer } from '../upstream/pool.js'
import type { UpstreamHandshake } from './messages.js'

/** How long the other side of a closing session gets to flush before it is cut. */
export const CLOSE_GRACE = 1000

/**
 * What a byte tunnel (tunnel.ts) and a message relay (messages.ts) share once the handshake is
 * done: `readTimeout` over both directions, registration for shutdown, and one line when it ends.
 * Subclasses move the bytes; they call `touch()` on traffic and `finish()` when both sides closed.
 */
export abstract class WebSocketSession {
  private readonly opened = Date.now()
  private idle: NodeJS.Timeout | undefined
  private readonly guards: NodeJS.Timeout[] = []
  private readonly untrack: () => void
  private finished = false
  /** The 101 head's length, when the session wrote it (the access log's $body_bytes_sent is what follows). */
  headBytes = 0
  /** Why the session ended: the first cause wins. */
  protected reason: string | undefined

  constructor (
    protected readonly x: UpstreamHandshake,
    protected readonly peer: UpstreamPeer,
    private readonly release: () => void,
    private readonly kind: 'tunnel' | 'relay'
  ) {
    this.untrack = x.track(this)
    const limit = x.readTimeout
    if (limit > 0) this.idle = setTimeout(() => this.onIdle(limit), limit)
  }

  /** Ends both sides now. */
  protected abstract destroyBoth (): void

  /** The proxy is shutting down. */
  shutdown (): void {
    this.reason = 'proxy shutting down'
    this.goAway()
  }

  /** How the session ends at shutdown: at once, unless a subclass can say goodbye first. */
  protected goAway (): void { this.destroyBoth() }

  /** Traffic in either direction: the idle timer starts over. */
  protected touch (): void { this.idle?.refresh() }

  /** Runs `fn` after `CLOSE_GRACE` ms unless the session finishes first. */
  protected afterGrace (fn: () => void): void {
    this.guards.push(setTimeout(fn, CLOSE_GRACE).unref())
  }

  protected logOpen (fields: Record<string, unknown> = {}): void {
    const x = this.x
    x.log.debug({ upstream: x.upstreamName, server: this.peer.address, ...fields }, `websocket ${this.kind} open, upstream: "${x.upstreamName}", server: ${this.peer.address}`)
  }

  private onIdle (limit: number): void {
    const x = this.x
    this.reason = `idle for ${limit} ms (readTimeout)`
    const c = x.context()
    x.log.warn({ code: 'PROXYCTL_WEBSOCKET_IDLE_TIMEOUT', upstream: x.upstreamName, server: this.peer.address, limit: 'readTimeout', readTimeout: limit, ...c.fields },
      `websocket ${this.kind} idle for ${limit} ms (readTimeout), closing it${c.text}, upstream: "${x.upstreamName}", server: ${this.peer.address}`)
    this.destroyBoth()
  }

  /** Both sides closed: frees the slot and logs the session with its counts. */
  protected finish (counts: Record<string, number>, summary: string): void {
    if (this.finished) return
    this.finished = true
    if (this.idle !== undefined) clearTimeout(this.idle)
    for (const g of this.guards) clearTimeout(g)
    this.release()
    this.untrack()
    const x = this.x
    // One access line per tunnel, at its close: 101 and the bytes the client was sent.
    const r = x.record
    r.completeRaw(101, this.headBytes)
    r.log?.(r)
    const ms = Date.now() - this.opened
    x.log.info({ upstream: x.upstreamName, server: this.peer.address, durationMs: ms, ...counts, reason: this.reason },
      `websocket ${this.kind} closed (${this.reason ?? 'closed'}) after ${ms} ms, ${summary}, upstream: "${x.upstreamName}", server: ${this.peer.address}`)
  }
}
