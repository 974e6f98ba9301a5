// The one PCRE translator (core's routing/pcre.ts) behind server names, locations and
// proxy_redirect: nginx regex text in, JavaScript RegExp behaviour out.
import t from 'tap'
import { type RequestContext } from '@proxyctl/core'
import { compilePcre, compileTemplate, namedGroups, parseLocationKey } from '@proxyctl/core/internal'
import { parseServerName } from '../../packages/core/src/routing/server-select.js'
import { compileRedirect } from '../../packages/plugins/src/proxy/redirect.js'
import { parseProxyTarget } from '../../packages/plugins/src/proxy/target.js'

interface Row {
  rule: string
  pcre: string
  caseless?: boolean
  /** Strings it must match (with, when given, these named groups). */
  matches?: Array<string | [string, Record<string, string>]>
  misses?: string[]
  /** The compiled RegExp, as String(regex) shows it. */
  compiles?: string
  /** JavaScript refuses it (SyntaxError). */
  refused?: true
}

const rows: Row[] = [
  { rule: 'JavaScript-compatible text is kept as written, without the u flag', pcre: '^/api/(\\d+)$', compiles: '/^\\/api\\/(\\d+)$/' },
  { rule: 'caseless compiles with flag i', pcre: '\\.php$', caseless: true, compiles: '/\\.php$/i', matches: ['/A.PHP'] },
  { rule: '\\Q..\\E quotes its text', pcre: '^\\Q.x+\\E$', matches: ['.x+'], misses: ['ax+', '.xx'] },
  { rule: '\\Q without \\E quotes to the end', pcre: '^a\\Q(b', matches: ['a(b'], compiles: '/^a\\(b/' },
  { rule: '\\Q..\\E inside a class is not read (PCRE reads it; JavaScript takes \\Q as Q)', pcre: '^[\\Q]$', matches: ['Q'] },
  { rule: '\\A is the start of the subject', pcre: '\\A/x', matches: ['/x/y'], misses: ['/a/x'], compiles: '/^\\/x/' },
  { rule: '\\z is the very end', pcre: 'x\\z', matches: ['/x'], misses: ['/x\n', '/xy'] },
  { rule: '\\Z is the end or before a final newline', pcre: 'x\\Z', matches: ['/x', '/x\n'], misses: ['/x\n\n'] },
  { rule: '\\A and \\z inside a class are letters', pcre: '^[\\A\\z]$', matches: ['A', 'z'] },
  { rule: 'a leading (?i) makes the whole regex caseless', pcre: '(?i)^/abc', matches: ['/ABC'], compiles: '/^\\/abc/i' },
  { rule: '(?i) anywhere else is refused (JavaScript has no inline flags)', pcre: '^/a(?i)bc', refused: true },
  { rule: '(?<n>..) is a named group', pcre: '^/(?<n>[a-z]+)$', matches: [['/ab', { n: 'ab' }]] },
  { rule: '(?P<n>..) is a named group', pcre: '^/(?P<n>[a-z]+)$', matches: [['/ab', { n: 'ab' }]], compiles: '/^\\/(?<n>[a-z]+)$/' },
  { rule: "(?'n'..) is a named group", pcre: "^/(?'n'[a-z]+)$", matches: [['/ab', { n: 'ab' }]] },
  { rule: '(?P=n) refers back to a named group', pcre: '^(?P<n>a+)-(?P=n)$', matches: ['aa-aa'], misses: ['aa-a'], compiles: '/^(?<n>a+)-\\k<n>$/' },
  { rule: 'a "]" first in a class is literal', pcre: '^[]a]$', matches: [']', 'a'], compiles: '/^[\\]a]$/' },
  { rule: 'a "]" first in a negated class is literal', pcre: '^[^]a]$', matches: ['b'], misses: [']', 'a'] },
  { rule: 'an escaped "(" starts no group', pcre: '\\(?P<x>', matches: ['P<x>', '(P<x>'], compiles: '/\\(?P<x>/' },
  { rule: 'PCRE escapes JavaScript\'s u flag refuses still work (\\- outside a class)', pcre: '^a\\-b$', matches: ['a-b'] },
  { rule: '\\p{..} Unicode properties compile with the u flag', pcre: '^www\\p{N}+$', matches: ['www01'], misses: ['wwwab'] },
  { rule: 'a bad regex is refused with JavaScript\'s SyntaxError', pcre: '(', refused: true }
]

t.test('compilePcre', async t => {
  for (const r of rows) {
    if (r.refused === true) {
      t.throws(() => compilePcre(r.pcre, r.caseless), SyntaxError, `${r.rule}: ${r.pcre}`)
      continue
    }
    const re = compilePcre(r.pcre, r.caseless)
    if (r.compiles !== undefined) t.equal(String(re), r.compiles, `${r.rule}: ${r.pcre} compiles to ${r.compiles}`)
    for (const m of r.matches ?? []) {
      const [subject, groups] = typeof m === 'string' ? [m, undefined] : m
      const found = re.exec(subject)
      t.ok(found, `${r.rule}: ${r.pcre} matches ${JSON.stringify(subject)}`)
      if (groups !== undefined) t.same({ ...found?.groups }, groups, `${r.rule}: ${r.pcre} captures ${JSON.stringify(groups)}`)
    }
    for (const s of r.misses ?? []) t.notOk(re.test(s), `${r.rule}: ${r.pcre} does not match ${JSON.stringify(s)}`)
  }
})

t.test('server names, locations and proxy_redirect read the same text alike', async t => {
  const target = parseProxyTarget('http://backend', new Set(['backend']))
  const ctx = { captures: null } as unknown as RequestContext
  for (const pcre of ['^\\Q.x\\E$', '\\A.x\\z', "^(?'n'.x)$", '(?i)^.X$']) {
    const location = parseLocationKey(`~ ${pcre}`).regex
    const server = parseServerName(`~${pcre}`).regex
    t.equal(String(location), String(compilePcre(pcre)), `location ~ ${pcre}`)
    // server names add nginx's own rule: caseless when the text has an upper-case letter
    t.equal(server?.source, compilePcre(pcre).source, `server_name ~${pcre}`)
    const rewrite = compileRedirect([{ from: `~${pcre}`, to: '/hit' }], {
      target, location: undefined, compile: (source, namedCaptures) => compileTemplate(source, { namedCaptures })
    })
    t.equal(rewrite?.(`.x`, ctx), '/hit', `proxy_redirect ~${pcre} matches ".x"`)
    t.equal(rewrite?.(`ax`, ctx), pcre.includes('\\Q') ? undefined : '/hit', `proxy_redirect ~${pcre} on "ax"`)
  }
})

t.test('namedGroups', async t => {
  t.same([...namedGroups(compilePcre('^/(?P<a>x)(?<b>y)(?\'c\'z)(?<=w)'))], ['a', 'b', 'c'], 'every named group, lookbehinds not')
})
