/**
 * Virtual server selection by Host (nginx's server_name semantics).
 *
 * The SERVERS / CASES tables below were checked against real nginx (1.31.5 built from
 * nginx/nginx, and Debian's 1.22.1): one `server {}` per SERVERS row on one listen address,
 * each `return 200 "<label>"`, and each CASES host sent as the Host header (null: an
 * HTTP/1.0 request without Host). `expect: 400` means nginx answered 400 (invalid host), i.e.
 * normalizeHost() returns null. Rows with `before1294` answered differently on nginx < 1.29.4,
 * whose Host validation was looser (that value is what 1.22.1 answered).
 * Keep the tables plain object literals between the markers: the verification script reads them.
 */
import t from 'tap'
import {
  HOST_CACHE_MAX,
  ServerSelector,
  conflictingServerNames,
  normalizeHost,
  parseServerName,
} from '../../packages/core/src/routing/server-select.js'

interface Server { label: string, names: string[], defaultServer?: boolean }
interface Case {
  rule: string
  host: string | null
  expect: string | 400
  /** Which listen address: 'main' (default) or 'noempty'. */
  listen?: 'main' | 'noempty'
  /** Named captures the selecting regex must produce. */
  captures?: Record<string, string>
  /** What nginx < 1.29.4 answers instead. */
  before1294?: string | 400
}

/* BEGIN SERVERS */
const SERVERS = {
  main: [
    { label: 'first', names: ['first.test'] },
    { label: 'exact', names: ['example.com', 'www.example.com', 'Mixed.Example.COM'] },
    { label: 'empty', names: [''] },
    { label: 'wild-short', names: ['*.example.org'] },
    { label: 'wild-long', names: ['*.api.example.org'] },
    { label: 'exact-org', names: ['a.example.org'] },
    { label: 'dot', names: ['.example.net'] },
    { label: 'trail-short', names: ['www.*'] },
    { label: 'trail-long', names: ['www.example.*'] },
    { label: 'both-lead', names: ['*.both.test'] },
    { label: 'both-trail', names: ['www.both.*'] },
    { label: 'mail-trail', names: ['mail.*'] },
    { label: 'mail-regex', names: ['~^mail'] },
    { label: 're-api-digits', names: ['~^api\\d+\\.example\\.com$'] },
    { label: 're-api', names: ['~^api'] },
    { label: 're-broad', names: ['~\\.example\\.com$'] },
    { label: 're-zz', names: ['~^zz\\d+\\.example\\.com$'] },
    { label: 're-upper', names: ['~^UP\\.Example\\.TEST$'] },
    { label: 're-named', names: ['~^(?P<sub>[a-z]+)\\.cap\\.test$'] },
    { label: 'ipv6', names: ['[::1]'] },
    { label: 'dup1', names: ['dup.test'] },
    { label: 'dup2', names: ['dup.test', 'only2.test'] },
    { label: 'conf-exact', names: ['conf.test'] },
    { label: 'conf-dot', names: ['.conf.test'] },
    { label: 'chain-star', names: ['*.chain.test'] },
    { label: 'chain-dot', names: ['.chain.test'] },
    { label: 'chain-exact', names: ['chain.test'] },
  ],
  noempty: [
    { label: 'ne-first', names: ['one.test'] },
    { label: 'ne-default', names: ['two.test'], defaultServer: true },
  ],
}
/* END SERVERS */

