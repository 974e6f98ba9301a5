import { performance } from 'node:perf_hooks'
import type { UpstreamTry } from '@proxyctl/core/internal'
import type { UpstreamPeer } from '../upstream/pool.js'
import { UpstreamError } from './errors.js'
import type { UpstreamExchange } from './exchange.js'

/**
 * What every leg's try at one server shares (the proxy's HTTP Attempt, the tunnel's handshake):
 * the server is held from creation to end, an abort works before and after the leg connected, and
 * readTimeout (proxy_read_timeout) is kept on one Node timer per attempt, not on undici's
 * headersTimeout/bodyTimeout, whose "fast timer" objects outlive the request and are promoted
 * (bench/README.md, "readTimeout on one Node timer"). The timer is armed once; a read only notes
 * the time (`lastRead`), and the timer, when it fires, arms itself again for what is left.
 */
export abstract class UpstreamAttempt {
  protected abortFn: ((err?: Error) => void) | undefined
  private aborted: Error | undefined
  protected done = false
  private readTimer: NodeJS.Timeout | undefined
  /** performance.now() of the last byte from the upstream, or of the request's last byte. */
  protected lastRead = 0
  protected headersSeen = false
  /** The client is slow to take the answer: the upstream is paused, so no read is due. */
  protected paused = false

  /** This try in the request's record ($upstream_* times). */
  protected readonly try: UpstreamTry | undefined

  constructor (private readonly exchange: UpstreamExchange, readonly peer: UpstreamPeer) {
    peer.acquire()
    this.try = exchange.currentTry
  }

  abort (err?: Error): void {
    if (this.abortFn !== undefined) this.abortFn(err)
    else this.aborted = err ?? new Error('aborted')
  }

  /**
   * The leg started sending (undici's onConnect): from here on the upstream owes us bytes. False
   * when the attempt was aborted or the client left meanwhile (the leg is aborted).
   */
  protected connected (abort: (err?: Error) => void): boolean {
    this.abortFn = abort
    const t = this.try
    if (t !== undefined) t.connect = performance.now() - t.start
    if (this.aborted !== undefined || this.exchange.clientGone) { abort(this.aborted); return false }
    const limit = this.exchange.plan.readTimeout
    if (limit > 0) {
      this.lastRead = performance.now()
      this.readTimer = setTimeout(onReadTimer, limit, this).unref()
    }
    return true
  }

  /** Releases the server once, whatever ends the attempt; false when it had ended already. */
  protected end (): boolean {
    if (this.done) return false
    this.done = true
    const t = this.try
    if (t !== undefined && t.response < 0) t.response = performance.now() - t.start
    this.stopReadTimer()
    this.peer.release()
    return true
  }

  /** No read is due any more (the tunnel's own idle timer takes over after a 101). */
  protected stopReadTimer (): void {
    if (this.readTimer === undefined) return
    clearTimeout(this.readTimer)
    this.readTimer = undefined
  }

  /** Whether the upstream owes nothing although nothing came (the client still sends its body). */
  protected owesNothing (): boolean { return false }

  /** The read timer ran out: abort (504), or arm it again if a read came since or none is due. */
  readTimerFired (): void {
    const limit = this.exchange.plan.readTimeout
    const idle = this.paused || this.owesNothing() ? 0 : performance.now() - this.lastRead
    if (idle < limit) {
      this.readTimer = setTimeout(onReadTimer, limit - idle, this).unref()
      return
    }
    this.readTimer = undefined
    // undici closes the connection; it then opens one idle replacement (undici issue #5845).
    this.abort(new UpstreamError('PROXYCTL_UPSTREAM_TIMEOUT', 'timeout', 504,
      `upstream timed out while ${this.headersSeen ? 'reading upstream' : 'reading response header'}`))
  }
}

function onReadTimer (attempt: UpstreamAttempt): void { attempt.readTimerFired() }
