import fs from 'node:fs/promises'
import path from 'node:path'
import type { RequestContext, ResolvedLocation, Template } from '@proxyctl/core'

/**
 * Where a URI lives on disk, as nginx maps it: `root` + URI, or for `alias` the URI with the
 * location's prefix replaced by the alias. Every answer is checked to stay inside the root.
 */
export interface FileMapping {
  /** The folder answers come from (root, or the alias for an alias location). */
  readonly base: string
  /** Absolute file path for a (decoded, normalised) URI; undefined when it must not be served. */
  map (uri: string, ctx: RequestContext): string | undefined
  /** A regex location's alias: the path is the alias rendered with the captures, not the URI mapped. */
  readonly template: boolean
}

export interface SafetyOptions {
  /** Serve files and folders whose name starts with a dot. Default false (`/.well-known/` is always served). */
  allowDotfiles?: boolean
  /** Follow symlinks that lead outside the root. Default false (symlinks inside it are fine). */
  allowSymlinks?: boolean
}

export function fileMapping (loc: ResolvedLocation | undefined, serverRoot: string | undefined, compile: (source: string) => Template): FileMapping | undefined {
  if (loc?.alias !== undefined) {
    const alias = loc.alias
    if (loc.kind === 'regex' || loc.kind === 'regex-i') {
      // nginx: in a regex location the alias is the whole path, its captures filled in
      // (`location ~ ^/i/(.*)$ { alias /data/$1; }`). The folder before the first variable is the
      // base every answer must stay in.
      const template = compile(alias)
      const dollar = alias.indexOf('$')
      const base = dollar === -1 ? alias : alias.slice(0, alias.lastIndexOf('/', dollar) + 1) || '/'
      return {
        base: base.length > 1 && base.endsWith('/') ? base.slice(0, -1) : base,
        template: true,
        map (uri, ctx) {
          const rendered = template.render(ctx)
          if (!rendered.startsWith('/')) return undefined
          const full = path.posix.normalize(rendered)
          const b = base.endsWith('/') ? base : `${base}/`
          if (full !== base && !full.startsWith(b)) return undefined
          if (rendered.includes('\0')) return undefined
          return uri.endsWith('/') && !full.endsWith('/') ? `${full}/` : full
        }
      }
    }
    const prefix = loc.kind === 'prefix' || loc.kind === 'prefix-noregex' || loc.kind === 'exact' ? loc.path : ''
    // nginx: `location /i/ { alias /data/w3/images/; }` maps /i/top.gif to /data/w3/images/top.gif.
    const trailing = alias.endsWith('/') || prefix.endsWith('/')
    return {
      base: alias,
      template: false,
      map (uri) {
        if (prefix === '' || !uri.startsWith(prefix)) return undefined
        const rest = uri.slice(prefix.length)
        return inside(alias, trailing && !rest.startsWith('/') ? `/${rest}` : rest)
      }
    }
  }
  const root = loc?.root ?? serverRoot
  if (root === undefined) return undefined
  return { base: root, template: false, map: (uri) => inside(root, uri) }
}

function inside (base: string, rest: string): string | undefined {
  // The URI is already normalised by core (no `..` can climb); this is a second lock.
  if (rest.includes('\0')) return undefined
  const full = path.join(base, rest)
  if (full !== base && !full.startsWith(base.endsWith('/') ? base : `${base}/`)) return undefined
  return rest.endsWith('/') && !full.endsWith('/') ? `${full}/` : full
}

export type FileKind = 'file' | 'directory' | 'missing' | 'forbidden'

/**
 * What is at `file`: a regular file, a directory, nothing, or something we refuse to serve
 * (a dotfile, a symlink out of the base, a socket or device).
 */
export async function inspect (file: string, base: string, opts: SafetyOptions): Promise<FileKind> {
  if (opts.allowDotfiles !== true && hasDotName(file.slice(base.length))) return 'forbidden'
  let st
  try { st = await fs.stat(file) } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return code === 'EACCES' ? 'forbidden' : 'missing'
  }
  if (opts.allowSymlinks !== true) {
    let real: string
    try { real = await fs.realpath(file) } catch { return 'missing' }
    const realBase = await realBaseOf(base)
    if (real !== realBase && !real.startsWith(`${realBase}/`)) return 'forbidden'
  }
  if (st.isFile()) return 'file'
  if (st.isDirectory()) return 'directory'
  return 'forbidden'
}

/**
 * A segment starting with a dot, other than a leading `/.well-known` (RFC 8615: ACME http-01
 * challenges, security.txt), which must be served for certificates and contacts to work.
 */
function hasDotName (rel: string): boolean {
  const rest = rel.startsWith('/.well-known') && (rel.length === 12 || rel[12] === '/') ? rel.slice(12) : rel
  return /\/\.[^/]/.test(rest)
}

const realBases = new Map<string, Promise<string>>()
function realBaseOf (base: string): Promise<string> {
  let p = realBases.get(base)
  if (p === undefined) {
    p = fs.realpath(base).catch(() => base)
    realBases.set(base, p)
  }
  return p
}
