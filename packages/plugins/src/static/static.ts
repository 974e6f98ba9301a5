import path from 'node:path'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { defineHandler, internalRedirect, type HandlerCompileEnv, type LocationHandler } from '@proxyctl/core'
import { absoluteLocation, errorPageBody, sendStatus } from '@proxyctl/core/internal'
import { fileMapping, inspect, type FileMapping, type SafetyOptions } from './files.js'
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
  const ctx = request.proxyctl
  const method = request.raw.method
  if (method !== 'GET' && method !== 'HEAD' && method !== 'POST') { sendStatus(request, reply, 405); return }
  const mapping = plan.mapping as FileMapping
  const uri = ctx.uri
  const file = mapping.map(uri, ctx)
  if (file === undefined) { sendStatus(request, reply, 404); return }

  if (uri.endsWith('/')) {
    for (const name of plan.index) {
      if (await inspect(path.join(file, name), mapping.base, plan.safety) === 'file') {
        internalRedirect(request, reply, `${uri}${name}${ctx.args === '' ? '' : `?${ctx.args}`}`)
        return
      }
    }
    const kind = await inspect(file, mapping.base, plan.safety)
    sendStatus(request, reply, kind === 'directory' || kind === 'forbidden' ? 403 : 404)
    return
  }

  const kind = await inspect(file, mapping.base, plan.safety)
  if (kind === 'missing') { sendStatus(request, reply, 404); return }
  if (kind === 'forbidden') { sendStatus(request, reply, 403); return }
  if (kind === 'directory') {
    // nginx: Location is the URI with a slash, and the query.
    const location = absoluteLocation(`${encodeURI(uri)}/${ctx.args === '' ? '' : `?${ctx.args}`}`, ctx)
    void reply.code(301).header('location', location).type('text/html').send(errorPageBody(301))
    return
  }
  if (method === 'POST') { sendStatus(request, reply, 405); return }
  await sendFile(request, reply, file, uri, plan.sendOptions)
}


/**
 * Serves files from the location's `root` or `alias` (or the server's `root`), as nginx's
 * static and index modules.
 */
export function serveStatic (options: StaticOptions = {}): LocationHandler {
  return defineHandler('static', (env) => {
    const plan = compileStatic(env, options)
    return {
      handle: (request, reply) => serveUri(request, reply, plan)
    }
  })
}
