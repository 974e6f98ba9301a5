// The public plugin API's types (docs/plugins.md), checked by tstyche: what a plugin author and a
// config author write must type-check, and common mistakes must not.
import { describe, expect, test } from 'tstyche'
import {
  addPhaseHook, defineConfig, defineHandler, proxy, registerVariable, respond, websocket,
  type FastifyInstance, type ProxyctlErrorCode, type RequestContext, type UpstreamFailure,
  type UpstreamRequestHead, type UpstreamResponseHead, type WebSocketMessage
} from 'proxyctl'

declare const fastify: FastifyInstance

describe('addPhaseHook', () => {
  test('each phase hands its hook the head it may change', () => {
    addPhaseHook(fastify, 'upstreamRequest', (ctx, head) => {
      expect(ctx).type.toBe<RequestContext>()
      expect(head).type.toBe<UpstreamRequestHead>()
    })
    addPhaseHook(fastify, 'upstreamResponse', (_ctx, head) => { expect(head).type.toBe<UpstreamResponseHead>() })
    addPhaseHook(fastify, 'upstreamError', (_ctx, failure) => { expect(failure).type.toBe<UpstreamFailure>() })
    addPhaseHook(fastify, 'message', (_ctx, m) => { expect(m).type.toBe<WebSocketMessage>() })
  })

  test('an unknown phase is refused', () => {
    expect(addPhaseHook).type.not.toBeCallableWith(fastify, 'onRequest', () => {})
  })

  test('what a hook may change is writable, what it only reads is not', () => {
    addPhaseHook(fastify, 'upstreamResponse', (_ctx, head) => {
      head.status = 299
      head.headers.push('X-A', 'b')
      // @ts-expect-error Cannot assign to 'peer' because it is a read-only property
      head.peer = 'x'
    })
    addPhaseHook(fastify, 'message', (_ctx, m) => {
      m.drop = true
      m.data = 'rewritten'
      // @ts-expect-error Cannot assign to 'from' because it is a read-only property
      m.from = 'client'
    })
  })

  test('a failure carries a stable code', () => {
    addPhaseHook(fastify, 'upstreamError', (_ctx, failure) => { expect(failure.code).type.toBe<ProxyctlErrorCode>() })
  })
})

describe('the request context', () => {
  test('plugins read the request through it and keep their state in locals', () => {
    addPhaseHook(fastify, 'upstreamRequest', (ctx) => {
      expect(ctx.uri).type.toBe<string>()
      expect(ctx.args).type.toBe<string>()
      expect(ctx.requestUri).type.toBe<string>()
      expect(ctx.locals).type.toBe<Record<string | symbol, unknown>>()
    })
  })
})

describe('registerVariable and defineHandler', () => {
  test('a variable getter takes the context and returns a string', () => {
    registerVariable('tenant', (ctx) => ctx.host.split('.')[0] ?? '')
    expect(registerVariable).type.not.toBeCallableWith('tenant', () => 42)
  })

  test('a handler compiles once and answers with Fastify objects', () => {
    const hello = defineHandler('hello', (env) => {
      const t = env.template('$uri')
      return { handle: (request, reply) => reply.send(t.render(request.proxyctl)) }
    })
    defineConfig({ servers: [{ locations: { '/': hello } }] })
  })
})

describe('defineConfig', () => {
  test('built-in handlers and plugins fit every scope', () => {
    const plugin = async (_f: FastifyInstance): Promise<void> => {}
    defineConfig({
      plugins: [plugin],
      upstreams: { app: { servers: ['127.0.0.1:3000', 'unix:/run/app.sock'] } },
      servers: [{
        listen: ['127.0.0.1:8080'],
        plugins: [plugin],
        locations: {
          '= /health': respond(200, 'ok\n'),
          '/ws/': websocket('http://app', { readTimeout: 300_000 }),
          '/': { plugins: [plugin], handler: proxy('http://app', { nextUpstream: { on: ['error', 'http_502'] } }) }
        }
      }]
    })
  })

  test('a misspelt key or a wrong type is a type error', () => {
    // @ts-expect-error Object literal may only specify known properties
    defineConfig({ serverz: [] })
    // @ts-expect-error Type '"http_418"' is not assignable to type 'NextUpstreamCase'
    proxy('http://app', { nextUpstream: { on: ['http_418'] } })
    // @ts-expect-error Type '"X-Accel-Nope"' is not assignable to type
    proxy('http://app', { ignoreHeaders: ['X-Accel-Nope'] })
    // nginx's names, in nginx's case or lower case
    proxy('http://app', { ignoreHeaders: ['X-Accel-Redirect', 'set-cookie'] })
  })
})

describe('what proxyctl exports', () => {
  type Exports = typeof import('proxyctl')

  test('the public API', () => {
    expect<Exports>().type.toHaveProperty('addPhaseHook')
    expect<Exports>().type.toHaveProperty('registerVariable')
    expect<Exports>().type.toHaveProperty('defineHandler')
    expect<Exports>().type.toHaveProperty('respond')
    expect<Exports>().type.toHaveProperty('internalRedirect')
    expect<Exports>().type.toHaveProperty('resolveConfig')
    expect<Exports>().type.toHaveProperty('startProxy')
    expect<Exports>().type.toHaveProperty('proxy')
    expect<Exports>().type.toHaveProperty('websocket')
    expect<Exports>().type.toHaveProperty('serveStatic')
    expect<Exports>().type.toHaveProperty('tryFiles')
    expect<Exports>().type.toHaveProperty('ProxyctlError')
  })

  test('none of the internals proxyctl\'s own packages share', () => {
    expect<Exports>().type.not.toHaveProperty('openPhaseScope')
    expect<Exports>().type.not.toHaveProperty('phaseHooks')
    expect<Exports>().type.not.toHaveProperty('LocationTree')
    expect<Exports>().type.not.toHaveProperty('ServerSelector')
    expect<Exports>().type.not.toHaveProperty('ROUTE_PREFIX')
    expect<Exports>().type.not.toHaveProperty('buildApp')
    expect<Exports>().type.not.toHaveProperty('failRequest')
    expect<Exports>().type.not.toHaveProperty('compileTemplate')
    expect<Exports>().type.not.toHaveProperty('UpstreamPool')
    expect<Exports>().type.not.toHaveProperty('PeerGroup')
  })
})
