import path from 'node:path'
import { defineHandler, internalRedirect, type LocationHandler, type RequestContext, type Template } from '@proxyctl/core'
import { sendStatus } from '@proxyctl/core/internal'
import { inspect, type FileKind, type FileMapping } from './files.js'
import { compileStatic, explainStatic, serveUri, type StaticOptions } from './static.js'

type Fallback =
  | { kind: 'status', status: number }
  | { kind: 'named', name: string }
  | { kind: 'uri', target: Template }

/**
 * nginx's try_files: `tryFiles('$uri/index.html', '$uri', '@app')`. Each argument but the last
 * is a template naming a file under the root or alias (a trailing `/` asks for a folder); the
 * first that exists is served here, with `$uri` set to it. The last is the fallback: a named
 * location (`@app`), a status (`=404`), or a URI, reached by internal redirect (its query is the
 * one it names: write `/index.php?$args` to keep the client's, as in nginx).
 *
 * Put it on a location, or as a server's `handler` (nginx's try_files at server level).
 */
export function tryFiles (...args: string[]): LocationHandler {
  return tryFilesWith({}, ...args)
}

/** `tryFiles` with static options (dotfiles, symlinks, precompressed, maxAge). */
export function tryFilesWith (options: StaticOptions, ...args: string[]): LocationHandler {
  return defineHandler(`try_files ${args.join(' ')}`, (env) => {
    if (args.length < 2) throw env.error('try_files needs at least two arguments: files to try, then a fallback')
    const plan = compileStatic(env, options)
    // nginx appends each tried name to a regex location's alias (add_uri_to_alias), which is rarely
    // what anyone means: refused here rather than copied.
    if (plan.mapping?.template === true) throw env.error('tryFiles in a regex location with "alias" is not supported: use "root", or serveStatic()')
    // nginx: a trailing "/" asks for a folder and is dropped from the name, so `$uri/` on /dir
    // sets $uri to /dir (the static module then answers 301 to /dir/), on /dir/ to /dir/.
    const files = args.slice(0, -1).map((a, i) => {
      const dir = a.endsWith('/') && a.length > 1
      return { dir, template: env.template(dir ? a.slice(0, -1) : a, `.tryFiles[${i}]`) }
    })
    const last = args[args.length - 1] as string
    let fallback: Fallback
    if (/^=\d{3}$/.test(last)) fallback = { kind: 'status', status: Number(last.slice(1)) }
    else if (last.startsWith('@')) { env.namedLocation(last, `.tryFiles[${args.length - 1}]`); fallback = { kind: 'named', name: last } } else {
      if (!last.startsWith('/') && !last.startsWith('$')) throw env.error(`the fallback "${last}" must be a URI, a named location (@name) or =CODE`, `.tryFiles[${args.length - 1}]`)
      fallback = { kind: 'uri', target: env.template(last, `.tryFiles[${args.length - 1}]`) }
    }
    const mapping = plan.mapping as FileMapping

    /** The first file that exists (`$uri` then set to it), else undefined; `checked` (explain) collects each look. */
    const firstFound = async (ctx: RequestContext, checked?: Array<{ arg: string, uri: string, path: string | null, want: 'file' | 'directory', found: FileKind | null }>): Promise<string | undefined> => {
      for (const { dir: wantDir, template } of files) {
        const tried = path.posix.normalize(template.render(ctx))
        const file = tried.startsWith('/') ? mapping.map(tried, ctx) : undefined
        if (file === undefined) {
          checked?.push({ arg: template.source + (wantDir ? '/' : ''), uri: tried, path: null, want: wantDir ? 'directory' : 'file', found: null })
          continue
        }
        const at = wantDir ? file.replace(/\/+$/, '') || '/' : file
        const kind = await inspect(at, mapping.base, plan.safety)
        checked?.push({ arg: template.source + (wantDir ? '/' : ''), uri: tried, path: at, want: wantDir ? 'directory' : 'file', found: kind })
        if (kind === (wantDir ? 'directory' : 'file')) return tried
      }
      return undefined
    }

    return {
      async handle (request, reply) {
        const ctx = request.proxyctl
        const found = await firstFound(ctx)
        if (found !== undefined) {
          ctx.uri = found
          return serveUri(request, reply, plan)
        }
        if (fallback.kind === 'status') return sendStatus(request, reply, fallback.status)
        return internalRedirect(request, reply, fallback.kind === 'named' ? fallback.name : fallback.target.render(ctx))
      },
      async explain (ctx) {
        const checked: Parameters<typeof firstFound>[1] = []
        const found = await firstFound(ctx, checked)
        if (found === undefined) {
          if (fallback.kind === 'status') return { kind: 'try_files', base: mapping.base, checked, found: null, status: fallback.status }
          return { kind: 'try_files', base: mapping.base, checked, found: null, internalRedirect: fallback.kind === 'named' ? fallback.name : fallback.target.render(ctx) }
        }
        // Served here with $uri set to it: the static module's answer for it.
        const uri = ctx.uri
        ctx.uri = found
        try {
          const served = await explainStatic(ctx, plan)
          return { kind: 'try_files', base: mapping.base, checked, found, static: served, ...(served.internalRedirect !== undefined ? { internalRedirect: served.internalRedirect } : {}) }
        } finally { ctx.uri = uri }
      }
    }
  })
}
