/**
 * One error class per failure family, each with a stable `code`.
 * Callers branch on `code`, never on message text.
 */

/**
 * Every stable code proxyctl logs or throws, in one list (log lines carry them as `code`).
 * PROXYCTL_H1_* are the upstream HTTP/1.1 client's; proxy/errors.ts turns them into
 * PROXYCTL_UPSTREAM_* for the log and the status.
 */
export type ProxyctlErrorCode =
  | 'PROXYCTL_CONFIG_INVALID'
  | 'PROXYCTL_CONFIG_WARNING'
  | 'PROXYCTL_CONFIG_LOAD_FAILED'
  | 'PROXYCTL_LISTEN_FAILED'
  | 'PROXYCTL_BAD_REQUEST'
  /** A client was slower than a limit allows (clientHeaderTimeout, clientBodyTimeout, sendTimeout): its connection is closed. */
  | 'PROXYCTL_CLIENT_TIMEOUT'
  /** A request body larger than clientMaxBodySize (nginx's 413). */
  | 'PROXYCTL_BODY_TOO_LARGE'
  /** A request body could not be buffered: its temp file under tempPath could not be written (500). */
  | 'PROXYCTL_BODY_BUFFER_FAILED'
  /** The client closed its connection before the answer was complete (nginx's 499). */
  | 'PROXYCTL_CLIENT_CLOSED'
  | 'PROXYCTL_INTERNAL_REDIRECT_CYCLE'
  /** A client denied by a location's allow/deny rules (403). */
  | 'PROXYCTL_ACCESS_DENIED'
  | 'PROXYCTL_UPSTREAM_CONNECT_FAILED'
  | 'PROXYCTL_UPSTREAM_TIMEOUT'
  | 'PROXYCTL_UPSTREAM_RESET'
  | 'PROXYCTL_UPSTREAM_BAD_RESPONSE'
  /** The TLS handshake with an `https` upstream failed: its certificate not trusted or not for its name, or the handshake refused (502). */
  | 'PROXYCTL_UPSTREAM_TLS_FAILED'
  /** No server of the upstream can take a request now (nginx's "no live upstreams"). */
  | 'PROXYCTL_UPSTREAM_UNAVAILABLE'
  /** A user's balance function threw or returned no server. */
  | 'PROXYCTL_BALANCER_ERROR'
  | 'PROXYCTL_UPSTREAM_REQUEST_INVALID'
  | 'PROXYCTL_INTERNAL_ERROR'
  | 'PROXYCTL_INTERNAL_REDIRECT_INVALID'
  | 'PROXYCTL_PROXY_TARGET_INVALID'
  /** `proxyctl explain` was given a request it cannot describe (a malformed URL or header, no listen address for it): exit 2. */
  | 'PROXYCTL_EXPLAIN_INPUT'
  /** A buffered response's temp file (under tempPath) could not be opened, written or read; the client's connection is cut. */
  | 'PROXYCTL_TEMP_FILE_FAILED'
  /** An access log's destination did not keep up: lines past its buffer were dropped (counted in the warn line). */
  | 'PROXYCTL_ACCESS_LOG_DROPPED'
  /** An access log file could not be opened (at start: the start fails) or written. */
  | 'PROXYCTL_ACCESS_LOG_FAILED'
  /** limitReq refused a request: over its zone's rate and burst (nginx's "limiting requests"; 503 or limitReqStatus). */
  | 'PROXYCTL_LIMIT_REQ_REJECTED'
  /** limitReq delayed a request: over its zone's rate, within its burst (nginx's "delaying request"). */
  | 'PROXYCTL_LIMIT_REQ_DELAYED'
  /** limitConn refused a request: its key has `max` requests in flight (nginx's "limiting connections"; 503 or limitConnStatus). */
  | 'PROXYCTL_LIMIT_CONN_REJECTED'
  /** A limitConn zone holds as many keys as its size allows: a new key is refused (nginx's "could not allocate node"). */
  | 'PROXYCTL_LIMIT_ZONE_FULL'
  /** A limit key rendered longer than nginx allows (65535 bytes for limitReq, 255 for limitConn): not limited. */
  | 'PROXYCTL_LIMIT_KEY_TOO_LONG'
  /** The Redis of shared limit zones does not answer: limits count in this process (one line per outage). */
  | 'PROXYCTL_LIMIT_STORE_UNAVAILABLE'
  /** A cache zone's shared store (Redis) does not answer: its requests are MISSes, stored nowhere, until it is back. */
  | 'PROXYCTL_CACHE_STORE_UNAVAILABLE'
  /** The cache zone's Redis answers again. */
  | 'PROXYCTL_CACHE_STORE_RESTORED'
  /** A cache zone's folder could not be read or written (the request went on as a MISS; the entry was not kept). */
  | 'PROXYCTL_CACHE_STORE_FAILED'
  /** The Redis of shared limit zones answers again after an outage. */
  | 'PROXYCTL_LIMIT_STORE_RESTORED'
  /** An HTTP/2 connection was closed for a protocol error or a flood Node refuses (rapid reset, CONTINUATION flood, invalid frames): GOAWAY, then close. */
  | 'PROXYCTL_H2_SESSION_ERROR'
  | 'PROXYCTL_WEBSOCKET_IDLE_TIMEOUT'
  | 'PROXYCTL_WEBSOCKET_MAX_CONNECTIONS'
  | 'PROXYCTL_WEBSOCKET_HANDSHAKE_INVALID'
  /** The request the upstream HTTP/1.1 client was asked to send is malformed (bad method, path or header): our fault, not the peer's. */
  | 'PROXYCTL_H1_INVALID_REQUEST'
  /** No connection to the upstream within connectTimeout. */
  | 'PROXYCTL_H1_CONNECT_TIMEOUT'
  /** The upstream closed the connection before the response was complete. */
  | 'PROXYCTL_H1_CLOSED'
  /** The upstream's response is not valid HTTP/1.x (status line, header, framing). */
  | 'PROXYCTL_H1_BAD_RESPONSE'
  /** The upstream's response head is larger than maxHeaderSize. */
  | 'PROXYCTL_H1_HEADERS_OVERFLOW'
  /** The upstream exchange was aborted by its handler. */
  | 'PROXYCTL_H1_ABORTED'
  /** The upstream client was closed or destroyed. */
  | 'PROXYCTL_H1_CLOSING'

