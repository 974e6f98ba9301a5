/**
 * Virtual server selection by Host, with nginx's semantics.
 *
 * The caller has already picked the listen address; this module picks one of that address's
 * servers from the request's host name, in nginx's order:
 *
 *   1. an exact name (`example.com`; `.example.com` also counts as the exact name `example.com`),
 *   2. the longest leading wildcard (`*.example.com`, `.example.com`),
 *   3. the longest trailing wildcard (`www.example.*`),
 *   4. the first regex, in declaration order (`~^api\d+\.example\.com$`),
 *   5. otherwise the listen address's default server.
 *
 * Behaviour is taken from nginx's ngx_http_validate_host (ngx_http_request.c, the RFC 3986
 * version of nginx >= 1.29.4), ngx_http_core_server_name (ngx_http_core_module.c),
 * ngx_http_server_names (ngx_http.c) and ngx_hash_add_key / ngx_hash_find_wc_head /
 * ngx_hash_find_wc_tail (ngx_hash.c), and checked against running nginx binaries.
 */

import { hostname as osHostname } from 'node:os'
import { COLON, DOT, LBRACKET, RBRACKET } from './ascii.js'
import { compilePcre } from './pcre.js'

// ---------------------------------------------------------------------------------------------
// Host header validation
// ---------------------------------------------------------------------------------------------

/** Bits of {@link HOST_CHARS}. */
const REG_NAME = 1 // allowed in a reg-name (outside brackets)
const IP_LITERAL = 2 // allowed inside `[...]`

/**
 * RFC 3986 host characters as nginx accepts them: unreserved and sub-delims in both forms,
 * `%` (pct-encoded, not checked further) only in a reg-name, `:` only inside brackets (outside
 * them it starts the port). `.` is handled separately (no two in a row).
 */
const HOST_CHARS = (() => {
  const table = new Uint8Array(128)
  const both = REG_NAME | IP_LITERAL
  for (let c = 0x30; c <= 0x39; c++) table[c] = both // 0-9
  for (let c = 0x41; c <= 0x5a; c++) table[c] = both // A-Z
  for (let c = 0x61; c <= 0x7a; c++) table[c] = both // a-z
  for (const ch of "-_~!$&'()*+,;=") table[ch.charCodeAt(0)] = both
  table[0x25] = REG_NAME // %
  return table
})()

/** normalizeHost() states. */
const START = 0
const NAME = 1
const IP_LITERAL_BODY = 2
const AFTER_IP_LITERAL = 3
const PORT = 4

/**
 * Validate and normalise a Host header value the way nginx does before it selects a server:
 * the port is dropped (`example.com:8080` → `example.com`), ONE trailing dot is dropped
 * (`example.com.` → `example.com`), ASCII letters are lower-cased, IPv6 literals keep their
 * brackets (`[::1]:8080` → `[::1]`).
 *
 * Returns `undefined` when there is no header (the request is then served by the server named
 * `""`, or the default one), and `null` when nginx would answer 400 "client sent invalid host
 * header". That includes an EMPTY header (`Host:` with no value): nginx rejects it.
 *
 * Rejected (nginx >= 1.29.4): characters outside RFC 3986 reg-name / IP-literal syntax (`/`, `\`,
 * `@`, `?`, `#`, `"`, `<`, `^`, `{`, whitespace, controls, NUL, any non-ASCII character), two
 * dots in a row (`a..b`, `..a`), `[` anywhere but first, an unclosed `[`, anything but `:port`
 * after `]` (so also `[::1].`), `%` inside brackets, a port that is not all digits or is above
 * 65535, and a host that is empty once the port and trailing dot are gone (`:80`, `.`).
 * Accepted: a leading dot (`.example.com` stays `.example.com`), an empty port (`example.com:`).
 */
