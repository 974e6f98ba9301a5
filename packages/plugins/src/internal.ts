// What proxyctl's own packages and tests use beyond the public API in index.ts. Not for plugin
// authors: these names may change in any release.
export { UpstreamError, classifyUpstreamError } from './proxy/errors.js'
export { UpstreamPool, DEFAULT_RESOLVE_INTERVAL, type ConnectionSettings, type UpstreamPeer, type UpstreamPoolOptions, type LookupAll, type PoolLogger } from './upstream/pool.js'
export * from './upstream/index.js'
