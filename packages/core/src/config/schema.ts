import { z } from 'zod'
import { ConfigError } from '../errors.js'
import { isHandler } from '../handlers/define-handler.js'
import { connectionLimitKeys, requestLimitKeys } from './limits.js'
import { contentKeys } from './content.js'
import { rateLimitKeys, rateLimitZoneKeys } from './rate-limits.js'
import { addHeadersKey } from '../http/response-headers.js'
import { compressKeys } from './compress.js'
import { cacheZoneKeys } from './caches.js'
import type { ProxyConfig } from './types.js'

/**
 * The shape check of a config: types and unknown keys. Semantic rules (duplicate locations,
 * default servers, templates) are checked by `resolve.ts` once the shape is known to be right.
 */


const handler = z.custom((v) => isHandler(v), {
  error: 'expected a handler such as respond(...) or proxy(...)'
})

const fastifyPlugin = z.custom((v) => typeof v === 'function' ||
  (typeof v === 'object' && v !== null && typeof (v as { default?: unknown }).default === 'function'), {
  error: 'expected a Fastify plugin function'
})

const pluginEntry = z.union([
  fastifyPlugin,
  z.tuple([fastifyPlugin]).rest(z.record(z.string(), z.unknown())),
  z.strictObject({ plugin: fastifyPlugin, options: z.record(z.string(), z.unknown()).optional() })
], { error: 'expected a Fastify plugin, [plugin, options] or { plugin, options }' })

const pem = z.union([z.string(), z.instanceof(Buffer)], { error: 'expected a PEM string or Buffer' })

const listenAddress = z.union([z.number().int().min(0).max(65535), z.string().min(1)],
  { error: 'expected a port number or an address string' })

const listen = z.union([
  listenAddress,
  z.strictObject({
    address: listenAddress,
    defaultServer: z.boolean().optional(),
    https: z.strictObject({
      cert: pem.optional(),
      key: pem.optional(),
      certificates: z.array(z.strictObject({ cert: pem, key: pem })).optional(),
      ca: pem.optional(),
      protocols: z.array(z.enum(['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'])).optional(),
      ciphers: z.string().min(1).optional()
    }).optional(),
    http2: z.boolean().optional(),
    ipv6Only: z.boolean().optional()
  })
], { error: 'expected a port, an address string, or { address, defaultServer?, https?, http2? }' })

const stringList = z.array(z.string())

export const upstreamTls = z.strictObject({
  verify: z.boolean().optional(),
  ca: pem.optional(),
  serverName: z.string().min(1).optional(),
  cert: pem.optional(),
  key: pem.optional()
})

const headerKeys = {
  addHeaders: addHeadersKey,
  proxySetHeaders: z.record(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: 'header names are tokens (letters, digits, "-"...)' }), z.string()).optional()
}

const logKeys = {
  accessLog: z.union([z.boolean(), z.string().min(1), z.strictObject({ path: z.string().min(1).optional(), format: z.string().min(1).optional() })],
    { error: "expected false, true, a path ('stdout' or a file) or { path?, format? }" }).optional()
}

const rewrite = z.array(z.union([z.string(), z.strictObject({ regex: z.string(), replacement: z.string(), flag: z.enum(['last', 'break', 'redirect', 'permanent']).optional() })],
  { error: "expected 'REGEX REPLACEMENT [last|break|redirect|permanent]' or { regex, replacement, flag? }" }))

const errorPages = z.record(z.string().regex(/^\s*[1-5]\d\d(\s+[1-5]\d\d)*\s*$/, { error: 'keys are status codes (300-599), several separated by spaces' }), z.string().min(1))

interface LocationShape { [key: string]: unknown }
const location: z.ZodType<LocationShape> = z.lazy(() => z.strictObject({
  handler: handler.optional(),
  plugins: z.array(pluginEntry).optional(),
  locations: locations.optional(),
  root: z.string().optional(),
  alias: z.string().optional(),
  index: stringList.optional(),
  errorPages: errorPages.optional(),
  access: stringList.optional(),
  rewrite: rewrite.optional(),
  internal: z.boolean().optional(),
  ...requestLimitKeys,
  ...rateLimitKeys,
  ...contentKeys,
  ...headerKeys,
  ...compressKeys,
  ...logKeys
}))

const locations = z.record(z.string(), z.union([handler, location],
  { error: 'expected a location object ({ handler, plugins, locations, ... }) or a handler' }))

const serverName = z.union([z.string(), z.instanceof(RegExp)], { error: 'expected a string or a RegExp' })

