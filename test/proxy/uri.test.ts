/**
 * The proxy target and the upstream request URI. The tables live in fixtures/uri-cases.ts and
 * fixtures/target-cases.ts and were checked against nginx 1.22.1 with fixtures/nginx-compare.ts
 * (the request line and Host header an echo server behind nginx received, and `nginx -t`).
 */
import t from 'tap'
import { type RequestContext } from '@proxyctl/core'
import { compileTemplate, normalizeUri, parseLocationKey, splitRequestTarget } from '@proxyctl/core/internal'
import {
  parseProxyTarget, parseRenderedTarget, ProxyTargetError, type ParsedProxyTarget
} from '../../packages/plugins/src/proxy/target.js'
import {
  checkUriPartAllowed, compileUriMapping, escapeUri, URI_PART_NOT_ALLOWED, type UriRequestState
} from '../../packages/plugins/src/proxy/uri.js'
import { uriScenarios, uriValidationCases } from './fixtures/uri-cases.js'
import { fillTarget, targetCases } from './fixtures/target-cases.js'

const upstreams = new Set(['backend'])

function fakeCtx (state: UriRequestState, captures: RegExpExecArray | null): RequestContext {
  return {
    uri: state.uri,
    args: state.args,
    requestUri: state.requestUri,
    host: 'localhost',
    captures,
    server: { primaryName: 'localhost' },
    req: { headers: { host: 'localhost' }, socket: {} }
  } as unknown as RequestContext
}

let uriCaseCount = 0
for (const sc of uriScenarios) {
  t.test(`uri: ${sc.name}`, async t => {
    const loc = parseLocationKey(sc.location)
    const target = parseProxyTarget(sc.target, upstreams)
    const hasVariables = target.kind === 'template'
    const mapping = compileUriMapping({
      uriPart: target.kind === 'static' ? target.uriPart : undefined,
      location: { kind: loc.kind, path: loc.path },
      hasVariables
    })
    const template = hasVariables ? compileTemplate(target.raw) : undefined

    for (const c of sc.cases) {
      uriCaseCount++
      const requestUri = c.request.replace('{host}', 'localhost')
      let state: UriRequestState
      if (c.state !== undefined) {
        state = { ...c.state, requestUri }
      } else {
        const split = splitRequestTarget(requestUri)
        state = { uri: normalizeUri(split.path), args: split.args, requestUri }
      }
      let rendered: string | undefined
      if (template !== undefined) {
        const captures = loc.regex?.exec(state.uri) ?? null
        rendered = parseRenderedTarget(template.render(fakeCtx(state, captures)), upstreams).uriPart
      }
      t.equal(mapping(state, rendered), c.expect, `${c.rule}: ${c.request}`)
      if (c.state === undefined) {
        // the default detection of "changed" agrees with saying "unchanged" outright
        t.equal(mapping({ ...state, uriChanged: false }, rendered), c.expect, `${c.rule}: ${c.request} (uriChanged: false)`)
      }
    }
  })
}

t.test('uri: config errors for a URI part', async t => {
  for (const c of uriValidationCases) {
    const loc = parseLocationKey(c.location)
    const target = parseProxyTarget(c.target, upstreams)
    const opts = {
      uriPart: target.kind === 'static' ? target.uriPart : undefined,
      location: { kind: loc.kind, path: loc.path },
      hasVariables: target.kind === 'template'
    }
    t.equal(checkUriPartAllowed(opts) ?? null, c.message, c.rule)
    if (c.message === null) t.doesNotThrow(() => compileUriMapping(opts), `${c.rule}: compiles`)
    else t.throws(() => compileUriMapping(opts), { message: c.message }, `${c.rule}: compileUriMapping throws`)
  }
  t.equal(URI_PART_NOT_ALLOWED, uriValidationCases[0].message, 'the exported message is nginx\'s')
})

t.test('uri: table size', async t => {
  t.ok(uriCaseCount >= 30, `${uriCaseCount} cases checked against nginx`)
})

t.test('uri: state flags', async t => {
  const withPart = compileUriMapping({ uriPart: '/remote/', location: { kind: 'prefix', path: '/name/' }, hasVariables: false })
  const noPart = compileUriMapping({ uriPart: undefined, location: { kind: 'prefix', path: '/name/' }, hasVariables: false })
  const base = { uri: '/name/a"b', args: 'x=1', requestUri: '/name/a"b?x=1' }
  t.equal(withPart(base), '/remote/a"b?x=1', 'unescaped without "%" in the client path')
  t.equal(withPart({ ...base, internal: true }), '/remote/a%22b?x=1', 'internal makes it escaped')
  t.equal(withPart({ ...base, uriChanged: true }), '/remote/a%22b?x=1', 'internal defaults to uriChanged')
  t.equal(withPart({ ...base, uriChanged: true, internal: false }), '/remote/a"b?x=1', 'set $args is not internal')
  t.equal(withPart({ ...base, rewrittenInLocation: true }), '/name/a"b?x=1', 'rewrite break drops the URI part')
  t.equal(noPart(base), '/name/a"b?x=1', 'the request target as sent')
  t.equal(noPart({ ...base, uri: '/other' }), '/other?x=1', 'a different uri counts as changed by default')
  t.equal(noPart({ ...base, args: 'y' }), '/name/a%22b?y', 'different args count as changed by default')
  t.equal(noPart({ ...base, uriChanged: true }), '/name/a%22b?x=1', 'an internal redirect to the same URI')
  t.equal(noPart({ ...base, uriChanged: false, internal: true }), '/name/a"b?x=1', 'a named location keeps the target')
  t.equal(noPart({ uri: '/', args: 'q', requestUri: 'http://h?q' }), '/?q', 'absolute-form without a path')
  t.equal(noPart({ uri: '/a', args: '', requestUri: 'http://h:8080/a#f' }), '/a#f', 'absolute-form: from the path on')

  const fallback = compileUriMapping({ uriPart: '/x/', location: undefined, hasVariables: false })
  t.equal(fallback({ uri: '/a/b', args: '', requestUri: '/a/b' }), '/x/a/b', 'a fallback handler acts as location /')

  const vars = compileUriMapping({ uriPart: undefined, location: { kind: 'regex', path: '^/' }, hasVariables: true })
  t.equal(vars({ uri: '/a b', args: 'q', requestUri: '/a%20b?q' }, '/z/a b'), '/z/a b', 'a rendered URI part as is')
  t.equal(vars({ uri: '/a b', args: 'q', requestUri: '/a%20b?q' }, undefined), '/a%20b?q', 'no rendered URI part')
  t.equal(vars({ uri: '/a b', args: 'q', requestUri: '/a%20b?q', uriChanged: true }, undefined), '/a%20b?q',
    'no rendered URI part after a redirect')
})

