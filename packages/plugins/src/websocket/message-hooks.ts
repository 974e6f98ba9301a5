import type { WebSocketMessage } from '@proxyctl/core'
import type { PhaseHooks } from '@proxyctl/core/internal'

export type { WebSocketMessage }

/**
 * The public side of `websocket()`'s message mode: its options, and its hooks, which are the
 * `message` phase of core's phase registry (`addPhaseHook(fastify, 'message', hook)`). Kept apart
 * from messages.ts so that importing proxyctl does not load ws and @fastify/websocket; they are
 * loaded when a location turns message mode on.
 */

/** Runs for every message, in registration order (outer scopes first); synchronous. */
export type MessageHook = PhaseHooks['message']

export interface MessageModeOptions {
  /** A hook of this location's own, run after those plugins added with `addPhaseHook(f, 'message', ...)`. */
  onMessage?: MessageHook
  /** Offer/accept permessage-deflate on each hop. Default true. */
  perMessageDeflate?: boolean
  /** Largest message accepted from either side, in bytes. Default 100 MiB (ws's default). */
  maxPayload?: number
  /** Bytes queued toward one side before the other side is paused. Default 1 MiB. */
  highWaterMark?: number
}

export type MessageModeOption = boolean | MessageHook | MessageModeOptions
