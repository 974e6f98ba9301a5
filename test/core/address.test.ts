// The one address parser (core's config/address.ts) behind `listen`, upstream servers and the host
// of `proxy()`: the forms it reads (the union of what those accept), then what each caller adds.
import t from 'tap'
import { parseAddress, parseListenAddress, parseUpstreamAddress, type AddressOptions } from '@proxyctl/core/internal'
import { parseProxyTarget } from '../../packages/plugins/src/proxy/target.js'

const http: AddressOptions = { defaultPort: 80 }
const listen: AddressOptions = { defaultPort: 80, portAlone: true }

const cases: Array<{ rule: string, text: string, options?: AddressOptions, expect: ReturnType<typeof parseAddress> }> = [
  { rule: 'host:port', text: '127.0.0.1:8080', expect: { kind: 'inet', host: '127.0.0.1', bracketed: false, port: 8080, portText: '8080' } },
  { rule: 'a host alone gets the caller\'s default port', text: 'app.internal', options: { defaultPort: 443 }, expect: { kind: 'inet', host: 'app.internal', bracketed: false, port: 443, portText: undefined } },
  { rule: 'the host keeps its case', text: 'App:81', expect: { kind: 'inet', host: 'App', bracketed: false, port: 81, portText: '81' } },
  { rule: 'the port is kept as written too', text: 'a:080', expect: { kind: 'inet', host: 'a', bracketed: false, port: 80, portText: '080' } },
  { rule: 'port 0 is read (callers other than listen refuse it)', text: 'a:0', expect: { kind: 'inet', host: 'a', bracketed: false, port: 0, portText: '0' } },
  { rule: '[v6]:port: the host without brackets', text: '[::1]:9000', expect: { kind: 'inet', host: '::1', bracketed: true, port: 9000, portText: '9000' } },
  { rule: '[v6] alone gets the default port', text: '[::1]', expect: { kind: 'inet', host: '::1', bracketed: true, port: 80, portText: undefined } },
  { rule: 'without brackets the port is after the last ":"', text: '::1:8080', expect: { kind: 'inet', host: '::1', bracketed: false, port: 8080, portText: '8080' } },
  { rule: 'a number alone is a host unless the caller takes it as a port', text: '8080', expect: { kind: 'inet', host: '8080', bracketed: false, port: 80, portText: undefined } },
  { rule: 'portAlone: a number alone is a port on every address', text: '8080', options: listen, expect: { kind: 'inet', host: '*', bracketed: false, port: 8080, portText: '8080' } },
  { rule: 'unix:/path', text: 'unix:/run/app.sock', expect: { kind: 'unix', path: '/run/app.sock' } },
  { rule: 'unix:///path is the same path', text: 'unix:///run/app.sock', expect: { kind: 'unix', path: '/run/app.sock' } },
  { rule: '"unix:" in any case, as nginx', text: 'UNIX:/run/app.sock', expect: { kind: 'unix', path: '/run/app.sock' } },
  { rule: 'a relative socket path is read as written (callers decide)', text: 'unix:app.sock', expect: { kind: 'unix', path: 'app.sock' } },
  { rule: 'the text is not trimmed (callers trim)', text: ' a', expect: { kind: 'inet', host: ' a', bracketed: false, port: 80, portText: undefined } },
  { rule: '"unix:" needs a path', text: 'unix:', expect: { kind: 'invalid', problem: 'no-path' } },
  { rule: 'an unclosed "["', text: '[::1', expect: { kind: 'invalid', problem: 'unclosed' } },
  { rule: 'only ":port" may follow "]"', text: '[::1]x', expect: { kind: 'invalid', problem: 'after-bracket' } },
  { rule: 'an empty port', text: 'a:', expect: { kind: 'invalid', problem: 'bad-port', portText: '' } },
  { rule: 'a port that is not all digits', text: '[::1]:8a', expect: { kind: 'invalid', problem: 'bad-port', portText: '8a' } },
  { rule: 'a port above 65535', text: 'a:65536', expect: { kind: 'invalid', problem: 'port-range', portText: '65536' } },
  { rule: 'no host', text: ':80', expect: { kind: 'invalid', problem: 'no-host' } },
  { rule: 'no host in brackets', text: '[]', expect: { kind: 'invalid', problem: 'no-host' } },
  { rule: 'the port is checked before the host, as nginx', text: ':x', expect: { kind: 'invalid', problem: 'bad-port', portText: 'x' } }
]

t.test('parseAddress', async t => {
  for (const c of cases) t.strictSame(parseAddress(c.text, c.options ?? http), c.expect, `${c.rule}: ${JSON.stringify(c.text)}`)
})

t.test('what each caller adds', async t => {
  t.strictSame(parseListenAddress('8080', '/cfg'), { key: '0.0.0.0:8080', kind: 'tcp', host: '0.0.0.0', port: 8080, path: '' }, 'listen: a port alone is *:port')
  t.strictSame(parseListenAddress('*:81', '/cfg'), { key: '0.0.0.0:81', kind: 'tcp', host: '0.0.0.0', port: 81, path: '' }, 'listen: "*" is every IPv4 address')
  t.equal(parseListenAddress('127.0.0.1:0', '/cfg').port, 0, 'listen: port 0 lets the system pick')
  t.equal(parseListenAddress('unix:p.sock', '/cfg').path, '/cfg/p.sock', 'listen: a relative socket path is in the config\'s folder')
  t.equal(parseListenAddress('::1:8080', '/cfg').key, '[::1]:8080', 'listen: an IPv6 host is named with brackets')
  t.throws(() => parseListenAddress('unix:', '/cfg'), { message: 'unix: needs a socket path' }, 'listen: its own wording')
  t.throws(() => parseListenAddress('[::1]x', '/cfg'), { message: 'invalid listen address "[::1]x"' }, 'listen: its own wording')

  t.strictSame(parseUpstreamAddress('8080'), { kind: 'hostname', host: '8080', port: 80, label: '8080:80' }, 'upstream: a number alone is a host')
  t.throws(() => parseUpstreamAddress('a:0'), { message: 'port out of range in "a:0"' }, 'upstream: port 0 is refused')
  t.throws(() => parseUpstreamAddress('unix:app.sock'), { message: 'unix socket path must be absolute in "unix:app.sock"' }, 'upstream: the socket path must be absolute')
  t.throws(() => parseUpstreamAddress('[::1]x'), { message: 'invalid port in "[::1]x"' }, 'upstream: its own wording')
  t.strictSame(parseUpstreamAddress('App:81'), { kind: 'hostname', host: 'app', port: 81, label: 'app:81' }, 'upstream: a hostname is lower-cased')

  const none = new Set<string>()
  t.throws(() => parseProxyTarget('http://a:0/', none), { message: 'invalid proxy target "http://a:0/": invalid port "0"' }, 'proxy: port 0 is refused')
  t.throws(() => parseProxyTarget('http://[::1]x', none), { message: 'invalid proxy target "http://[::1]x": invalid host' }, 'proxy: its own wording (nginx\'s)')
  t.match(parseProxyTarget('http://unix:app.sock:/x', none), { address: { type: 'unix', path: 'app.sock' }, uriPart: '/x' }, 'proxy: a relative socket path is kept; the URI part follows ":"')
})
