import type { FastifyInstance } from 'fastify'
import type { RequestContext } from '@proxyctl/core'

/**
 * The public side of `websocket()`'s message mode: the hook API plugins use. Kept apart from
 * messages.ts so that importing proxyctl does not load ws and @fastify/websocket; they are loaded
 * when a location turns message mode on.
 */

export interface WebSocketMessage {
  /** Who sent it: `client` (going upstream) or `upstream` (going to the client). */
  readonly from: 'client' | 'upstream'
  /** The payload. Assign a new Buffer or string to rewrite it. */
  data: Buffer | string
  /** Binary (true) or text (false) message; may be changed with `data`. */
  binary: boolean
  /** Set to drop the message. */
  drop: boolean
  /** The upstream server of this connection (`unix:/path`, `10.0.0.1:80`). */
  readonly peer: string
  /** The upstream's name, or the target's address for a direct URL. */
  readonly upstream: string
}

/** Runs for every message, in registration order (outer scopes first); synchronous. */
export type MessageHook = (ctx: RequestContext, message: WebSocketMessage) => void

export interface MessageModeOptions {
  /** A hook of this location's own, run after those plugins added with `addMessageHook`. */
  onMessage?: MessageHook
  /** Offer/accept permessage-deflate on each hop. Default true. */
  perMessageDeflate?: boolean
  /** Largest message accepted from either side, in bytes. Default 100 MiB (ws's default). */
  maxPayload?: number
  /** Bytes queued toward one side before the other side is paused. Default 1 MiB. */
  highWaterMark?: number
}

export type MessageModeOption = boolean | MessageHook | MessageModeOptions

const kHooks = Symbol.for('proxyctl.websocket.messageHooks')
type WithHooks = FastifyInstance & { [kHooks]?: MessageHook[] }

/**
 * Adds a message hook in a plugin's scope: it runs for message-mode WebSocket connections of
 * every location below that scope (not of sibling scopes).
 */
export function addMessageHook (instance: FastifyInstance, hook: MessageHook): void {
  const i = instance as WithHooks
  if (!Object.prototype.hasOwnProperty.call(i, kHooks)) i[kHooks] = []
  ;(i[kHooks] as MessageHook[]).push(hook)
}

/** The message hooks in effect in a scope: its ancestors' first (Fastify scopes inherit by prototype). */
export function messageHooks (instance: FastifyInstance): MessageHook[] {
  const out: MessageHook[][] = []
  for (let o: object | null = instance; o !== null; o = Object.getPrototypeOf(o)) {
    if (Object.prototype.hasOwnProperty.call(o, kHooks)) out.unshift((o as WithHooks)[kHooks] as MessageHook[])
  }
  return out.flat()
}

