/**
 * nginx location selection. The tables live in fixtures/location-cases.ts and were checked against
 * nginx 1.22.1 with fixtures/nginx-compare.ts (every expected location, capture and config error).
 */
import t from 'tap'
import {
  LocationTree,
  parseLocationKey,
  validateLocationTree
} from '../../packages/core/src/routing/location-tree.js'
import { normalizeUri } from '../../packages/core/src/routing/uri.js'
import type { LocationNode } from '../../packages/core/src/routing/types.js'
import { buildNodes, scenarios, validationCases, type LabeledNode } from './fixtures/location-cases.js'

function capture (m: RegExpExecArray | null, key: string): string {
  if (m === null) return ''
  return (/^\d+$/.test(key) ? m[Number(key)] : m.groups?.[key]) ?? ''
}

for (const sc of scenarios) {
  t.test(`match: ${sc.name}`, async t => {
    const tree = new LocationTree<LabeledNode>(buildNodes(sc.locations))
    for (const c of sc.cases) {
      const m = tree.match(normalizeUri(c.uri))
      t.equal(m?.location.label ?? null, c.expect, `${c.rule}: ${c.uri}`)
      if (m !== null && m.location.kind !== 'regex' && m.location.kind !== 'regex-i') {
        t.equal(m.captures, null, `${c.rule}: no captures for a non-regex answer`)
      }
      if (c.captures !== undefined) {
        for (const [k, v] of Object.entries(c.captures)) {
          t.equal(capture(m?.captures ?? null, k), v, `${c.rule}: $${k}`)
        }
      }
    }
  })
}

t.test('match: tree mechanics', async t => {
  t.equal(new LocationTree([]).match('/'), null, 'an empty tree matches nothing')
  t.equal(new LocationTree(buildNodes({ '@a': {} })).match('/'), null, 'a tree of named locations matches nothing')

  const nodes = buildNodes({ '~ ^/(?<id>\\d+)$': {} })
  const m = new LocationTree(nodes).match('/42')
  t.ok(Array.isArray(m?.captures), 'captures are the RegExpExecArray')
  t.equal(m?.captures?.index, 0, 'with index')
  t.equal(m?.captures?.groups?.id, '42', 'and groups')

  const sticky: LocationNode = { kind: 'regex', path: 'a', regex: /a/gy, children: [] }
  const st = new LocationTree([sticky])
  t.ok(st.match('a') !== null && st.match('a') !== null, 'a g/y flag on a supplied regex does not make matching stateful')

  const regexFromPath: LocationNode = { kind: 'regex-i', path: '\\.PNG$', children: [] }
  t.equal(new LocationTree([regexFromPath]).match('/x.png')?.location, regexFromPath, 'a regex node without `regex` is compiled from its path')

  const first = { ...parseLocationKey('/a'), children: [], label: 'first' }
  const second = { ...parseLocationKey('^~ /a'), children: [], label: 'second' }
  t.equal(new LocationTree([first, second]).match('/a/b')?.location.label, 'first', 'of duplicate prefixes (a config error), the first is kept')
})

