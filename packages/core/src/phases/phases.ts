import type { FastifyInstance } from 'fastify'
import type { ProxyctlErrorCode } from '../errors.js'
import type { RequestContext } from '../routing/request-context.js'

/**
 * A request's life in proxyctl, as named phases (Pingora's names in brackets). Plugins hook into
 * them from the scope they are registered in (global, a server, a location and its nested
 * locations), never from a sibling's.
 *
 * | order | phase             | how to hook                          | may change                                |
 * | ----- | ----------------- | ------------------------------------ | ----------------------------------------- |
 * | 1     | request           | Fastify `onRequest` / `preHandler`   | answer (reply.send), deny, rewrite `request.proxyctl.uri`, `internalRedirect()` |
 * |       | [request_filter]  |                                      |                                           |
 * | 2     | upstreamRequest   | `addPhaseHook(f, 'upstreamRequest')` | method, path, headers sent upstream; runs once per attempt |
 * |       | [upstream_request_filter]                                |                                           |
 * | 3     | upstreamResponse  | `addPhaseHook(f, 'upstreamResponse')`| status and headers sent to the client     |
 * |       | [response_filter] |                                      |                                           |
 * | 4     | upstreamError     | `addPhaseHook(f, 'upstreamError')`   | observe a failed attempt (peer, reason); the proxy then retries or answers 502/504 |
 * |       | [fail_to_connect, error_while_proxy]                     |                                           |
 * | (4)   | message           | `addPhaseHook(f, 'message')`         | each WebSocket message in message mode: data, binary, drop |
 * | 5     | log               | Fastify `onResponse`                 | nothing: observe; `request.proxyctl` holds what happened |
 * |       | [logging]         |                                      |                                           |
 *
 * Phase 2 to 4 run only for requests a proxying handler (proxy, websocket) serves. Hooks run in
 * registration order, outer scopes first; they are synchronous so the hot path stays lean. A hook
 * that throws ends its request (500, or the connection cut) with a PROXYCTL_INTERNAL_ERROR line.
 */
export interface PhaseHooks {
  upstreamRequest: (ctx: RequestContext, request: UpstreamRequestHead) => void
  upstreamResponse: (ctx: RequestContext, response: UpstreamResponseHead) => void
  upstreamError: (ctx: RequestContext, failure: UpstreamFailure) => void
  message: (ctx: RequestContext, message: WebSocketMessage) => void
}

export type PhaseName = keyof PhaseHooks

/** What is about to be sent upstream. Headers are a flat list: name, value, name, value. */
export interface UpstreamRequestHead {
  method: string
  /** Path and query, as sent in the request line. */
  path: string
  headers: string[]
  /** The server chosen for this attempt (`unix:/run/app.sock`, `10.0.0.1:80`). */
  readonly peer: string
  /** The upstream's name, or the target's address for a direct URL. */
  readonly upstream: string
}

/** What the upstream answered, before it is sent to the client. */
export interface UpstreamResponseHead {
  status: number
  /** Flat list: name, value, name, value (hop-by-hop and hidden headers already removed). */
  headers: string[]
  readonly peer: string
  readonly upstream: string
}

export interface UpstreamFailure {
  readonly peer: string
  readonly upstream: string
  /** A PROXYCTL_UPSTREAM_* code. */
  readonly code: ProxyctlErrorCode
  readonly reason: string
}

/** One WebSocket message in `websocket(target, { messages })` mode, as the message hooks see it. */
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

const kPhases = Symbol.for('proxyctl.phases')

class PhaseRegistry {
  private readonly own: { [P in PhaseName]: Array<PhaseHooks[P]> } = { upstreamRequest: [], upstreamResponse: [], upstreamError: [], message: [] }
  constructor (private readonly parent: PhaseRegistry | undefined) {}

  add<P extends PhaseName> (phase: P, fn: PhaseHooks[P]): void {
    (this.own[phase] as Array<PhaseHooks[P]>).push(fn)
  }

  collect<P extends PhaseName> (phase: P): Array<PhaseHooks[P]> {
    return [...(this.parent?.collect(phase) ?? []), ...(this.own[phase] as Array<PhaseHooks[P]>)]
  }
}

type WithPhases = FastifyInstance & { [kPhases]?: PhaseRegistry }

/** Called by core when it opens a scope (root, server, location): hooks added inside stay inside. */
export function openPhaseScope (instance: FastifyInstance): void {
  const i = instance as WithPhases
  i[kPhases] = new PhaseRegistry(i[kPhases])
}

/** Adds a hook for `phase` to the scope `instance` belongs to (and every location below it). */
export function addPhaseHook<P extends PhaseName> (instance: FastifyInstance, phase: P, fn: PhaseHooks[P]): void {
  const registry = (instance as WithPhases)[kPhases]
  if (registry === undefined) throw new Error('addPhaseHook: not inside a proxyctl scope')
  registry.add(phase, fn)
}

/** The hooks for `phase` visible from `instance`, outer scopes first. Read once, at registration. */
export function phaseHooks<P extends PhaseName> (instance: FastifyInstance, phase: P): Array<PhaseHooks[P]> {
  return (instance as WithPhases)[kPhases]?.collect(phase) ?? []
}