/* BEGIN CASES */
const CASES = [
  // exact names and Host normalisation
  { rule: 'exact name', host: 'example.com', expect: 'exact' },
  { rule: 'second name of a server', host: 'www.example.com', expect: 'exact' },
  { rule: 'port in Host is ignored', host: 'example.com:8080', expect: 'exact' },
  { rule: 'empty port is accepted', host: 'example.com:', expect: 'exact' },
  { rule: 'one trailing dot is dropped', host: 'example.com.', expect: 'exact' },
  { rule: 'trailing dot before the port is dropped', host: 'example.com.:80', expect: 'exact' },
  { rule: 'Host is compared case-insensitively', host: 'EXAMPLE.Com', expect: 'exact' },
  { rule: 'configured names are lower-cased', host: 'mixed.example.com', expect: 'exact' },
  { rule: 'IPv6 literal without port', host: '[::1]', expect: 'ipv6' },
  { rule: 'IPv6 literal with port', host: '[::1]:8080', expect: 'ipv6' },
  { rule: 'unknown IPv6 literal -> default', host: '[::2]', expect: 'first' },
  { rule: 'IPv4 address with port, no such name -> default', host: '127.0.0.1:80', expect: 'first' },
  // no Host, unknown Host, default
  { rule: 'no Host -> the server named ""', host: null, expect: 'empty' },
  { rule: 'unknown Host -> default (first declared)', host: 'unknown.test', expect: 'first' },
  { rule: 'no Host and no "" name -> default', host: null, expect: 'ne-default', listen: 'noempty' },
  { rule: 'unknown Host -> the default_server, not the first', host: 'three.test', expect: 'ne-default', listen: 'noempty' },
  { rule: 'exact match on a listen address with a default_server', host: 'one.test', expect: 'ne-first', listen: 'noempty' },
  // leading wildcards
  { rule: 'leading wildcard matches one label', host: 'b.example.org', expect: 'wild-short' },
  { rule: 'leading wildcard matches several labels', host: 'x.y.example.org', expect: 'wild-short' },
  { rule: 'exact beats leading wildcard', host: 'a.example.org', expect: 'exact-org' },
  { rule: 'longest leading wildcard beats shorter', host: 'v1.api.example.org', expect: 'wild-long' },
  { rule: 'longest leading wildcard, several labels', host: 'x.v1.api.example.org', expect: 'wild-long' },
  { rule: '*.api.example.org does not match api.example.org itself (shorter wildcard does)', host: 'api.example.org', expect: 'wild-short' },
  { rule: '*.example.org does not match example.org', host: 'example.org', expect: 'first' },
  { rule: 'Host with a leading dot is valid and matches *.example.org', host: '.example.org', expect: 'wild-short' },
  { rule: 'leading wildcard, Host upper-case with trailing dot and port', host: 'WWW.Example.ORG.:443', expect: 'wild-short' },
  { rule: '.example.net matches example.net', host: 'example.net', expect: 'dot' },
  { rule: '.example.net matches a.example.net', host: 'a.example.net', expect: 'dot' },
  { rule: '.example.net matches a.b.example.net', host: 'a.b.example.net', expect: 'dot' },
  { rule: '.example.net does not match xexample.net', host: 'xexample.net', expect: 'first' },
  // trailing wildcards
  { rule: 'trailing wildcard', host: 'www.other.test', expect: 'trail-short' },
  { rule: 'longest trailing wildcard beats shorter', host: 'www.example.co.uk', expect: 'trail-long' },
  { rule: 'www.* needs a label after "www."', host: 'www', expect: 'first' },
  { rule: 'leading wildcard beats trailing (*.example.org vs www.*)', host: 'www.example.org', expect: 'wild-short' },
  { rule: 'leading wildcard beats trailing (*.both.test vs www.both.*)', host: 'www.both.test', expect: 'both-lead' },
  { rule: 'trailing wildcard where no leading one matches', host: 'www.both.example', expect: 'both-trail' },
  // regexes
  { rule: 'trailing wildcard beats regex', host: 'mail.x.test', expect: 'mail-trail' },
  { rule: 'regex when no wildcard matches', host: 'mailbox.test', expect: 'mail-regex' },
  { rule: 'first regex in declaration order', host: 'api7.example.com', expect: 're-api-digits' },
  { rule: 'later regex when the first does not match', host: 'api.example.com', expect: 're-api' },
  { rule: 'regex order beats specificity', host: 'zz1.example.com', expect: 're-broad' },
  { rule: 'exact beats regex', host: 'www.example.com:81', expect: 'exact' },
  { rule: 'regex with upper-case letters is case-insensitive', host: 'up.example.test', expect: 're-upper' },
  { rule: 'Host is lower-cased before regex matching', host: 'UP.EXAMPLE.TEST', expect: 're-upper' },
  { rule: 'regex named capture (?P<name>)', host: 'Foo.cap.test', expect: 're-named', captures: { sub: 'foo' } },
  // conflicting names
  { rule: 'same exact name twice: first server wins', host: 'dup.test', expect: 'dup1' },
  { rule: 'other names of the losing server still work', host: 'only2.test', expect: 'dup2' },
  { rule: 'exact name beats a later .name for the bare name', host: 'conf.test', expect: 'conf-exact' },
  { rule: '.name after the same exact name is ignored entirely', host: 'sub.conf.test', expect: 'first' },
  { rule: '*.name then .name: the .name is ignored', host: 'x.chain.test', expect: 'chain-star' },
  { rule: '*.name then .name then name: the ignored .name still blocks the exact name', host: 'chain.test', expect: 'first' },
  // invalid Host -> 400
  { rule: 'invalid: empty Host header', host: '', expect: 400 },
  { rule: 'invalid: slash', host: 'example.com/x', expect: 400 },
  { rule: 'invalid: backslash', host: 'example\\com', expect: 400, before1294: 'first' },
  { rule: 'invalid: space inside', host: 'exa mple.com', expect: 400 },
  { rule: 'invalid: two dots', host: 'a..example.com', expect: 400 },
  { rule: 'invalid: leading two dots', host: '..example.com', expect: 400 },
  { rule: 'invalid: only a dot', host: '.', expect: 400 },
  { rule: 'invalid: only a port', host: ':80', expect: 400 },
  { rule: 'invalid: userinfo "@"', host: 'user@example.com', expect: 400, before1294: 'first' },
  { rule: 'invalid: "?"', host: 'example.com?', expect: 400, before1294: 'first' },
  { rule: 'invalid: non-digit port', host: 'example.com:http', expect: 400, before1294: 'exact' },
  { rule: 'invalid: two ports', host: 'example.com:80:80', expect: 400, before1294: 'exact' },
  { rule: 'invalid: port above 65535', host: 'example.com:65536', expect: 400, before1294: 'exact' },
  { rule: 'valid: port 65535', host: 'example.com:65535', expect: 'exact' },
  { rule: 'invalid: unclosed "["', host: '[::1', expect: 400, before1294: 'first' },
  { rule: 'invalid: dot after an IPv6 literal', host: '[::1].', expect: 400, before1294: 'ipv6' },
  { rule: 'invalid: "[" not first', host: 'x[::1]', expect: 400, before1294: 'first' },
  { rule: 'invalid: non-ASCII', host: 'b\u00e9.example.org', expect: 400, before1294: 'wild-short' },
  { rule: 'valid: RFC 3986 sub-delims and "%"', host: 'a%20b!$&\'()*+,;=_~.example.org', expect: 'wild-short' },
]
/* END CASES */