const server = z.strictObject({
  listen: z.union([listen, z.array(listen).min(1)], { error: 'expected a port, an address string, { address, defaultServer?, https? }, or a list of them' }).optional(),
  serverName: z.union([serverName, z.array(serverName)], { error: 'expected a name, a RegExp, or a list of them' }).optional(),
  root: z.string().optional(),
  index: stringList.optional(),
  plugins: z.array(pluginEntry).optional(),
  locations: locations.optional(),
  handler: handler.optional(),
  errorPages: errorPages.optional(),
  access: stringList.optional(),
  rewrite: rewrite.optional(),
  return: handler.optional(),
  ...connectionLimitKeys,
  ...rateLimitKeys,
  ...contentKeys,
  ...headerKeys,
  ...compressKeys,
  ...logKeys
})

const positiveMs = z.number().int().min(0)

const upstreamServer = z.union([
  z.string().min(1),
  z.strictObject({
    address: z.string().min(1),
    weight: z.number().int().min(1).optional(),
    maxFails: z.number().int().min(0).optional(),
    failTimeout: positiveMs.optional(),
    backup: z.boolean().optional(),
    down: z.boolean().optional(),
    maxConns: z.number().int().min(0).optional()
  })
], { error: 'expected an address string or { address, weight?, maxFails?, failTimeout?, backup?, down?, maxConns? }' })

const balance = z.union([
  z.enum(['round-robin', 'least-conn', 'ip-hash', 'random-two']),
  z.strictObject({ hash: z.string().min(1), consistent: z.boolean().optional() }),
  z.custom((v) => typeof v === 'function')
], { error: 'expected "round-robin", "least-conn", "ip-hash", "random-two", { hash, consistent? } or a function' })

const upstream = z.strictObject({
  servers: z.array(upstreamServer).min(1, { error: 'an upstream needs at least one server' }),
  balance: balance.optional(),
  connectTimeout: z.number().int().min(1).optional(),
  resolveInterval: positiveMs.optional(),
  healthCheck: z.strictObject({
    interval: z.number().int().min(1).optional(),
    path: z.string().startsWith('/').optional(),
    expectStatus: z.tuple([z.number().int(), z.number().int()]).optional(),
    rise: z.number().int().min(1).optional(),
    fall: z.number().int().min(1).optional(),
    timeout: z.number().int().min(1).optional()
  }).optional(),
  tls: upstreamTls.optional()
})

export const configSchema = z.strictObject({
  servers: z.array(server).min(1, { error: 'at least one server is required' }),
  upstreams: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/, { error: 'upstream names use letters, digits, "_", "." and "-"' }), upstream).optional(),
  plugins: z.array(pluginEntry).optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
  shutdownTimeout: positiveMs.optional(),
  workers: z.union([z.number().int().min(1), z.literal('auto')]).optional(),
  tempPath: z.string().min(1).optional(),
  metrics: z.strictObject({ listen: z.union([z.string().min(1), z.number().int().min(0).max(65535)]) }).optional(),
  maps: z.record(z.string().regex(/^[A-Za-z0-9_]+$/, { error: 'map names use letters, digits and "_" (the variable is $NAME)' }),
    z.strictObject({ source: z.string(), values: z.record(z.string(), z.string()), hostnames: z.boolean().optional() })).optional(),
  logFormats: z.record(z.string().regex(/^[A-Za-z0-9_-]+$/, { error: 'format names use letters, digits, "_" and "-"' }),
    z.union([z.string(), z.strictObject({ format: z.string(), escape: z.enum(['default', 'json', 'none']).optional() })],
      { error: "expected a template or { format, escape?: 'default' | 'json' | 'none' }" })).optional(),
  ...connectionLimitKeys,
  ...rateLimitKeys,
  ...rateLimitZoneKeys,
  ...cacheZoneKeys,
  ...contentKeys,
  ...headerKeys,
  ...compressKeys,
  ...logKeys
})

/** `['servers', 0, 'locations', '~ (/']` → `servers[0].locations["~ (/"]`. */
export function formatKeyPath (path: ReadonlyArray<PropertyKey>): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else if (typeof part === 'string' && /^[A-Za-z_$][\w$]*$/.test(part)) out += out === '' ? part : `.${part}`
    else out += `[${JSON.stringify(String(part))}]`
  }
  return out
}

/** Checks the shape; returns the config typed, or the problems each with its key path. */
export function checkShape (input: unknown): { config: ProxyConfig, errors: [] } | { config: undefined, errors: ConfigError[] } {
  const r = configSchema.safeParse(input)
  if (r.success) return { config: input as ProxyConfig, errors: [] }
  const errors: ConfigError[] = []
  for (const issue of r.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) errors.push(new ConfigError(formatKeyPath([...issue.path, key]), 'unknown key'))
    } else {
      errors.push(new ConfigError(formatKeyPath(issue.path), issue.message))
    }
  }
  return { config: undefined, errors }
}
