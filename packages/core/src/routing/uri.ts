/**
 * Request-target handling with nginx's semantics.
 *
 * `normalizeUri` follows ngx_http_parse_complex_uri (merge_slashes on): percent-decoding, `//`
 * merging and `.`/`..` resolution run together on bytes, in one pass, so a `%2F` or `%2e` acts like
 * the character it encodes. Only at the end are the bytes read as UTF-8, so a malformed or overlong
 * sequence can become U+FFFD but never a `/` or a `.`.
 */
import { BadRequestError } from '../errors.js'
import { DOT, HASH, PERCENT, QUESTION, SLASH } from './ascii.js'

// parser states, as in ngx_http_parse_complex_uri
const USUAL = 0
const AFTER_SLASH = 1
const AFTER_DOT = 2
const AFTER_DOT_DOT = 3

/** The value of a hex digit's character code, -1 for any other. */
export function hexValue (c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  const l = c | 0x20
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10
  return -1
}

/** Whether `path` holds anything the slow path would change. */
function needsWork (path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i)
    if (c === PERCENT || c === HASH || c === QUESTION || c > 0x7f) return true
    if (c === SLASH) {
      const n = path.charCodeAt(i + 1)
      if (n === SLASH || n === DOT) return true
    }
  }
  return false
}

/**
 * Normalises the path of a request target as nginx does before location matching: decodes percent
 * escapes, merges slash runs, resolves `.` and `..` segments. A `%25`, `%23` or `%3F` decodes to a
 * literal `%`, `#`, `?` (nginx never reinterprets them); a raw `#` or `?` ends the path. Characters
 * above U+007F in the input are taken as their UTF-8 bytes (Node's HTTP parser never passes raw
 * non-ASCII bytes in `req.url`, so they only come from callers holding decoded strings).
 *
 * Throws BadRequestError (400) for a path not starting with `/`, a malformed escape, a decoded NUL,
 * or a `..` that climbs above the root.
 *
 * A path needing none of this (no `%`, `//`, `/.`, `#`, `?`, non-ASCII) is returned as is.
 */
export function normalizeUri (path: string): string {
  if (path.charCodeAt(0) !== SLASH) {
    throw new BadRequestError(`invalid request URI: ${JSON.stringify(path)} does not start with "/"`)
  }
  if (!needsWork(path)) return path

  const input = Buffer.from(path, 'utf8')
  const out = Buffer.allocUnsafe(input.length)
  const end = input.length
  let u = 0
  let state = USUAL
  let i = 0

  /** nginx's `u -= 4` and walk back: drop the segment before a `/..`. */
  const climb = (): void => {
    u -= 4
    for (;;) {
      if (u < 0) throw new BadRequestError(`invalid request URI: ${JSON.stringify(path)} climbs above "/"`)
      if (out[u] === SLASH) { u++; return }
      u--
    }
  }

  scan:
  while (i < end) {
    let ch = input[i++]

    if (ch === PERCENT) {
      const hi = i < end ? hexValue(input[i]) : -1
      const lo = i + 1 < end ? hexValue(input[i + 1]) : -1
      if (hi < 0 || lo < 0) {
        throw new BadRequestError(`invalid request URI: ${JSON.stringify(path)} has a malformed percent escape`)
      }
      i += 2
      ch = (hi << 4) | lo
      if (ch === 0) throw new BadRequestError(`invalid request URI: ${JSON.stringify(path)} contains %00`)
      if (ch === PERCENT || ch === HASH || ch === QUESTION) {
        // kept literally, never reparsed
        out[u++] = ch
        state = USUAL
        continue
      }
      // any other decoded byte (including `/` and `.`) goes through the state machine below
    } else if (ch === HASH || ch === QUESTION) {
      // a raw `#` or `?` ends the path
      if (state === AFTER_DOT) u--
      else if (state === AFTER_DOT_DOT) climb()
      state = USUAL
      break scan
    }

    switch (state) {
      case USUAL:
        out[u++] = ch
        if (ch === SLASH) state = AFTER_SLASH
        break
      case AFTER_SLASH:
        if (ch === SLASH) break // merge_slashes
        out[u++] = ch
        state = ch === DOT ? AFTER_DOT : USUAL
        break
      case AFTER_DOT:
        if (ch === SLASH) { u--; state = AFTER_SLASH; break } // `/./` → `/`
        out[u++] = ch
        state = ch === DOT ? AFTER_DOT_DOT : USUAL
        break
      case AFTER_DOT_DOT:
        if (ch === SLASH) { climb(); state = AFTER_SLASH; break } // `/a/../` → `/`
        out[u++] = ch
        state = USUAL
        break
    }
  }

  // a trailing `/.` or `/..` resolves and keeps its slash
  if (state === AFTER_DOT) u--
  else if (state === AFTER_DOT_DOT) climb()

  return out.toString('utf8', 0, u)
}

export interface RequestTarget {
  /** The raw path (still percent-encoded), `/` for an absolute-form target without one. */
  path: string
  /** The raw query without `?`, '' if none. */
  args: string
  /** The authority of an absolute-form target (`example.com:8080`), as sent. */
  host?: string
}

const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//

/**
 * Splits `req.url` into raw path and raw query. A fragment (`#...`, which nginx drops) is removed.
 * Absolute-form targets (`http://host:port/p?q`) yield their authority as `host` and `/` when the
 * path is empty. `*` (OPTIONS *) and other targets not starting with `/` come back as the path
 * unchanged; normalizeUri rejects them. Nothing is decoded.
 */
export function splitRequestTarget (target: string): RequestTarget {
  let end = target.indexOf('#')
  if (end < 0) end = target.length
  let start = 0
  let host: string | undefined

  if (target.charCodeAt(0) !== SLASH) {
    const m = ABSOLUTE_FORM.exec(target)
    if (m !== null) {
      const hostStart = m[0].length
      let hostEnd = hostStart
      while (hostEnd < end) {
        const c = target.charCodeAt(hostEnd)
        if (c === SLASH || c === QUESTION) break
        hostEnd++
      }
      host = target.slice(hostStart, hostEnd)
      start = hostEnd
    }
  }

  const q = target.indexOf('?', start)
  let path: string
  let args: string
  if (q >= 0 && q < end) {
    path = target.slice(start, q)
    args = target.slice(q + 1, end)
  } else {
    path = start === 0 && end === target.length ? target : target.slice(start, end)
    args = ''
  }
  if (host !== undefined) {
    if (path === '') path = '/'
    return { path, args, host }
  }
  return { path, args }
}