export function normalizeHost (raw: string | undefined): string | null | undefined {
  if (raw === undefined) return undefined
  const len = raw.length
  let state: number = START
  let hostEnd = len // end of the host part (port excluded)
  let lastDot = -2 // index of the last dot seen, -2 so that a leading dot is not "after a dot"
  let port = 0
  let upper = false

  for (let i = 0; i < len; i++) {
    const c = raw.charCodeAt(i)
    switch (state) {
      case START:
        if (c === LBRACKET) {
          state = IP_LITERAL_BODY
          break
        }
        state = NAME
        // falls through
      case NAME:
        if (c === DOT) {
          if (lastDot === i - 1) return null
          lastDot = i
        } else if (c === COLON) {
          hostEnd = i
          state = PORT
        } else if (c < 128 && (HOST_CHARS[c] & REG_NAME) !== 0) {
          if (c >= 0x41 && c <= 0x5a) upper = true
        } else {
          return null
        }
        break
      case IP_LITERAL_BODY:
        if (c === DOT) {
          if (lastDot === i - 1) return null
          lastDot = i
        } else if (c === RBRACKET) {
          hostEnd = i + 1
          state = AFTER_IP_LITERAL
        } else if (c === COLON || (c < 128 && (HOST_CHARS[c] & IP_LITERAL) !== 0)) {
          if (c >= 0x41 && c <= 0x5a) upper = true
        } else {
          return null
        }
        break
      case AFTER_IP_LITERAL:
        if (c !== COLON) return null
        state = PORT
        break
      case PORT:
        if (c < 0x30 || c > 0x39) return null
        port = port * 10 + (c - 0x30)
        if (port > 65535) return null
        break
    }
  }

  if (state === IP_LITERAL_BODY) return null // unclosed "["
  if (lastDot === hostEnd - 1) hostEnd-- // one trailing dot
  if (hostEnd === 0) return null

  const host = hostEnd === len ? raw : raw.slice(0, hostEnd)
  // Only ASCII can get here, so toLowerCase() is nginx's ASCII-only ngx_strlow().
  return upper ? host.toLowerCase() : host
}

// ---------------------------------------------------------------------------------------------
// server_name parsing
// ---------------------------------------------------------------------------------------------

export type ServerNameKind = 'exact' | 'leading' | 'trailing' | 'regex'

export interface ParsedServerName {
  kind: ServerNameKind
  /**
   * exact: the lower-cased name (`""` matches requests without Host);
   * leading: the lower-cased suffix, without `*.` or `.` (`*.example.com` → `example.com`);
   * trailing: the lower-cased prefix, without `.*` (`www.example.*` → `www.example`);
   * regex: the pattern as written (without the `~`).
   */
  value: string
  /** For kind `regex`: the compiled expression (no `g`/`y` flag, so `exec` is stateless). */
  regex?: RegExp
  /** `.example.com`: a leading wildcard that also matches `example.com` itself. */
  alsoExact?: boolean
}

function invalid (name: string | RegExp, reason: string): Error {
  const shown = typeof name === 'string' ? name : `~${name.source}`
  return new Error(`invalid server name "${shown}": ${reason}`)
}

/**
 * Classify one `server_name` value, as nginx does:
 *
 * - `~pattern` or a RegExp: a regex. nginx matches it against the lower-cased host and compiles
 *   it case-insensitively when the pattern text contains an upper-case ASCII letter (anywhere,
 *   even in `\D`); the same rule is applied here. A `~pattern` is PCRE, read as routing/pcre.ts
 *   says; a RegExp is JavaScript already and keeps its source and flags (but `g` and `y`).
 * - `*.example.com`: leading wildcard (one or more labels before `example.com`).
 * - `.example.com`: `example.com` exactly, or any name under it.
 * - `www.example.*`: trailing wildcard (one or more labels after `www.example`).
 * - `$hostname` (any case): this machine's host name.
 * - anything else, including `""`: an exact name, lower-cased.
 *
 * Throws `Error('invalid server name "<name>": <reason>')` for what nginx refuses at config
 * load: `*`, `*.`, `*x` and `.`; a `*` that is not a whole leading or trailing label
 * (`www.*.com`, `w*w.example.com`) or more than one `*`; `..`; NUL; `~` alone; a regex that does
 * not compile (reason `invalid regular expression: …`).
 */
