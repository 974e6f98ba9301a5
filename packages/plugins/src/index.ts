// The public API: the handlers a config uses and their option types (README, docs/plugins.md).
// proxyctl's own packages and tests reach the rest through '@proxyctl/plugins/internal'.
export { proxy, type ProxyOptions, type NextUpstreamCase, type IgnorableHeader } from './proxy/proxy.js'
export type { HeaderOptions, ForwardedOptions } from './proxy/headers.js'
export type { RedirectOption, RedirectRule } from './proxy/redirect.js'
export { serveStatic, type StaticOptions } from './static/static.js'
export { tryFiles, tryFilesWith } from './static/try-files.js'
export { websocket, type WebSocketOptions } from './websocket/tunnel.js'
export type { MessageHook, MessageModeOptions, MessageModeOption } from './websocket/message-hooks.js'