t.test('parseLocationKey', async t => {
  const ok: Array<[string, string, string, string?]> = [
    // key, kind, path, regex source/flags
    ['/p', 'prefix', '/p'],
    ['/', 'prefix', '/'],
    ['= /p', 'exact', '/p'],
    ['=/p', 'exact', '/p'],
    ['^~ /p', 'prefix-noregex', '/p'],
    ['^~    /p', 'prefix-noregex', '/p'],
    ['~ \\.php$', 'regex', '\\.php$', '/\\.php$/'],
    ['~\\.php$', 'regex', '\\.php$', '/\\.php$/'],
    ['~* \\.PHP$', 'regex-i', '\\.PHP$', '/\\.PHP$/i'],
    ['~  ^/(?P<name>\\w+)/(?P=name)$', 'regex', '^/(?P<name>\\w+)/(?P=name)$', '/^\\/(?<name>\\w+)\\/\\k<name>$/'],
    ['~ (?i)^/abc', 'regex', '(?i)^/abc', '/^\\/abc/i'],
    ['~ \\A/x\\z', 'regex', '\\A/x\\z', '/^\\/x$/'],
    ['~ []a]', 'regex', '[]a]', '/[\\]a]/'],
    ['~ \\(?P<x>', 'regex', '\\(?P<x>', '/\\(?P<x>/'],
    ['@fallback', 'named', '@fallback']
  ]
  for (const [key, kind, path, re] of ok) {
    const p = parseLocationKey(key)
    t.equal(p.kind, kind, `${JSON.stringify(key)} is ${kind}`)
    t.equal(p.path, path, `${JSON.stringify(key)} has path ${JSON.stringify(path)}`)
    if (re !== undefined) t.equal(String(p.regex), re, `${JSON.stringify(key)} compiles to ${re}`)
    else t.equal(p.regex, undefined, `${JSON.stringify(key)} has no regex`)
  }

  const p = parseLocationKey('~ ^/(?P<name>[a-z]+)$').regex!
  t.equal(p.exec('/bob')?.groups?.name, 'bob', '(?P<name>) becomes a JS named group')
  t.equal(parseLocationKey('~ []a]').regex!.test('/]'), true, 'a leading "]" in a class is literal, as in PCRE')

  const jsError = (src: string, flags = ''): string => {
    try { new RegExp(src, flags); return '' } catch (err) { return (err as Error).message }
  }
  const bad: Array<[string, string]> = [
    ['', 'invalid location "": empty path'],
    ['=', 'invalid location "=": empty path'],
    ['= ', 'invalid location "= ": empty path'],
    ['^~', 'invalid location "^~": empty path'],
    ['= p', 'invalid location "= p": the path must start with "/"'],
    ['^~ p', 'invalid location "^~ p": the path must start with "/"'],
    ['p', 'invalid location "p": the path must start with "/"'],
    ['foo /p', 'invalid location "foo /p": unknown modifier "foo"'],
    ['~~ /p', 'invalid location "~~ /p": unknown modifier "~~"'],
    ['=/p q', 'invalid location "=/p q": unknown modifier "=/p"'],
    [' /p', 'invalid location " /p": leading whitespace'],
    ['~', 'invalid location "~": empty regular expression'],
    ['~* ', 'invalid location "~* ": empty regular expression'],
    ['@', 'invalid location "@": empty name'],
    ['@a b', 'invalid location "@a b": a named location cannot contain whitespace'],
    ['~ (', 'invalid regular expression: ' + jsError('(')],
    ['~* [a-', 'invalid regular expression: ' + jsError('[a-', 'i')],
    ['~ a{2,1}', 'invalid regular expression: ' + jsError('a{2,1}')],
    ['~ (?<x>a)(?<x>b)', 'invalid regular expression: ' + jsError('(?<x>a)(?<x>b)')]
  ]
  for (const [key, message] of bad) {
    t.throws(() => parseLocationKey(key), { message, constructor: Error }, `${JSON.stringify(key)} → ${message}`)
  }
})

t.test('validateLocationTree', async t => {
  for (const c of validationCases) {
    const problems = validateLocationTree(buildNodes(c.locations))
    t.same(problems.map(p => p.message), c.messages, c.rule)
  }

  const nodes = buildNodes({ '/a': { '/b': {} } })
  t.equal(validateLocationTree(nodes)[0].node, nodes[0].children[0], 'a problem names the offending node')

  // not expressible as object keys; nginx -t accepts both
  const named: LocationNode[] = [
    { kind: 'named', path: '@a', children: [] },
    { kind: 'named', path: '@a', children: [] }
  ]
  t.same(validateLocationTree(named), [], 'nginx accepts duplicate named locations')
  const sameRegex = buildNodes({ '~ x': {}, '~* x': {} })
  t.same(validateLocationTree(sameRegex), [], 'nginx accepts the same regex twice')
})