export function parseServerName (name: string | RegExp): ParsedServerName {
  if (name instanceof RegExp) {
    // exec() must not depend on lastIndex
    let flags = name.flags.replace(/[gy]/g, '')
    if (caseless(name.source) && !flags.includes('i')) flags += 'i'
    return { kind: 'regex', value: name.source, regex: new RegExp(name.source, flags) }
  }

  if (name.charCodeAt(0) === 0x7e /* ~ */) {
    if (name.length === 1) throw invalid(name, 'empty regex')
    const source = name.slice(1)
    let regex: RegExp
    try {
      regex = compilePcre(source, caseless(source))
    } catch (err) {
      throw invalid(name, `invalid regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`)
    }
    return { kind: 'regex', value: source, regex }
  }

  if (name.toLowerCase() === '$hostname') {
    return { kind: 'exact', value: osHostname().toLowerCase() }
  }

  const len = name.length
  if (name.startsWith('*') && (len < 3 || name.charCodeAt(1) !== DOT)) {
    throw invalid(name, '"*" must be followed by "." and a name, as in "*.example.com"')
  }
  if (name === '.') throw invalid(name, 'a lone "."')

  let stars = 0
  for (let i = 0; i < len; i++) {
    const c = name.charCodeAt(i)
    if (c === 0x2a /* * */ && ++stars > 1) throw invalid(name, 'more than one "*"')
    if (c === 0) throw invalid(name, 'NUL character')
    if (c === DOT && name.charCodeAt(i + 1) === DOT) throw invalid(name, 'empty label ("..")')
  }

  // Same order of checks as nginx's ngx_hash_add_key().
  if (len > 1 && name.charCodeAt(0) === DOT) {
    return { kind: 'leading', value: name.slice(1).toLowerCase(), alsoExact: true }
  }
  if (len > 2 && name.startsWith('*.')) {
    return { kind: 'leading', value: name.slice(2).toLowerCase() }
  }
  if (len > 2 && name.endsWith('.*')) {
    return { kind: 'trailing', value: name.slice(0, -2).toLowerCase() }
  }
  if (stars > 0) {
    throw invalid(name, '"*" is only allowed as a whole first label ("*.example.com") or a whole last label ("www.example.*")')
  }
  return { kind: 'exact', value: name.toLowerCase() }
}

/** nginx: a server name regex is caseless when its text has an upper-case letter (hosts are lower-cased). */
function caseless (pattern: string): boolean {
  return /[A-Z]/.test(pattern)
}

// ---------------------------------------------------------------------------------------------
// Selection
// ---------------------------------------------------------------------------------------------

export interface ServerSelectorEntry<S> {
  server: S
  /**
   * The server's names, in declaration order. An empty list means nginx's implicit
   * `server_name ""` (a server block without a server_name directive).
   */
  names: ReadonlyArray<string | RegExp>
}

export interface ServerSelection<S> {
  readonly server: S
  /** The match of the selecting regex (for `$1`.. and named groups), else null. */
  readonly captures: RegExpExecArray | null
}

interface Tables<S> {
  exact: Map<string, ServerSelection<S>>
  leading: Map<string, ServerSelection<S>>
  trailing: Map<string, ServerSelection<S>>
  regexes: Array<{ regex: RegExp, server: S, name: string }>
  conflicts: string[]
  /** The name as written behind each table entry (`exact:`, `leading:`, `trailing:` + value), for `explain`. */
  written: Map<string, string>
}

/** How a server was chosen for a host (`proxyctl explain`): nginx's rule and the name as written. */
export interface ServerStep {
  rule: 'exact' | 'leading-wildcard' | 'trailing-wildcard' | 'regex' | 'default'
  /** The server name that matched, as written (`*.example.com`, `~^api\\d+`); none for `default`. */
  name?: string
}

