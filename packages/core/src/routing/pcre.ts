/**
 * nginx's regexes are PCRE. JavaScript reads most of the same text alike; this is the one place
 * where the rest is translated, for server names, locations and proxy_redirect, so the same text
 * means the same thing in each:
 *
 *   (?P<n>…), (?'n'…)   → (?<n>…), named groups (`(?<n>…)` is the same in both)
 *   (?P=n)              → \k<n>
 *   \Q…\E               → the text between, escaped (to the end without `\E`); not inside a class
 *   \A, \z, \Z          → ^, $, (?=\n?$); not inside a class
 *   (?i) at the start   → flag i
 *   ] first in a class  → a literal "]" (`[]a]`, `[^]a]`)
 *
 * Compiled without the `u` flag, whose stricter escapes PCRE does not have, unless the pattern
 * uses a Unicode property (`\p{…}`, `\P{…}`) and compiles with it. Left as written, so JavaScript
 * refuses them: inline flags other than a leading `(?i)`, possessive quantifiers, atomic groups,
 * recursion. Still different: PCRE's `$` also matches before a final "\n".
 */

const SYNTAX = /[\\^$.*+?()[\]{}|/]/g

/** Translates PCRE `source` and compiles it. Throws JavaScript's SyntaxError for what it refuses. */
export function compilePcre (source: string, caseless = false): RegExp {
  const { pattern, flags, unicode } = translate(source, caseless ? 'i' : '')
  if (unicode) {
    try {
      return new RegExp(pattern, flags + 'u')
    } catch {
      // not valid with `u` (e.g. `\-` outside a class): read as PCRE reads it, without
    }
  }
  return new RegExp(pattern, flags)
}

/** The names of a compiled regex's named groups (`$name` variables where it matched). */
export function namedGroups (re: RegExp): Set<string> {
  const names = new Set<string>()
  for (const m of re.source.matchAll(/\(\?<([A-Za-z_][A-Za-z0-9_]*)>/g)) names.add(m[1] as string)
  return names
}

function translate (p: string, caseless: string): { pattern: string, flags: string, unicode: boolean } {
  let flags = caseless
  let i = 0
  if (p.startsWith('(?i)')) {
    flags = 'i'
    i = 4
  }
  let out = ''
  let inClass = false
  let unicode = false
  for (; i < p.length; i++) {
    const c = p[i] as string
    if (c === '\\') {
      const n = p[i + 1]
      if (n === undefined) { out += c; continue } // a trailing "\": JavaScript refuses it too
      i++
      if (!inClass && n === 'Q') {
        const end = p.indexOf('\\E', i + 1)
        out += p.slice(i + 1, end === -1 ? p.length : end).replace(SYNTAX, '\\$&')
        i = end === -1 ? p.length : end + 1
      } else if (!inClass && n === 'A') out += '^'
      else if (!inClass && n === 'z') out += '$'
      else if (!inClass && n === 'Z') out += '(?=\\n?$)'
      else {
        if (n === 'p' || n === 'P') unicode = true
        out += c + n
      }
      continue
    }
    if (inClass) {
      if (c === ']') inClass = false
      out += c
      continue
    }
    if (c === '[') {
      inClass = true
      out += c
      if (p[i + 1] === '^') { out += '^'; i++ }
      if (p[i + 1] === ']') { out += '\\]'; i++ }
      continue
    }
    if (c === '(' && p[i + 1] === '?') {
      if (p.startsWith('P<', i + 2)) { out += '(?<'; i += 3; continue }
      if (p.startsWith('P=', i + 2)) {
        const close = p.indexOf(')', i + 4)
        if (close !== -1) { out += `\\k<${p.slice(i + 4, close)}>`; i = close; continue }
      }
      if (p[i + 2] === "'") {
        const close = p.indexOf("'", i + 3)
        if (close !== -1) { out += `(?<${p.slice(i + 3, close)}>`; i = close; continue }
      }
    }
    out += c
  }
  return { pattern: out, flags, unicode }
}
