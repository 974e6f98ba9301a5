/**
 * nginx location selection (ngx_http_core_find_location) as a pure data structure.
 *
 * Per level (a server's top-level locations, or one location's nested ones):
 *   1. an exact (`=`) location equal to the URI wins at once;
 *   2. else the longest literal prefix (plain or `^~`) is remembered and its nested locations are
 *      searched the same way; an exact or regex answer found there is final;
 *   3. unless that prefix is `^~`, this level's regexes are tried in declaration order; the first
 *      match wins, and its own nested locations are searched the same way;
 *   4. else the remembered prefix (possibly a nested one) is the answer.
 * A `^~` only stops the regexes of its own level: a nested `^~` does not stop the outer level's
 * regexes (nginx reads `noregex` from the outer prefix there). Inside a regex location only nested
 * regexes are searched: nginx never builds the static tree of a regex location's children.
 */
import { compilePcre } from './pcre.js'
import type { LocationKind, LocationMatch, LocationNode, LocationStep } from './types.js'

// ----------------------------------------------------------------------------------------------
// location keys

export interface ParsedLocationKey {
  kind: LocationKind
  path: string
  regex?: RegExp
}

const MODIFIERS = new Set(['=', '^~', '~', '~*'])

function invalidKey (key: string, reason: string): Error {
  return new Error(`invalid location ${JSON.stringify(key)}: ${reason}`)
}

/**
 * Parses nginx location syntax: `= /p`, `^~ /p`, `~ re`, `~* re`, `@name`, `/p`. As in nginx, the
 * whitespace after a modifier may also be absent (`=/p`, `~\.php$`).
 */
export function parseLocationKey (key: string): ParsedLocationKey {
  if (key.length === 0) throw invalidKey(key, 'empty path')

  if (key.charCodeAt(0) === 0x40 /* @ */) {
    if (key.length === 1) throw invalidKey(key, 'empty name')
    if (/\s/.test(key)) throw invalidKey(key, 'a named location cannot contain whitespace')
    return { kind: 'named', path: key }
  }

  // with whitespace, the first word must be a modifier (or the key a path containing spaces)
  const ws = /[ \t]/.exec(key)
  if (ws !== null) {
    const word = key.slice(0, ws.index)
    if (word === '') throw invalidKey(key, 'leading whitespace')
    if (!MODIFIERS.has(word) && word.charCodeAt(0) !== 0x2f) throw invalidKey(key, `unknown modifier ${JSON.stringify(word)}`)
  }

  const m = /^(=|\^~|~\*|~)[ \t]*/.exec(key)
  if (m !== null) {
    const mod = m[1]
    const rest = key.slice(m[0].length)
    if (mod === '~' || mod === '~*') {
      if (rest.length === 0) throw invalidKey(key, 'empty regular expression')
      const kind: LocationKind = mod === '~' ? 'regex' : 'regex-i'
      return { kind, path: rest, regex: compileLocationRegex(rest, kind === 'regex-i') }
    }
    if (rest.length === 0) throw invalidKey(key, 'empty path')
    if (rest.charCodeAt(0) !== 0x2f) throw invalidKey(key, 'the path must start with "/"')
    return { kind: mod === '=' ? 'exact' : 'prefix-noregex', path: rest }
  }

  if (key.charCodeAt(0) !== 0x2f) throw invalidKey(key, 'the path must start with "/"')
  return { kind: 'prefix', path: key }
}

/** A `~` or `~*` location's regex, read as PCRE (see pcre.ts). Throws `invalid regular expression: <JS message>`. */
export function compileLocationRegex (source: string, caseless: boolean): RegExp {
  try {
    return compilePcre(source, caseless)
  } catch (err) {
    throw new Error(`invalid regular expression: ${(err as Error).message}`)
  }
}

// ----------------------------------------------------------------------------------------------
// the tree

interface PrefixEntry<T> {
  path: string
  node: T
  noregex: boolean
  sub: Level<T> | null
}

interface RegexEntry<T> {
  regex: RegExp
  node: T
  sub: Level<T> | null
}

interface Level<T> {
  exact: Map<string, T> | null
  /** Longest first. */
  prefixes: PrefixEntry<T>[]
  /**
   * The prefixes grouped by length, longest first: the longest match is the first length whose
   * map holds the URI's first `len` characters. A lookup per distinct length, not a scan of all.
   */
  byLength: Array<{ len: number, map: Map<string, PrefixEntry<T>> }>
  regexes: RegexEntry<T>[]
  /** The regexes again, as runs checked in order (see RegexRun). */
  runs: RegexRun<T>[]
}

/**
 * Consecutive regex locations with the same flags, screened with one combined regex
 * `(?:R1)|(?:R2)|...`: one native scan tells whether any of them matches. Most requests match
 * none (they are answered by a prefix), and then the whole run costs one call instead of one per
 * location. When the screen hits, the run's regexes are tried in declaration order as nginx does.
 * Runs with back-references are not combined (their group numbers would change).
 */
interface RegexRun<T> {
  /** Matches iff some entry matches; null: check the (single) entry directly. */
  screen: RegExp | null
  entries: RegexEntry<T>[]
}