/**
 * Build the lookup tables the way nginx's ngx_http_server_names() fills its hashes, including
 * which names it ignores as "conflicting server name":
 *
 * - an exact name already declared (by any server, or earlier in the same one), or already
 *   implied by a `.name`;
 * - `*.name` or `.name` when `*.name` or `.name` is already declared;
 * - `.name` when the exact `name` is already declared. (As in nginx, a `.name` ignored for an
 *   earlier `*.name` still blocks a later exact `name`.)
 * - `prefix.*` already declared.
 *
 * Regexes never conflict. The first declaration wins.
 */
function buildTables<S> (entries: ReadonlyArray<ServerSelectorEntry<S>>): Tables<S> {
  const t: Tables<S> = { exact: new Map(), leading: new Map(), trailing: new Map(), regexes: [], conflicts: [], written: new Map() }
  const shown = (name: string | RegExp): string => typeof name === 'string' ? name : `~${name.source}`
  const exactSeen = new Set<string>()
  const conflicts = new Set<string>()
  const conflict = (name: string | RegExp): void => {
    conflicts.add(typeof name === 'string' ? name.toLowerCase() : name.source)
  }

  for (const entry of entries) {
    const result: ServerSelection<S> = Object.freeze({ server: entry.server, captures: null })
    const names = entry.names.length === 0 ? [''] : entry.names
    for (const name of names) {
      const parsed = parseServerName(name)
      switch (parsed.kind) {
        case 'exact':
          if (exactSeen.has(parsed.value)) { conflict(name); break }
          exactSeen.add(parsed.value)
          t.exact.set(parsed.value, result)
          t.written.set(`exact:${parsed.value}`, shown(name))
          break
        case 'leading':
          if (parsed.alsoExact === true) {
            if (exactSeen.has(parsed.value)) { conflict(name); break }
            exactSeen.add(parsed.value)
          }
          if (t.leading.has(parsed.value)) { conflict(name); break }
          t.leading.set(parsed.value, result)
          t.written.set(`leading:${parsed.value}`, shown(name))
          if (parsed.alsoExact === true) t.written.set(`exact:${parsed.value}`, shown(name))
          // `.example.com` answers for `example.com` before any other wildcard is tried, and no
          // exact `example.com` can coexist with it, so it can live in the exact table.
          if (parsed.alsoExact === true) t.exact.set(parsed.value, result)
          break
        case 'trailing':
          if (t.trailing.has(parsed.value)) { conflict(name); break }
          t.trailing.set(parsed.value, result)
          t.written.set(`trailing:${parsed.value}`, shown(name))
          break
        case 'regex':
          t.regexes.push({ regex: parsed.regex as RegExp, server: entry.server, name: shown(name) })
          break
      }
    }
  }
  t.conflicts = [...conflicts]
  return t
}

/**
 * The names nginx would ignore with `conflicting server name "<name>" on <address>, ignored`
 * for these servers of one listen address (lower-cased, each once, in the order met). Throws
 * like {@link parseServerName} on an invalid name.
 */
export function conflictingServerNames (entries: ReadonlyArray<{ names: ReadonlyArray<string | RegExp> }>): string[] {
  return buildTables(entries.map(e => ({ server: null, names: e.names }))).conflicts
}

/** Most hosts {@link ServerSelector} remembers past its exact table; full, it starts over. */
export const HOST_CACHE_MAX = 1024

/** Picks the server of one listen address for a (normalised) host name. */
export class ServerSelector<S> {
  readonly #exact: Map<string, ServerSelection<S>>
  /**
   * Hosts that needed the wildcard or regex walk, with what it found: the answer depends on the
   * host alone, and a site is reached under few names, so a request pays one Map lookup instead
   * of slicing the host and running regexes (measured: bench/README.md, "Server selection's
   * cache of walked hosts"). Bounded, and cleared when full, so a client sending random hosts
   * costs a walk per request, as without it.
   */
  readonly #walked = new Map<string, ServerSelection<S>>()
  readonly #leading: Map<string, ServerSelection<S>>
  readonly #trailing: Map<string, ServerSelection<S>>
  readonly #regexes: ReadonlyArray<{ regex: RegExp, server: S, name: string }>
  readonly #fallback: ServerSelection<S>
  readonly #written: ReadonlyMap<string, string>
  /** See {@link conflictingServerNames}. */
  readonly conflicts: readonly string[]