t.test('uri: invalid UTF-8 keeps its bytes', async t => {
  const m = compileUriMapping({ uriPart: '/r/', location: { kind: 'prefix', path: '/' }, hasVariables: false })
  const uri = normalizeUri('/a%FF/%C0%AF/b%2f..%2Fc%e2%82')
  t.equal(m({ uri, args: '', requestUri: '/a%FF/%C0%AF/b%2f..%2Fc%e2%82' }), '/r/a%FF/%C0%AF/c%E2%82', 'bytes as sent')
  t.equal(m({ uri, args: '', requestUri: '/a%FF/%C0%AF/b%2f..%2Fc%e2%82', uriChanged: true }),
    '/r/a%EF%BF%BD/%EF%BF%BD%EF%BF%BD/c%EF%BF%BD', 'after a redirect only the text is left')
})

t.test('escapeUri is NGX_ESCAPE_URI', async t => {
  const kept = new Set("!$&'()*+,-./:;=@[]_~".split(''))
  for (let b = 0; b < 256; b++) {
    const ch = String.fromCharCode(b)
    const plain = /[A-Za-z0-9]/.test(ch) || kept.has(ch)
    const want = plain ? ch : '%' + b.toString(16).toUpperCase().padStart(2, '0')
    if (escapeUri(Uint8Array.of(b)) !== want) t.fail(`byte 0x${b.toString(16)}: ${escapeUri(Uint8Array.of(b))}`)
  }
  t.equal(escapeUri('/a b/é?#%"<>\\^`{|}~'), '/a%20b/%C3%A9%3F%23%25%22%3C%3E%5C%5E%60%7B%7C%7D~', 'a string is taken as UTF-8')
  t.equal(escapeUri('/plain'), '/plain', 'nothing to escape')
})

t.test('parseProxyTarget', async t => {
  for (const c0 of targetCases) {
    const c = fillTarget(c0, 9000, '/run/echo.sock')
    if ('error' in c.expect) {
      t.throws(() => parseProxyTarget(c.raw, upstreams), c.expect.error, `${c.rule}: ${c.raw}`)
      t.throws(() => parseProxyTarget(c.raw, upstreams), ProxyTargetError, `${c.rule}: a ProxyTargetError`)
    } else if ('template' in c.expect) {
      t.strictSame(parseProxyTarget(c.raw, upstreams), { kind: 'template', raw: c.raw }, `${c.rule}: ${c.raw}`)
    } else {
      t.strictSame(parseProxyTarget(c.raw, upstreams), { kind: 'static', raw: c.raw, ...c.expect }, `${c.rule}: ${c.raw}`)
    }
  }
})

t.test('parseRenderedTarget', async t => {
  const p = (s: string): ParsedProxyTarget => parseRenderedTarget(s, upstreams)
  t.equal(p('http://backend?a=1').uriPart, '/?a=1', 'a "/" goes before a URI part starting with "?"')
  t.strictSame(p('http://backend:8080/x').address, { type: 'tcp', host: 'backend', port: 8080 },
    'a name with a port is a host to resolve, not the upstream')
  t.strictSame(p('http://BACKEND').address, { type: 'upstream', name: 'backend' }, 'an upstream name in any case')
  t.strictSame(p('https://unix:/s.sock:/x').address, { type: 'unix', path: '/s.sock' }, 'unix socket')
  t.equal(p('http://unix:/s.sock:').uriPart, undefined, 'an empty URI part after the socket is none')
  t.throws(() => p('ftp://x'), ProxyTargetError, 'a bad scheme fails per request')
  t.throws(() => p('http://'), ProxyTargetError, 'no host')
  t.throws(() => parseProxyTarget('http://a b/', upstreams), /invalid host/, 'a host with a space')
  t.throws(() => parseProxyTarget('http://256.1.1.1/', upstreams), /invalid host/, 'a bad IPv4 address')
  t.throws(() => parseProxyTarget(`http://unix:/${'x'.repeat(107)}`, upstreams), /too long/, 'a too long socket path')
  t.strictSame(parseProxyTarget('http://[::ffff:127.0.0.1]:81', upstreams).kind, 'static', 'IPv6 with an IPv4 tail')
  t.throws(() => parseProxyTarget('http://[1:2:3:4:5:6:7:8:9]', upstreams), /IPv6/, 'too many IPv6 groups')
})