/** Capture groups in a regex source, and whether it uses back-references (which combining would break). */
function groupInfo (source: string): { groups: number, backrefs: boolean, plain: string } {
  let groups = 0
  let backrefs = false
  let inClass = false
  let plain = ''
  for (let i = 0; i < source.length; i++) {
    const c = source[i] as string
    if (c === '\\') {
      const n = source[i + 1] ?? ''
      if (!inClass && (/[1-9]/.test(n) || n === 'k')) backrefs = true
      plain += c + n
      i++
      continue
    }
    if (inClass) { if (c === ']') inClass = false; plain += c; continue }
    if (c === '[') { inClass = true; plain += c; continue }
    if (c === '(') {
      if (source[i + 1] !== '?') groups++
      else if (source[i + 2] === '<' && source[i + 3] !== '=' && source[i + 3] !== '!') {
        // a named group: still a group, but names may repeat across alternatives, so drop them
        groups++
        const end = source.indexOf('>', i)
        plain += '('
        i = end
        continue
      }
    }
    plain += c
  }
  return { groups, backrefs, plain }
}

const MIN_RUN = 3

function buildRuns<T> (regexes: RegexEntry<T>[]): RegexRun<T>[] {
  const runs: RegexRun<T>[] = []
  let i = 0
  while (i < regexes.length) {
    const flags = (regexes[i] as RegexEntry<T>).regex.flags
    let j = i
    while (j < regexes.length && (regexes[j] as RegexEntry<T>).regex.flags === flags) j++
    const entries = regexes.slice(i, j)
    i = j
    const infos = entries.map((e) => groupInfo(e.regex.source))
    if (entries.length < MIN_RUN || infos.some((g) => g.backrefs)) {
      for (const e of entries) runs.push({ screen: null, entries: [e] })
      continue
    }
    let screen: RegExp | null
    try { screen = new RegExp(infos.map((g) => `(?:${g.plain})`).join('|'), flags) } catch { screen = null }
    if (screen === null) for (const e of entries) runs.push({ screen: null, entries: [e] })
    else runs.push({ screen, entries })
  }
  return runs
}

// find() results, as in nginx
const DECLINED = 0 // no match, or an inclusive (prefix) match: outer regexes may still win
const OK = 1 // exact or regex match: final

function plainRegex (node: LocationNode): RegExp {
  const re = node.regex ?? compileLocationRegex(node.path, node.kind === 'regex-i')
  // exec() must not depend on lastIndex
  return re.global || re.sticky ? new RegExp(re.source, re.flags.replace(/[gy]/g, '')) : re
}

/**
 * `regexOnly`: the nested level of a regex location. nginx builds the static (exact and prefix)
 * tree only for locations reachable through static ones, so prefix and exact locations nested in
 * a regex location are never matched; nested regexes are.
 */
function buildLevel<T extends LocationNode> (nodes: readonly LocationNode[], regexOnly = false): Level<T> | null {
  let exact: Map<string, T> | null = null
  const prefixes: PrefixEntry<T>[] = []
  const regexes: RegexEntry<T>[] = []
  const seenPrefix = new Set<string>()

  for (const n of nodes) {
    const node = n as T
    if (regexOnly && node.kind !== 'regex' && node.kind !== 'regex-i') continue
    switch (node.kind) {
      case 'exact':
        exact ??= new Map()
        // a duplicate is a config error (validateLocationTree); the first one is kept
        if (!exact.has(node.path)) exact.set(node.path, node)
        break
      case 'prefix':
      case 'prefix-noregex':
        if (seenPrefix.has(node.path)) break
        seenPrefix.add(node.path)
        prefixes.push({ path: node.path, node, noregex: node.kind === 'prefix-noregex', sub: buildLevel<T>(node.children) })
        break
      case 'regex':
      case 'regex-i':
        regexes.push({ regex: plainRegex(node), node, sub: buildLevel<T>(node.children, true) })
        break
      case 'named':
        // reached only through internal redirects, never by a URI
        break
    }
  }
  if (exact === null && prefixes.length === 0 && regexes.length === 0) return null
  // stable: equal lengths keep declaration order (they cannot both match anyway)
  prefixes.sort((a, b) => b.path.length - a.path.length)
  const byLength: Level<T>['byLength'] = []
  for (const p of prefixes) {
    let bucket = byLength[byLength.length - 1]
    if (bucket === undefined || bucket.len !== p.path.length) byLength.push(bucket = { len: p.path.length, map: new Map() })
    if (!bucket.map.has(p.path)) bucket.map.set(p.path, p)
  }
  return { exact, prefixes, byLength, regexes, runs: buildRuns(regexes) }
}

export class LocationTree<T extends LocationNode> {
  readonly #root: Level<T> | null
  // the state nginx keeps in r->loc_conf / r->captures while searching; reset per match()
  #current: T | null = null
  #captures: RegExpExecArray | null = null

  /** `locations`: the server's top-level locations, in declaration order. Named ones are ignored. */
  constructor (locations: readonly T[]) {
    this.#root = buildLevel<T>(locations)
  }

