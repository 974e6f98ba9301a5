import fs from 'node:fs/promises'
import path from 'node:path'
import type { ResolvedLocation } from '@proxyctl/core'

/**
 * Where a URI lives on disk, as nginx maps it: `root` + URI, or for `alias` the URI with the
 * location's prefix replaced by the alias. Every answer is checked to stay inside the root.
 */
export interface FileMapping {
  /** The folder answers come from (root, or the alias for an alias location). */
  readonly base: string
  /** Absolute file path for a (decoded, normalised) URI; undefined when it must not be served. */
  map (uri: string): string | undefined
}

export interface SafetyOptions {
  /** Serve files and folders whose name starts with a dot. Default false (`/.well-known/` is always served). */
  allowDotfiles?: boolean
  /** Follow symlinks that lead outside the root. Default false (symlinks inside it are fine). */
  allowSymlinks?: boolean
}

export function fileMapping (loc: ResolvedLocation | undefined, serverRoot: string | undefined): FileMapping | undefined {
  if (loc?.alias !== undefined) {
    const alias = loc.alias
    const prefix = loc.kind === 'prefix' || loc.kind === 'prefix-noregex' || loc.kind === 'exact' ? loc.path : ''
    // nginx: `location /i/ { alias /data/w3/images/; }` maps /i/top.gif to /data/w3/images/top.gif.
    const trailing = alias.endsWith('/') || prefix.endsWith('/')
    return {
      base: alias,
      map (uri) {
        if (prefix === '' || !uri.startsWith(prefix)) return undefined
        const rest = uri.slice(prefix.length)
        return inside(alias, trailing && !rest.startsWith('/') ? `/${rest}` : rest)
      }
    }
  }
  const root = loc?.root ?? serverRoot
  if (root === undefined) return undefined
  return { base: root, map: (uri) => inside(root, uri) }
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
