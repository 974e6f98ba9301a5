import path from 'node:path'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { defineHandler, internalRedirect, type HandlerCompileEnv, type HandlerExplanation, type LocationHandler, type RequestContext } from '@proxyctl/core'
import { absoluteLocation, errorPageBody, sendStatus } from '@proxyctl/core/internal'
import { fileMapping, inspect, type FileKind, type FileMapping, type SafetyOptions } from './files.js'
import { sendFile, type SendOptions } from './send.js'

export interface StaticOptions extends SafetyOptions {
  /** Serve `file.br` / `file.gz` beside `file` to clients that accept them (nginx's gzip_static). Default false. */
  precompressed?: boolean
  /** nginx's `expires` in ms: Expires and Cache-Control: max-age on 200, 206 and 304. Default: none. */
  maxAge?: number
}

/** What serving needs, compiled once per location. */
export interface StaticPlan {
  readonly mapping: FileMapping | undefined
  readonly index: readonly string[]
  readonly safety: SafetyOptions
  readonly sendOptions: SendOptions
}

export function compileStatic (env: HandlerCompileEnv, options: StaticOptions): StaticPlan {
  const mapping = fileMapping(env.location, env.server.root, (source) => env.template(source, '.alias'))
  if (mapping === undefined) throw env.error('serving files needs "root" (on the server or the location) or "alias"')
  return {
    mapping,
    index: env.location?.index ?? env.server.index ?? ['index.html'],
    safety: { allowDotfiles: options.allowDotfiles ?? false, allowSymlinks: options.allowSymlinks ?? false },
    sendOptions: { precompressed: options.precompressed ?? false, maxAge: options.maxAge }
  }
}

/**
 * nginx's static module for the request's current `$uri`: a file is sent (with ETag,
 * Last-Modified, conditional and range requests, HEAD), a folder without its slash redirects
 * (301) to it, a folder with its slash goes to its first existing index file by internal
 * redirect, else 403 (the folder exists) or 404.
 */
export async function serveUri (request: FastifyRequest, reply: FastifyReply, plan: StaticPlan): Promise<FastifyReply> {
  // The reply itself: an async handler that resolves undefined while a file still streams would
  // have Fastify send an empty answer over it.
  await serve(request, reply, plan)
  return reply
}

async function serve (request: FastifyRequest, reply: FastifyReply, plan: StaticPlan): Promise<void> {
  const d = await staticDecision(request.proxyctl, request.raw.method, plan)
  switch (d.kind) {
    case 'status': sendStatus(request, reply, d.status); return
    case 'index': internalRedirect(request, reply, d.uri); return
    case 'redirect':
      void reply.code(301).header('location', d.location).type('text/html').send(errorPageBody(301))
      return
    case 'file': await sendFile(request, reply, d.file, request.proxyctl.uri, plan.sendOptions)
  }
}

/** What the static module does with a request; `checked` (for `proxyctl explain`) collects each path looked at. */
export type StaticDecision =
  | { kind: 'status', status: number }
  | { kind: 'index', uri: string }
  | { kind: 'redirect', location: string }
  | { kind: 'file', file: string }

export async function staticDecision (ctx: RequestContext, method: string | undefined, plan: StaticPlan,
  checked?: Array<{ path: string, found: FileKind }>): Promise<StaticDecision> {
  if (method !== 'GET' && method !== 'HEAD' && method !== 'POST') return { kind: 'status', status: 405 }
  const mapping = plan.mapping as FileMapping
  const uri = ctx.uri
  const file = mapping.map(uri, ctx)
  if (file === undefined) return { kind: 'status', status: 404 }
  const look = async (p: string): Promise<FileKind> => {
    const found = await inspect(p, mapping.base, plan.safety)
    checked?.push({ path: p, found })
    return found
  }

  if (uri.endsWith('/')) {
    for (const name of plan.index) {
      if (await look(path.join(file, name)) === 'file') return { kind: 'index', uri: `${uri}${name}${ctx.args === '' ? '' : `?${ctx.args}`}` }
    }
    const kind = await look(file)
    return { kind: 'status', status: kind === 'directory' || kind === 'forbidden' ? 403 : 404 }
  }

  const kind = await look(file)
  if (kind === 'missing') return { kind: 'status', status: 404 }
  if (kind === 'forbidden') return { kind: 'status', status: 403 }
  // nginx: Location is the URI with a slash, and the query.
  if (kind === 'directory') return { kind: 'redirect', location: absoluteLocation(`${encodeURI(uri)}/${ctx.args === '' ? '' : `?${ctx.args}`}`, ctx) }
  if (method === 'POST') return { kind: 'status', status: 405 }
  return { kind: 'file', file }
}

/** `proxyctl explain` for the static module: the paths it looks at now and what it would answer. */
export async function explainStatic (ctx: RequestContext, plan: StaticPlan): Promise<HandlerExplanation> {
  const checked: Array<{ path: string, found: FileKind }> = []
  const d = await staticDecision(ctx, ctx.req.method, plan, checked)
  return { kind: 'static', base: plan.mapping?.base, checked, answer: d, ...(d.kind === 'index' ? { internalRedirect: d.uri } : {}) }
}

/**
 * Serves files from the location's `root` or `alias` (or the server's `root`), as nginx's
 * static and index modules.
 */
export function serveStatic (options: StaticOptions = {}): LocationHandler {
  return defineHandler('static', (env) => {
    const plan = compileStatic(env, options)
    return {
      handle: (request, reply) => serveUri(request, reply, plan),
      explain: (ctx) => explainStatic(ctx, plan)
    }
  })
}