  /**
   * Selects the location for a normalised URI (see normalizeUri), or null if none matches.
   * `trace` (for `proxyctl explain`) is told each location considered, in nginx's order.
   */
  match (uri: string, trace?: (step: LocationStep<T>) => void): LocationMatch<T> | null {
    if (this.#root === null) return null
    this.#current = null
    this.#captures = null
    this.#find(this.#root, uri, trace)
    const location = this.#current
    if (location === null) return null
    const captures = this.#captures
    this.#current = null
    this.#captures = null
    return { location, captures }
  }

  #find (level: Level<T>, uri: string, trace: ((step: LocationStep<T>) => void) | undefined): number {
    if (level.exact !== null) {
      const hit = level.exact.get(uri)
      if (hit !== undefined) {
        this.#current = hit
        if (trace !== undefined) trace({ kind: 'exact', node: hit, matched: true })
        return OK
      }
    }

    let noregex = false
    const byLength = level.byLength
    const len = uri.length
    for (let i = 0; i < byLength.length; i++) {
      const bucket = byLength[i] as Level<T>['byLength'][number]
      if (bucket.len > len) continue
      const p = bucket.map.get(bucket.len === len ? uri : uri.slice(0, bucket.len))
      if (p === undefined) continue
      this.#current = p.node
      noregex = p.noregex
      if (trace !== undefined) trace({ kind: 'prefix', node: p.node, matched: true })
      if (p.sub !== null && this.#find(p.sub, uri, trace) === OK) return OK
      break
    }

    if (!noregex) {
      const runs = level.runs
      for (let i = 0; i < runs.length; i++) {
        const run = runs[i] as RegexRun<T>
        if (run.screen !== null && !run.screen.test(uri)) {
          if (trace !== undefined) for (const r of run.entries) trace({ kind: 'regex', node: r.node, matched: false })
          continue
        }
        const entries = run.entries
        for (let k = 0; k < entries.length; k++) {
          const r = entries[k] as RegexEntry<T>
          const m = r.regex.exec(uri)
          if (m === null) {
            if (trace !== undefined) trace({ kind: 'regex', node: r.node, matched: false })
            continue
          }
          this.#current = r.node
          this.#captures = m
          if (trace !== undefined) trace({ kind: 'regex', node: r.node, matched: true })
          // nested regexes of a regex location (the first match replaces these captures)
          if (r.sub !== null) this.#find(r.sub, uri, trace)
          return OK
        }
      }
    } else if (trace !== undefined && level.regexes.length > 0) {
      trace({ kind: 'regexes-skipped', node: this.#current as T, matched: false })
    }
    return DECLINED
  }
}

// ----------------------------------------------------------------------------------------------
// validation

export interface LocationProblem {
  node: LocationNode
  message: string
}

const quote = (s: string): string => JSON.stringify(s)

/**
 * The location errors nginx refuses a config for, one entry per problem, in tree order:
 * duplicates at one level (a plain and a `^~` prefix with the same path are duplicates; exact and
 * prefix with the same path are not; nginx accepts repeated regexes and named locations),
 * locations nested in an exact or a named location, nested named locations, and nested
 * prefix/exact locations outside their parent's path. (nginx stops at the first.)
 */
export function validateLocationTree (top: LocationNode[]): LocationProblem[] {
  const problems: LocationProblem[] = []
  checkLevel(top, null, problems)
  return problems
}

function checkLevel (nodes: readonly LocationNode[], parent: LocationNode | null, problems: LocationProblem[]): void {
  const exact = new Set<string>()
  const inclusive = new Set<string>()

  for (const node of nodes) {
    if (parent !== null) {
      const problem = nestingProblem(node, parent)
      if (problem !== null) problems.push({ node, message: problem })
    }

    let seen: Set<string> | null = null
    if (node.kind === 'exact') seen = exact
    else if (node.kind === 'prefix' || node.kind === 'prefix-noregex') seen = inclusive
    if (seen !== null) {
      if (seen.has(node.path)) problems.push({ node, message: `duplicate location ${quote(node.path)}` })
      else seen.add(node.path)
    }

    if (node.children.length > 0) checkLevel(node.children, node, problems)
  }
}

/** The checks of ngx_http_core_location for a nested location, in nginx's order. */
function nestingProblem (node: LocationNode, parent: LocationNode): string | null {
  if (parent.kind === 'exact') {
    return `location ${quote(node.path)} cannot be inside the exact location ${quote(parent.path)}`
  }
  if (parent.kind === 'named') {
    return `location ${quote(node.path)} cannot be inside the named location ${quote(parent.path)}`
  }
  if (node.kind === 'named') {
    return `named location ${quote(node.path)} can be on the server level only`
  }
  // nginx compares with the parent's name, which for a regex parent is its source text
  if (node.kind !== 'regex' && node.kind !== 'regex-i' && !node.path.startsWith(parent.path)) {
    return `location ${quote(node.path)} is outside location ${quote(parent.path)}`
  }
  return null
}