  /**
   * @param entries the listen address's servers in declaration order, with their names.
   * @param defaultServer the listen address's default server (the one marked `default_server`,
   *   else the first declared); chosen when no name matches.
   * @throws Error('invalid server name …') as {@link parseServerName}.
   */
  constructor (entries: ReadonlyArray<ServerSelectorEntry<S>>, defaultServer: S) {
    const t = buildTables(entries)
    this.#exact = t.exact
    this.#leading = t.leading
    this.#trailing = t.trailing
    this.#regexes = t.regexes
    this.#fallback = Object.freeze({ server: defaultServer, captures: null })
    this.#written = t.written
    this.conflicts = Object.freeze(t.conflicts)
  }

  /**
   * @param host the output of {@link normalizeHost} (lower-case, no port, no trailing dot);
   *   `undefined` or `""` when the request had no Host, which only an exact `""` name matches.
   * The returned object is shared between calls (a regex's captures too): do not mutate it.
   * `trace` (for `proxyctl explain`) is told which rule chose the server; with it the cache of
   * walked hosts is neither read nor filled.
   */
  select (host: string | undefined, trace?: (step: ServerStep) => void): ServerSelection<S> {
    const h = host ?? ''
    const exact = this.#exact.get(h)
    if (exact !== undefined) {
      if (trace !== undefined) trace({ rule: 'exact', name: this.#written.get(`exact:${h}`) ?? h })
      return exact
    }
    if (trace !== undefined) return this.#walk(h, trace)
    if (h.length === 0) return this.#fallback
    let found = this.#walked.get(h)
    if (found === undefined) {
      found = this.#walk(h)
      if (this.#walked.size >= HOST_CACHE_MAX) this.#walked.clear()
      this.#walked.set(h, found)
    }
    return found
  }

  /** nginx's order past the exact names: leading wildcards, trailing wildcards, regexes. */
  #walk (h: string, trace?: (step: ServerStep) => void): ServerSelection<S> {
    if (h.length === 0) { trace?.({ rule: 'default' }); return this.#fallback }
    // Leading wildcards: the longest suffix after a dot. Walking dots left to right meets the
    // longest candidate first. "example.com" itself is never a candidate (only `.example.com`
    // matches it, via the exact table).
    if (this.#leading.size !== 0) {
      for (let dot = h.indexOf('.'); dot !== -1; dot = h.indexOf('.', dot + 1)) {
        const m = this.#leading.get(h.slice(dot + 1))
        if (m !== undefined) {
          trace?.({ rule: 'leading-wildcard', name: this.#written.get(`leading:${h.slice(dot + 1)}`) as string })
          return m
        }
      }
    }

    // Trailing wildcards: the longest prefix before a dot, right to left.
    if (this.#trailing.size !== 0) {
      for (let dot = h.lastIndexOf('.'); dot > 0; dot = h.lastIndexOf('.', dot - 1)) {
        const m = this.#trailing.get(h.slice(0, dot))
        if (m !== undefined) {
          trace?.({ rule: 'trailing-wildcard', name: this.#written.get(`trailing:${h.slice(0, dot)}`) as string })
          return m
        }
      }
    }

    const regexes = this.#regexes
    for (let i = 0; i < regexes.length; i++) {
      const captures = regexes[i].regex.exec(h)
      if (captures !== null) {
        trace?.({ rule: 'regex', name: regexes[i].name })
        return { server: regexes[i].server, captures }
      }
    }

    trace?.({ rule: 'default' })
    return this.#fallback
  }
}
