/**
 * nginx's address forms (ngx_parse_url), read in one place for every setting that takes one: a
 * `listen`, an upstream's server, the host of a `proxy()` target. The forms are the union of what
 * those accept; each caller adds its own rules (port 0, an absolute socket path, host syntax) and
 * words its own errors, so this returns problems instead of throwing.
 */

export interface AddressOptions {
  /** The port of an address without one. */
  readonly defaultPort: number
  /** A number alone is a port on every address (`8080` is `*:8080`), as nginx's `listen`. */
  readonly portAlone?: boolean
}

export type ParsedAddress =
  /** `unix:/run/app.sock`; `unix:` in any case, and `unix:///run/app.sock` is the same path. */
  | { readonly kind: 'unix', readonly path: string }
  /**
   * `host` as written, without brackets (`::1` for `[::1]`, `*` for a port alone); `port` is the
   * default when none is written (`portText` then undefined), and may be 0.
   */
  | { readonly kind: 'inet', readonly host: string, readonly bracketed: boolean, readonly port: number, readonly portText: string | undefined }

export type AddressProblem =
  | { readonly kind: 'invalid', readonly problem: 'no-path' } // `unix:` alone
  | { readonly kind: 'invalid', readonly problem: 'unclosed' } // `[::1`
  | { readonly kind: 'invalid', readonly problem: 'after-bracket' } // `[::1]x`: only `:port` may follow `]`
  | { readonly kind: 'invalid', readonly problem: 'bad-port' | 'port-range', readonly portText: string } // `h:`, `h:8a`; `h:65536`
  | { readonly kind: 'invalid', readonly problem: 'no-host' } // `:80`, `[]:80`

/**
 * Reads `unix:/path`, `[v6]:port`, `[v6]`, `host:port` (split at the last ":", so an IPv6
 * address without brackets keeps its colons), `host`, and with `portAlone` a bare port. The text
 * is taken as given (callers trim). Problems come in nginx's order: the port, then the host.
 */
export function parseAddress (text: string, options: AddressOptions): ParsedAddress | AddressProblem {
  if (text.slice(0, 5).toLowerCase() === 'unix:') {
    const path = text.slice(5).replace(/^\/\/(?=\/)/, '')
    return path === '' ? { kind: 'invalid', problem: 'no-path' } : { kind: 'unix', path }
  }
  if (options.portAlone === true && /^\d+$/.test(text)) return inet('*', false, text)

  let host: string
  let portText: string | undefined
  const bracketed = text.startsWith('[')
  if (bracketed) {
    const end = text.indexOf(']')
    if (end === -1) return { kind: 'invalid', problem: 'unclosed' }
    host = text.slice(1, end)
    const rest = text.slice(end + 1)
    if (rest !== '' && rest[0] !== ':') return { kind: 'invalid', problem: 'after-bracket' }
    if (rest !== '') portText = rest.slice(1)
  } else {
    const colon = text.lastIndexOf(':')
    host = colon === -1 ? text : text.slice(0, colon)
    if (colon !== -1) portText = text.slice(colon + 1)
  }
  return inet(host, bracketed, portText, options.defaultPort)
}

function inet (host: string, bracketed: boolean, portText: string | undefined, defaultPort = 0): ParsedAddress | AddressProblem {
  let port = defaultPort
  if (portText !== undefined) {
    if (!/^\d+$/.test(portText)) return { kind: 'invalid', problem: 'bad-port', portText }
    port = Number(portText)
    if (port > 65535) return { kind: 'invalid', problem: 'port-range', portText }
  }
  if (host === '') return { kind: 'invalid', problem: 'no-host' }
  return { kind: 'inet', host, bracketed, port, portText }
}