type Label = { label: string }
function selectorFor (listen: 'main' | 'noempty'): ServerSelector<Label> {
  const servers: Server[] = SERVERS[listen]
  const entries = servers.map(s => ({ server: { label: s.label }, names: s.names }))
  const def = entries.find((_, i) => servers[i].defaultServer === true) ?? entries[0]
  return new ServerSelector(entries, def.server)
}

t.test('Host header -> server (table checked against nginx)', async t => {
  const selectors = { main: selectorFor('main'), noempty: selectorFor('noempty') }
  t.ok(CASES.length >= 20)
  for (const c of CASES as Case[]) {
    const name = `${c.rule}: ${c.host === null ? '(no Host)' : JSON.stringify(c.host)} -> ${c.expect}`
    const host = normalizeHost(c.host ?? undefined)
    if (c.expect === 400) {
      t.equal(host, null, name)
      continue
    }
    t.not(host, null, `${name} (valid Host)`)
    const got = selectors[c.listen ?? 'main'].select(host ?? undefined)
    t.equal(got.server.label, c.expect, name)
    const byRegex = (SERVERS[c.listen ?? 'main'] as Server[])
      .some(s => s.label === c.expect && s.names.some(n => n.startsWith('~')))
    if (byRegex) {
      t.equal(got.captures?.input, host, `${name}: captures of the regex match`)
      if (c.captures !== undefined) t.same({ ...got.captures?.groups }, c.captures, `${name}: named captures`)
    } else {
      t.equal(got.captures, null, `${name}: no captures`)
    }
  }
})

