/**
 * proxy_redirect. The tables live in fixtures/redirect-cases.ts and were checked against nginx
 * 1.22.1 with fixtures/nginx-compare.ts (the Location / Refresh header nginx sends on when the
 * upstream answers with the case's value, and `nginx -t` for the config errors).
 */
import t from 'tap'
import { type RequestContext } from '@proxyctl/core'
import { compileTemplate, parseLocationKey } from '@proxyctl/core/internal'
import { parseProxyTarget } from '../../packages/plugins/src/proxy/target.js'
import {
  checkRedirectOption, compileRedirect, ProxyRedirectError, REDIRECT_DEFAULT_WITH_VARIABLES,
  type RedirectCompileOptions
} from '../../packages/plugins/src/proxy/redirect.js'
import { redirectScenarios, redirectValidationCases, toOption } from './fixtures/redirect-cases.js'

const upstreams = new Set(['backend'])

const compile: RedirectCompileOptions['compile'] = (source, namedCaptures) => compileTemplate(source, { namedCaptures })

function fakeCtx (captures: RegExpExecArray | null = null): RequestContext {
  return {
    uri: '/', args: '', requestUri: '/', host: 'localhost', captures,
    server: { primaryName: 'localhost' },
    req: { headers: { host: 'localhost' }, socket: {} }
  } as unknown as RequestContext
}

let caseCount = 0
for (const regexObjects of [false, true]) {
  for (const sc of redirectScenarios) {
    t.test(`redirect: ${sc.name}${regexObjects ? ' (RegExp objects)' : ''}`, async t => {
      const loc = parseLocationKey(sc.location)
      const target = parseProxyTarget(sc.target, upstreams)
      const rewrite = compileRedirect(toOption(sc.option, regexObjects), {
        target, location: { kind: loc.kind, path: loc.path }, compile
      })
      for (const c of sc.cases) {
        if (!regexObjects) caseCount++
        const got = rewrite === null ? undefined : rewrite(c.value, fakeCtx(), c.header)
        t.equal(got ?? null, c.expect, `${c.rule}: ${c.header} ${c.value}`)
      }
    })
  }
}

t.test('redirect: table size', async t => {
  t.ok(caseCount >= 12, `${caseCount} cases checked against nginx`)
})

t.test('redirect: config errors', async t => {
  for (const c of redirectValidationCases) {
    const target = parseProxyTarget(c.target, upstreams)
    const option = toOption(c.option, false)
    t.equal(checkRedirectOption(option, target) ?? null, c.message, c.rule)
    const opts = { target, location: { kind: 'prefix' as const, path: '/' }, compile }
    if (c.message === null) t.doesNotThrow(() => compileRedirect(option, opts), `${c.rule}: compiles`)
    else t.throws(() => compileRedirect(option, opts), new ProxyRedirectError(c.message), `${c.rule}: throws`)
  }
  t.equal(REDIRECT_DEFAULT_WITH_VARIABLES, redirectValidationCases[0].message, 'the exported message is nginx\'s')
})

t.test('redirect: details', async t => {
  const target = parseProxyTarget('http://backend/', upstreams)
  const location = { kind: 'prefix' as const, path: '/' }
  t.equal(compileRedirect(false, { target, location, compile }), null, 'off compiles to null')
  t.equal(compileRedirect([], { target, location, compile }), null, 'no rules compile to null')

  const rw = compileRedirect([{ from: /^http:\/\/a\/(.*)$/g, to: '/b/$1' }], { target, location, compile })
  if (rw === null) throw new Error('unreachable')
  const locCaptures = /^\/(x)$/.exec('/x')
  const ctx = fakeCtx(locCaptures)
  t.equal(rw('http://a/1', ctx), '/b/1', 'the regex captures fill $1')
  t.equal(rw('http://a/2', ctx), '/b/2', 'a "g" flag does not make matching stateful')
  t.equal(ctx.captures, locCaptures, 'the location captures are back afterwards')

  const fromLoc = compileRedirect([{ from: 'http://a/', to: '/$1/' }], { target, location, compile })
  t.equal(fromLoc?.('http://a/z', fakeCtx(locCaptures)), '/x/z', 'a string rule sees the location captures')

  const fallback = compileRedirect('default', { target: parseProxyTarget('http://backend/app/', upstreams), location: undefined, compile })
  t.equal(fallback?.('http://backend/app/q', fakeCtx()), '/q', 'a fallback handler acts as location /')

  const unix = compileRedirect(undefined, { target: parseProxyTarget('http://unix:/s.sock', upstreams), location, compile })
  t.equal(unix?.('http://unix:/s.sock/p', fakeCtx()), '/p', 'default is built from the target as written')

  t.equal(rw('5; url=http://a/1', fakeCtx(), 'refresh'), '5; url=/b/1', 'Refresh: the regex runs on what follows "url="')
  t.equal(rw('5; url=http://a/1', fakeCtx()), undefined, 'Location: on the whole value')
  t.throws(() => compileRedirect([{ from: '~(', to: '/' }], { target, location, compile }), SyntaxError, 'a bad regex')
  t.throws(() => compileRedirect([{ from: 'x', to: '$nope' }], { target, location, compile }), /unknown variable/, 'unknown variable')
})