export class ProxyctlError extends Error {
  readonly code: ProxyctlErrorCode
  constructor (code: ProxyctlErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** A config that cannot be served. `keyPath` is like `servers[0].locations["~ (/"]`. */
export class ConfigError extends ProxyctlError {
  readonly keyPath: string
  file: string | undefined
  constructor (keyPath: string, message: string, options?: { file?: string, cause?: unknown }) {
    super('PROXYCTL_CONFIG_INVALID', message, options)
    this.keyPath = keyPath
    this.file = options?.file
  }

  /** `file: keyPath: message`, the one line the CLI prints. */
  format (): string {
    const where = [this.file, this.keyPath].filter(Boolean).join(': ')
    return where ? `${where}: ${this.message}` : this.message
  }
}

/** Several config problems found in one pass; the CLI prints each. */
export class ConfigErrors extends ProxyctlError {
  readonly errors: ConfigError[]
  constructor (errors: ConfigError[]) {
    super('PROXYCTL_CONFIG_INVALID', errors.map(e => e.format()).join('\n'))
    this.errors = errors
  }

  setFile (file: string): this {
    for (const e of this.errors) e.file ??= file
    this.message = this.errors.map(e => e.format()).join('\n')
    return this
  }
}

/** The config module could not be imported (syntax error, missing file, no default export). */
export class ConfigLoadError extends ProxyctlError {
  readonly file: string
  constructor (file: string, message: string, options?: { cause?: unknown }) {
    super('PROXYCTL_CONFIG_LOAD_FAILED', `${file}: ${message}`, options)
    this.file = file
  }
}

/** A listen address could not be bound (in use, permission, bad address). */
export class ListenError extends ProxyctlError {
  readonly address: string
  constructor (address: string, message: string, options?: { cause?: unknown }) {
    super('PROXYCTL_LISTEN_FAILED', `listen ${address}: ${message}`, options)
    this.address = address
  }
}

/** A request that cannot be routed: bad URI, bad Host. Answered with `status`. */
export class BadRequestError extends ProxyctlError {
  readonly status: number
  /** The request target as received, for the log line. */
  target: string | undefined
  /** The config key whose limit the request broke, for the log line (`largeClientHeaderBuffers`). */
  readonly limit: string | undefined
  constructor (message: string, status = 400, limit?: string, code: ProxyctlErrorCode = 'PROXYCTL_BAD_REQUEST') {
    super(code, message)
    this.status = status
    this.limit = limit
  }
}

/** What `proxyctl explain` was asked about is not a request it can describe (bad URL, bad header, no listen address for it). */
export class ExplainInputError extends ProxyctlError {
  constructor (message: string) {
    super('PROXYCTL_EXPLAIN_INPUT', message)
  }
}

/**
 * A request body refused at the front door or while it was read: too large (413), too slow
 * (clientBodyTimeout: the connection closed), or not bufferable (500). `limit` names the config
 * key, `value` is its value (bytes, ms).
 */
export class RequestBodyError extends BadRequestError {
  readonly value: number | undefined
  constructor (code: 'PROXYCTL_BODY_TOO_LARGE' | 'PROXYCTL_CLIENT_TIMEOUT' | 'PROXYCTL_BODY_BUFFER_FAILED', message: string, status: number, limit: string, value?: number, options?: { cause?: unknown }) {
    super(message, status, limit, code)
    this.value = value
    if (options?.cause !== undefined) this.cause = options.cause
  }

  /** The log line's fields for the limit: `{ limit: 'clientMaxBodySize', clientMaxBodySize: 1048576 }`. */
  limitFields (): Record<string, unknown> {
    return this.value === undefined ? { limit: this.limit } : { limit: this.limit, [this.limit as string]: this.value }
  }
}

/**
 * Handling one request or connection threw: a bug in proxyctl or in a plugin. That request gets
 * a 500 (or its connection is cut, when an answer was already under way); the process goes on.
 */
export class InternalError extends ProxyctlError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('PROXYCTL_INTERNAL_ERROR', message, options)
  }
}