t.test('normalizeHost', async t => {
  const cases: Array<[string | undefined, string | null | undefined]> = [
    [undefined, undefined],
    ['', null],
    ['Example.COM', 'example.com'],
    ['example.com:8080', 'example.com'],
    ['example.com.', 'example.com'],
    ['example.com..', null],
    ['example.com.:8080', 'example.com'],
    ['[::1]', '[::1]'],
    ['[::1]:8080', '[::1]'],
    ['[ABCD::EF98:0:7654:321]:80', '[abcd::ef98:0:7654:321]'],
    ['[::ffff:12.30.67.89]', '[::ffff:12.30.67.89]'],
    ['[::1]x', null],
    ['[::1%25eth0]', null],
    ['[ab..cd::1]', null],
    ['127.0.0.1:80', '127.0.0.1'],
    ['.example.com', '.example.com'],
    ['l', 'l'],
    ['a\0b', null],
    ['a\tb', null],
    [' example.com', null],
    ['a\\b', null],
    ['a"b', null],
    ['a#b', null],
    ['a{b', null],
    ['a\u00e9', null],
    ['example.com:00080', 'example.com'],
    ['example.com:99999', null],
  ]
  for (const [raw, want] of cases) t.equal(normalizeHost(raw), want, JSON.stringify(raw))
})

t.test('parseServerName', async t => {
  t.same(parseServerName('Example.COM'), { kind: 'exact', value: 'example.com' })
  t.same(parseServerName(''), { kind: 'exact', value: '' })
  t.same(parseServerName('*.Example.com'), { kind: 'leading', value: 'example.com' })
  t.same(parseServerName('.example.com'), { kind: 'leading', value: 'example.com', alsoExact: true })
  t.same(parseServerName('www.example.*'), { kind: 'trailing', value: 'www.example' })
  t.match(parseServerName('$HOSTNAME'), { kind: 'exact' })

  const re = parseServerName('~^api\\d+\\.example\\.com$')
  t.equal(re.kind, 'regex')
  t.equal(re.value, '^api\\d+\\.example\\.com$')
  t.notOk(re.regex?.flags.includes('i'), 'lower-case pattern: case-sensitive, as nginx')
  t.ok(parseServerName('~^API\\d').regex?.flags.includes('i'), 'upper-case letter in pattern: caseless, as nginx')
  t.ok(parseServerName('~^www\\p{N}+\\.example\\.com$').regex?.test('www01.example.com'), '\\p{N} works')
  t.ok(parseServerName('~^(?P<name>[a-z]+)\\Q.example.com\\E$').regex?.test('blah.example.com'), '\\Q..\\E literal')
  t.notOk(parseServerName('~^(?P<name>[a-z]+)\\Q.example.com\\E$').regex?.test('blahxexample.com'), '\\Q..\\E escapes "."')
  t.equal(parseServerName("~^(?'n'[a-z]+)\\.x$").regex?.exec('ab.x')?.groups?.n, 'ab', "(?'name') group")
  t.equal(parseServerName('~^(?P<n>a+)(?P=n)$').regex?.test('aaaa'), true, '(?P=name) backreference')
  t.equal(parseServerName('~^(?P<n>a+)(?P=n)$').regex?.test('aaa'), false, '(?P=name) backreference (odd)')

  const sticky = parseServerName(/^api/gy).regex
  t.equal(sticky?.flags.includes('g') || sticky?.flags.includes('y'), false, 'g and y dropped from RegExp objects')

  const bad: Array<[string, RegExp]> = [
    ['*', /^invalid server name "\*": /],
    ['*.', /^invalid server name "\*\.": /],
    ['*example.com', /^invalid server name "\*example\.com": /],
    ['.', /^invalid server name "\.": /],
    ['www.*.com', /^invalid server name "www\.\*\.com": /],
    ['w*w.example.com', /^invalid server name "w\*w\.example\.com": /],
    ['example.*.*', /^invalid server name "example\.\*\.\*": more than one "\*"/],
    ['*.example.*', /more than one "\*"/],
    ['a..example.com', /^invalid server name "a\.\.example\.com": /],
    ['a\0b', /NUL/],
    ['~', /^invalid server name "~": empty regex$/],
    ['~^(api', /^invalid server name "~\^\(api": invalid regular expression: /],
    ['~[', /invalid regular expression: /],
  ]
  for (const [name, message] of bad) t.throws(() => parseServerName(name), { message }, JSON.stringify(name))
  t.throws(() => new ServerSelector([{ server: 1, names: ['www.*.com'] }], 1), { message: /^invalid server name "www\.\*\.com"/ }, 'the constructor throws too')
})

t.test('conflictingServerNames', async t => {
  t.same(conflictingServerNames(SERVERS.main), ['dup.test', '.conf.test', '.chain.test', 'chain.test'])
  t.same(conflictingServerNames([{ names: ['a.test', 'A.TEST'] }]), ['a.test'], 'within one server, case-insensitively')
  t.same(conflictingServerNames([{ names: ['.a.test'] }, { names: ['a.test', '*.a.test'] }]), ['a.test', '*.a.test'])
  t.same(conflictingServerNames([{ names: ['www.*'] }, { names: ['www.*', '~^x', '~^x'] }]), ['www.*'], 'regexes never conflict')
  t.same(conflictingServerNames([{ names: [] }, { names: [''] }]), [''], 'no names means ""')
  t.same(conflictingServerNames(SERVERS.noempty), [])
  t.same(selectorFor('main').conflicts, conflictingServerNames(SERVERS.main), 'also on the selector')
})

t.test('ServerSelector details', async t => {
  const def = { label: 'given-default' }
  const a = { label: 'a' }
  const s = new ServerSelector([{ server: a, names: ['a.test'] }], def)
  t.equal(s.select('zzz').server, def, 'returns the default it was given')
  t.equal(s.select(undefined).server, def, 'no Host, no "" name -> default')
  t.equal(s.select('').server, def, '"" is the same as no Host')
  t.equal(s.select('a.test'), s.select('a.test'), 'non-regex results are shared, not allocated per call')
  t.equal(s.select('x'), s.select('y'), 'default result is shared')

  const noNames = new ServerSelector([{ server: a, names: [] }], def)
  t.equal(noNames.select(undefined).server, a, 'a server without names is named ""')

  const g = new ServerSelector([{ server: a, names: [/^api\d/g] }], def)
  t.equal(g.select('api1.test').server, a)
  t.equal(g.select('api1.test').server, a, 'a /g RegExp is not stateful')
  t.equal(g.select('api1.other').server, a, 'a /g RegExp is not stateful (another host, so no remembered answer)')
  t.equal(g.select('api1.test').captures?.[0], 'api1')

  const re = new ServerSelector([{ server: a, names: ['~.*'] }], def)
  t.equal(re.select(undefined).server, def, 'regexes are not tried without Host')
  t.equal(re.select('x').server, a)
})

// Hosts past the exact table are remembered (a Map lookup instead of the wildcard and regex
// walk). Remembering must never change an answer: the same host gets the same server, with the
// same captures, however many other hosts came in between.
t.test('remembered hosts answer as the walk does', async t => {
  const servers: Server[] = SERVERS.main
  const entries = servers.map(s => ({ server: { label: s.label }, names: s.names }))
  const fresh = (): ServerSelector<{ label: string }> => new ServerSelector(entries, entries[0].server)
  const show = (r: { server: { label: string }, captures: RegExpExecArray | null }): string =>
    `${r.server.label} ${JSON.stringify(r.captures === null ? null : [...r.captures])}`
  const hosts = (CASES as Case[]).map(c => normalizeHost(c.host ?? undefined)).filter((h): h is string | undefined => h !== null)
  const rows: Array<{ rule: string, before: (s: ServerSelector<{ label: string }>) => void }> = [
    { rule: 'asked again at once', before: () => {} },
    { rule: 'asked again after the store filled and started over', before: (s) => { for (let i = 0; i < HOST_CACHE_MAX + 10; i++) s.select(`h${i}.api.example.org`) } },
    { rule: 'asked again after random hosts matching no name', before: (s) => { for (let i = 0; i < 3 * HOST_CACHE_MAX; i++) s.select(`nomatch${i}.test`) } }
  ]
  for (const row of rows) {
    const s = fresh()
    const first = hosts.map(h => s.select(h))
    row.before(s)
    const again = hosts.map(h => s.select(h))
    const walked = hosts.map(h => fresh().select(h))
    t.same(again.map(show), first.map(show), `${row.rule}: same servers and captures as the first time`)
    t.same(again.map(show), walked.map(show), `${row.rule}: same as a selector that never saw the host`)
  }
  const s = fresh()
  for (let i = 0; i < 5 * HOST_CACHE_MAX; i++) s.select(`r${i}.example.org`)
  t.equal(s.select('x.example.org').server.label, 'wild-short', 'still right after 5 x HOST_CACHE_MAX distinct hosts')
})
